import {
  type Dialect,
  JpayClient,
  JpayError,
  type JpayEvent,
  type Receipt,
  type ReportTransaction,
  resolveFromReport,
  type TransactionRequest,
  type TransactionResult,
  transportFromDuplex,
} from '@payorch/jpay';

import { assertSupported, DriverError } from './capabilities';
import { FrameTap } from './frames';
import { jpayReceiptResult, jpayStatusResult } from './result-codes';
import { adminPassword, compact, DriverLinks, errorMessage, failedBeforeSend, LinkError, refString, requireAmount, requireOriginal } from './shared';
import type { CancelResult, DriverConfig, ExecuteHooks, OperationCommand, OperationOutcome, OperationProgress, ProtocolRefs, TerminalDriver } from './types';

/** How far the terminal's clock may be behind ours when we bound the log search by time. */
const CLOCK_SKEW_MS = 10 * 60_000;
/** Without a known zone, the earliest zone on Earth (UTC−12) bounds the terminal's local time from below. */
const WORST_ZONE_OFFSET_MS = 12 * 3_600_000;

interface Running {
  readonly operationId: string;
  readonly abort: AbortController;
  readonly hooks: ExecuteHooks;
}

/**
 * JPAY / aQsi banking application (we are the client; one command per connection). Transactions have no
 * request id, so `beforeSend` persists what recovery needs to find the transaction in the terminal's log:
 * the request, the time lower bound (terminal clock) and the last receipt number this driver had seen.
 */
export class JpayDriver implements TerminalDriver {
  readonly protocol = 'JPAY' as const;
  private readonly client: JpayClient;
  private running: Running | undefined;
  /** Highest card receipt `seq` seen by this driver (disambiguates recovery). */
  private lastSeq: string | undefined;
  private readonly links: DriverLinks;
  private readonly frames = new FrameTap('JPAY');

  constructor(private readonly config: DriverConfig) {
    this.links = new DriverLinks(config);
    this.client = new JpayClient({
      dialect: this.dialect,
      connect: async () => {
        try {
          return this.frames.wrap(transportFromDuplex(await this.links.open()));
        } catch (error) {
          throw new JpayError('CONNECT_FAILED', errorMessage(error));
        }
      },
      idleTimeoutMs: config.options?.commandTimeoutMs,
      onEvent: (event) => this.onEvent(event),
    });
  }

  private get dialect(): Dialect {
    return (this.config.dialect ?? 'aqsi') === 'jpay' ? 'jpay' : 'aqsi';
  }

  private get encrypted(): boolean {
    return this.config.encryption?.enabled === true;
  }

  /**
   * Runs `work` on the client: in clear, or (encryption enabled) inside a secure admin session of its
   * own (§9: login with client-handshake → fresh ECDHE key pair and AES-256-GCM key, the commands
   * encrypted, then logout, which forgets the key). A failed login throws before `work` sends anything.
   */
  private async session<T>(work: (client: JpayClient) => Promise<T>, options: { signal?: AbortSignal } = {}): Promise<T> {
    if (!this.encrypted) return work(this.client);
    const password = adminPassword(this.config);
    const login = await this.client.login(password, { secure: true, signal: options.signal });
    if (login.status !== 'ok') throw new JpayError('NOT_LOGGED_IN', `secure login answered ${login.status}`);
    try {
      return await work(this.client);
    } finally {
      await this.client.logout().catch(() => undefined);
    }
  }

  async execute(command: OperationCommand, hooks: ExecuteHooks): Promise<OperationOutcome> {
    try {
      assertSupported('JPAY', this.dialect, command.type);
      switch (command.type) {
        case 'settlement':
        case 'report_x':
        case 'terminal_info':
          return await this.adminCommand(command, hooks);
        default:
          return await this.transaction(command, this.toRequest(command), hooks);
      }
    } catch (error) {
      if (error instanceof DriverError) return { state: 'failed', reason: error.message };
      throw error;
    }
  }

  async cancel(operationId: string): Promise<CancelResult> {
    if (this.running?.operationId !== operationId) return 'not_running';
    // §8.9: the next keepalive is answered `cancelled`; the outcome tells whether it was in time.
    this.running.abort.abort();
    return 'requested';
  }

  /** Reads the full report with the admin password and finds the transaction (see @payorch/jpay recovery). */
  async recover(command: OperationCommand, refs: ProtocolRefs): Promise<OperationOutcome> {
    const request = parseRequest(refs);
    if (request === undefined) return { state: 'failed', reason: 'no request was recorded: the transaction was never sent' };
    let password: string;
    try {
      password = adminPassword(this.config);
    } catch (error) {
      return { state: 'unknown', reason: errorMessage(error), protocolRefs: refs };
    }
    if (this.running !== undefined) return { state: 'unknown', reason: 'a command is still running on this terminal', protocolRefs: refs };
    let report;
    try {
      report = await this.session((client) => client.report(password, 'full'));
    } catch (error) {
      return { state: 'unknown', reason: `report unavailable: ${errorMessage(error)}`, protocolRefs: refs };
    }
    if (report.status !== 'ok' || !report.xreport) {
      return { state: 'unknown', reason: `report answered ${report.status}`, protocolRefs: refs };
    }
    const notBeforeTime = refString(refs, 'notBeforeTime');
    let resolution = resolveFromReport(report.xreport, { request, notBeforeTime });
    const afterSeq = refString(refs, 'afterSeq');
    if (resolution.resolution === 'ambiguous' && afterSeq !== undefined) {
      // The receipt counter may restart after a settlement, so it only narrows an ambiguous match.
      const narrowed = resolveFromReport(report.xreport, { request, notBeforeTime, afterSeq });
      if (narrowed.resolution === 'approved' || narrowed.resolution === 'declined') resolution = narrowed;
    }
    switch (resolution.resolution) {
      case 'approved':
      case 'declined':
        return this.fromLogEntry(resolution.resolution, resolution.transaction, refs);
      case 'not-found':
        return { state: 'failed', reason: 'the transaction is not in the terminal log: it was not performed', protocolRefs: refs };
      case 'ambiguous':
        return {
          state: 'unknown',
          reason: `${resolution.candidates.length} log entries match; an operator must decide`,
          protocolRefs: { ...refs, candidates: resolution.candidates.map((c) => c.seq ?? '?').join(',') },
        };
      case 'unavailable':
        return { state: 'unknown', reason: 'report unavailable', protocolRefs: refs };
    }
  }

  async terminalInfo(): Promise<Record<string, unknown>> {
    return { protocol: 'JPAY', dialect: this.dialect, ...(await this.terminalInfoUnlocked(adminPassword(this.config))) };
  }

  /**
   * Ends the connection at once (not a cancel: the terminal may be past the point of no return): a
   * transaction in flight becomes `unknown` (TRANSPORT_CLOSED) and is recovered from the report later.
   */
  async close(): Promise<void> {
    this.links.close();
  }

  private async transaction(command: OperationCommand, request: TransactionRequest, hooks: ExecuteHooks): Promise<OperationOutcome> {
    if (this.running !== undefined) return { state: 'failed', reason: 'not sent: another command is running on this terminal' };
    const abort = new AbortController();
    this.running = { operationId: command.operationId, abort, hooks };
    const detachFrames = this.frames.attach(hooks);
    try {
      if (this.lastSeq === undefined && request.forceSbp !== true) await this.learnLastSeq();
      const refs: ProtocolRefs = compact({
        request: JSON.stringify(request),
        notBeforeTime: this.notBeforeTime(),
        afterSeq: request.forceSbp === true ? undefined : this.lastSeq,
      });
      try {
        await hooks.beforeSend(refs);
      } catch (error) {
        return failedBeforeSend(error);
      }
      let result: TransactionResult;
      try {
        result = await this.session((client) => client.transaction(request, { signal: abort.signal }), { signal: abort.signal });
      } catch (error) {
        // transaction() throws only for invalid input or BUSY, and the secure login fails before the
        // transaction is sent: nothing reached the bank.
        return failedBeforeSend(error);
      }
      return this.fromResult(result, refs);
    } finally {
      detachFrames();
      this.running = undefined;
    }
  }

  private async adminCommand(command: OperationCommand, hooks: ExecuteHooks): Promise<OperationOutcome> {
    const password = adminPassword(this.config);
    if (this.running !== undefined) return { state: 'failed', reason: 'not sent: another command is running on this terminal' };
    const abort = new AbortController();
    this.running = { operationId: command.operationId, abort, hooks };
    const detachFrames = this.frames.attach(hooks);
    try {
      await hooks.beforeSend({ command: command.type });
      try {
        switch (command.type) {
          case 'settlement': {
            // The full report taken right before closing gives per-type counts and sums for
            // reconciliation (the sreport carries only the net total). Not having it does not stop the close.
            const { before, response } = await this.session(async (client) => ({
              before: await client.report(password, 'full', { signal: abort.signal }).catch(() => null),
              response: await client.settlement(password, { signal: abort.signal }),
            }));
            const xreport = before?.status === 'ok' ? (before.xreport ?? null) : null;
            return response.status === 'ok'
              ? { state: 'approved', data: { report: response.sreport ?? null, xreport } }
              : { state: 'failed', reason: `settlement answered ${response.status}`, responseCode: response.status };
          }
          case 'report_x': {
            const response = await this.session((client) => client.report(password, 'brief', { signal: abort.signal }));
            return response.status === 'ok'
              ? { state: 'approved', data: { report: response.xreport ?? null } }
              : { state: 'failed', reason: `report answered ${response.status}`, responseCode: response.status };
          }
          default:
            return { state: 'approved', data: await this.terminalInfoUnlocked(password) };
        }
      } catch (error) {
        if (error instanceof JpayError && (error.code === 'CONNECT_FAILED' || error.code === 'NOT_LOGGED_IN')) return failedBeforeSend(error);
        // Settlement moves money totals: a lost answer is unknown, never failed.
        return { state: 'unknown', reason: errorMessage(error), protocolRefs: { command: command.type } };
      }
    } catch (error) {
      return failedBeforeSend(error);
    } finally {
      detachFrames();
      this.running = undefined;
    }
  }

  private async terminalInfoUnlocked(password: string): Promise<Record<string, unknown>> {
    const response = await this.client.withAdminSession(password, (client) => client.getParameters(), { secure: this.encrypted });
    return { ...(response.parameters ?? {}) };
  }

  /** One full report per driver instance (when the admin password is known), to learn the last receipt number. */
  private async learnLastSeq(): Promise<void> {
    const password = this.config.credentials?.adminPassword;
    if (!password) return;
    try {
      const report = await this.session((client) => client.report(password, 'full'));
      const seqs = (report.xreport?.transactions ?? []).map((t) => Number(t.seq)).filter((n) => Number.isFinite(n));
      this.lastSeq = String(seqs.length > 0 ? Math.max(...seqs) : 0).padStart(6, '0');
    } catch {
      // Recovery then relies on the time bound alone.
    }
  }

  private notBeforeTime(): string {
    const now = Date.now() - CLOCK_SKEW_MS;
    const zone = this.config.timeZone;
    if (zone) return formatYyMmDdHhMmSs(new Date(now), zone);
    return formatYyMmDdHhMmSs(new Date(now - WORST_ZONE_OFFSET_MS), 'UTC');
  }

  private toRequest(command: OperationCommand): TransactionRequest {
    switch (command.type) {
      case 'purchase':
        return { type: 'purchase', amount: requireAmount(command) };
      case 'sbp_payment':
        return { type: 'purchase', amount: requireAmount(command), forceSbp: true };
      case 'purchase_with_cashback':
        return { type: 'purchase-with-cashback', amount: requireAmount(command), amountOther: requireAmount(command, 'cashbackAmount') };
      case 'refund':
      case 'sbp_refund': {
        const original = requireOriginal(command);
        const rrn = original.rrn ?? refString(original.protocolRefs, 'rrn');
        if (rrn === undefined) throw new DriverError('INVALID_COMMAND', `${command.type} needs the RRN of the original operation`);
        return compact({ type: 'refund' as const, amount: requireAmount(command), rrn, forceSbp: command.type === 'sbp_refund' ? true : undefined });
      }
      case 'void':
      case 'partial_void': {
        const original = requireOriginal(command);
        const seq = refString(original.protocolRefs, 'seq');
        if (seq === undefined) throw new DriverError('INVALID_COMMAND', `${command.type} needs the receipt number (seq) of the original operation`);
        return compact({ type: 'void' as const, number: seq, amount: command.type === 'partial_void' ? requireAmount(command) : undefined });
      }
      default:
        throw new DriverError('UNSUPPORTED_OPERATION', `JPAY does not support operation type "${command.type}"`);
    }
  }

  private fromResult(result: TransactionResult, refs: ProtocolRefs): OperationOutcome {
    switch (result.outcome) {
      case 'approved':
      case 'declined':
        return this.fromReceipt(result.outcome, result.receipt, refs);
      case 'canceled':
      case 'error': {
        if ('error' in result && result.error !== undefined) return failedBeforeSend(result.error);
        // Appendix A: the state, reason code and message come from the JPAY result-code table.
        const row = jpayStatusResult(result.status ?? 'failed');
        return { state: row.state, reason: row.message, reasonCode: row.reasonCode, responseCode: result.status, protocolRefs: refs };
      }
      case 'unknown':
        return { state: 'unknown', reason: `${result.reason}${result.error ? `: ${result.error.message}` : ''}`, protocolRefs: refs };
    }
  }

  private fromReceipt(state: 'approved' | 'declined', receipt: Receipt, refs: ProtocolRefs): OperationOutcome {
    if (receipt.seq !== undefined && receipt.iface !== 'sbp' && (this.lastSeq === undefined || Number(receipt.seq) > Number(this.lastSeq))) {
      this.lastSeq = receipt.seq;
    }
    const lines = [
      ...receipt.header,
      receipt.type ? `${receipt.type.toUpperCase()} ${receipt.tstatus ?? receipt.status ?? ''}`.trim() : undefined,
      receipt.amountAuthorized === undefined ? undefined : `AMOUNT ${receipt.amountAuthorized}`,
      receipt.pan ? `CARD ${receipt.pan}` : undefined,
      receipt.rrn ? `RRN ${receipt.rrn}` : undefined,
      receipt.authNumber ? `AUTH ${receipt.authNumber}` : undefined,
      ...receipt.footer,
    ].filter((l): l is string => l !== undefined);
    const row = jpayReceiptResult(state === 'approved', receipt.declineReason);
    return compact({
      state,
      reason: state === 'declined' ? row.message : undefined,
      reasonCode: row.reasonCode,
      responseCode: receipt.respCode,
      responseMessage: receipt.respCodeDescription,
      maskedPan: receipt.plainTextPanMasked ?? receipt.pan,
      rrn: receipt.rrn,
      approvalCode: receipt.authNumber,
      amount: receipt.amountAuthorized,
      protocolRefs: compact({ ...refs, seq: receipt.seq, rrn: receipt.rrn, iface: receipt.iface }),
      receipt: {
        text: lines.join('\n'),
        fields: compact({
          seq: receipt.seq,
          type: receipt.type,
          tid: receipt.tid,
          mid: receipt.mid,
          datetime: receipt.datetime,
          applicationName: receipt.applicationName,
          aid: receipt.aid,
          bankName: receipt.bankName,
        }),
      },
    });
  }

  private fromLogEntry(state: 'approved' | 'declined', entry: ReportTransaction, refs: ProtocolRefs): OperationOutcome {
    return compact({
      state,
      reason: state === 'declined' ? 'declined (terminal log)' : undefined,
      responseCode: entry.respCode,
      maskedPan: entry.pan,
      rrn: entry.rrn,
      approvalCode: entry.authNumber,
      amount: entry.amount,
      protocolRefs: compact({ ...refs, seq: entry.seq, rrn: entry.rrn, recoveredFrom: 'report' }),
      receipt: { fields: compact({ seq: entry.seq, type: entry.type, time: entry.time, source: 'terminal log' }) },
    });
  }

  private onEvent(event: JpayEvent): void {
    const hooks = this.running?.hooks;
    if (hooks === undefined) return;
    const progress = toProgress(event);
    if (progress !== undefined) hooks.onProgress(progress);
  }
}

function toProgress(event: JpayEvent): OperationProgress | undefined {
  if (event.type === 'command-sent' && event.command === 'transaction') return { kind: 'status', subStatus: 'processing' };
  if (event.type !== 'message') return undefined;
  const message = event.message;
  switch (message.type) {
    case 'display':
      return message.msg ? { kind: 'display', text: message.msg } : undefined;
    case 'displayqrcode':
      return { kind: 'qr', action: message.status, url: message.url };
    default:
      return undefined;
  }
}

function parseRequest(refs: ProtocolRefs): TransactionRequest | undefined {
  const raw = refString(refs, 'request');
  if (raw === undefined) return undefined;
  try {
    return JSON.parse(raw) as TransactionRequest;
  } catch {
    return undefined;
  }
}

/** yyMMddHHmmss of `date` in `timeZone`. */
export function formatYyMmDdHhMmSs(date: Date, timeZone: string): string {
  const parts = new Intl.DateTimeFormat('en-GB', {
    timeZone,
    year: '2-digit',
    month: '2-digit',
    day: '2-digit',
    hour: '2-digit',
    minute: '2-digit',
    second: '2-digit',
    hourCycle: 'h23',
  }).formatToParts(date);
  const get = (type: string) => parts.find((p) => p.type === type)?.value ?? '00';
  return `${get('year')}${get('month')}${get('day')}${get('hour')}${get('minute')}${get('second')}`;
}

export { LinkError };
