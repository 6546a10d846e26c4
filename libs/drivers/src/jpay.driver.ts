import {
  closeDayFromReport,
  type Dialect,
  JpayClient,
  JpayError,
  type JpayEvent,
  isCardEntry,
  type LogAnchor,
  logAnchor,
  paymentMethodsOf,
  type Receipt,
  type ReportTransaction,
  resolveFromReport,
  type TransactionRequest,
  type TransactionResult,
  transportFromDuplex,
  type XReport,
} from '@payorch/jpay';

import { assertSupported, DriverError } from './capabilities';
import { FrameTap } from './frames';
import { jpayReceiptResult, jpayStatusResult } from './result-codes';
import {
  adminPassword,
  compact,
  DriverLinks,
  errorMessage,
  failedBeforeSend,
  LinkError,
  READ_ONLY_TYPES,
  refString,
  requireAmount,
  requireOriginal,
} from './shared';
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
 * Nothing of the command was written: its secure session could not be set up, or its claim
 * (`beforeSend`) failed. Carries the cause's message, so the outcome reads "not sent: <cause>".
 */
class NotSent extends Error {
  constructor(readonly reason: unknown) {
    super(errorMessage(reason));
    this.name = 'NotSent';
  }
}

/**
 * Only these errors prove the command was not written, so only they map to `failed` ("not sent"): a
 * session or claim that failed first, and the library's `reject-request` errors (invalid request, BUSY,
 * connection not opened, login refused), which it raises only before writing ([PAYORCH-AFTER-SEND]).
 * Anything else may have come after the terminal got the command.
 */
function provablyNotSent(error: unknown): boolean {
  return error instanceof NotSent || (error instanceof JpayError && error.reaction === 'reject-request');
}

/**
 * The last entry of the log of one kind (RRN or time tell it from a namesake): card and SBP receipts have
 * their own counters (§8.10 "Номер транзакции в поле seq назначается независимо от номеров карточных транзакций").
 */
function lastEntry(transactions: readonly ReportTransaction[], kind: 'card' | 'sbp'): LogAnchor | undefined {
  const ofKind = transactions.filter((t) => isCardEntry(t) === (kind === 'card'));
  const anchors = ofKind.map((t) => logAnchor(t)).filter((a): a is LogAnchor => a !== undefined);
  return anchors.reduce<LogAnchor | undefined>((last, a) => (last === undefined || Number(a.seq) > Number(last.seq) ? a : last), undefined);
}

/**
 * JPAY / aQsi banking application (we are the client; one command per connection). Transactions have no
 * request id, so `beforeSend` persists what recovery needs to find the transaction in the terminal's log:
 * the request, the time lower bound (terminal clock) and the last card log entry this driver knew (the
 * anchor, [PAYORCH-RECOVER-ANCHOR]), with the last SBP entry for a request that may run as SBP (SBP
 * receipts are numbered apart, §8.10); a close-day persists an entry of the log it is about to empty.
 */
export class JpayDriver implements TerminalDriver {
  readonly protocol = 'JPAY' as const;
  readonly device: string | undefined;
  private readonly client: JpayClient;
  private running: Running | undefined;
  /**
   * The last card entry and the last SBP entry of the terminal's log as this driver knows them (`seq`
   * 000000: the log had none of that kind). Undefined = learn them from a full report before the next
   * transaction that needs them: at start, and after an outcome that may have added or removed entries
   * unseen (unknown, a close-day).
   */
  private cardAnchor: LogAnchor | undefined;
  private sbpAnchor: LogAnchor | undefined;
  private readonly links: DriverLinks;
  private readonly frames = new FrameTap('JPAY');

  constructor(private readonly config: DriverConfig) {
    this.device = config.device;
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
   * encrypted, then logout, which forgets the key). A session that cannot be set up throws NotSent
   * before `work` sends anything.
   */
  private async session<T>(work: (client: JpayClient) => Promise<T>, options: { signal?: AbortSignal } = {}): Promise<T> {
    if (!this.encrypted) return work(this.client);
    let login;
    try {
      login = await this.client.login(adminPassword(this.config), { secure: true, signal: options.signal });
    } catch (error) {
      throw new NotSent(error);
    }
    if (login.status !== 'ok') throw new NotSent(new JpayError('NOT_LOGGED_IN', `secure login answered ${login.status}`));
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

  /**
   * Decides an unknown outcome from the terminal's log (full report, admin password): a transaction is
   * looked up after its anchor (see @payorch/jpay recovery), a close-day by whether the log entry it
   * recorded is still there. A read (X report, parameters) whose answer was lost is failed: it changes nothing, ask
   * again. Any other claimed command has nothing to be asked again: it stays unknown.
   */
  async recover(command: OperationCommand, refs: ProtocolRefs): Promise<OperationOutcome> {
    const claimed = refString(refs, 'command');
    if (claimed === 'settlement') return this.recoverCloseDay(refs);
    // An X report or the terminal's parameters change nothing: until 2026-12-07 a lost answer stayed UNKNOWN, which kept
    // every payment and close-day off the terminal (TERMINAL_RECOVERING) until a person resolved it.
    if (claimed !== undefined && READ_ONLY_TYPES.has(command.type)) {
      return { state: 'failed', reason: `${claimed}: its answer was lost; it changes nothing on the terminal, ask again`, protocolRefs: refs };
    }
    if (claimed !== undefined) {
      return { state: 'unknown', reason: `${claimed} was sent and its answer lost; JPAY cannot be asked for it again`, protocolRefs: refs };
    }
    // The driver persists the request before writing a transaction: without it, nothing was sent.
    const request = parseRequest(refs);
    if (request === undefined) return { state: 'failed', reason: 'no request was recorded: the transaction was never sent' };
    const report = await this.readLog(refs);
    if (!('transactions' in report)) return report;
    // Refs recorded before 2026-12-07 have no SBP anchor: recovery then bounds SBP entries by time alone.
    const resolution = resolveFromReport(report, {
      request,
      afterSeq: refString(refs, 'afterSeq'),
      afterRrn: refString(refs, 'afterRrn'),
      afterTime: refString(refs, 'afterTime'),
      afterSbpSeq: refString(refs, 'afterSbpSeq'),
      afterSbpRrn: refString(refs, 'afterSbpRrn'),
      afterSbpTime: refString(refs, 'afterSbpTime'),
      notBeforeTime: refString(refs, 'notBeforeTime'),
    });
    switch (resolution.resolution) {
      case 'approved':
      case 'declined':
        return this.fromLogEntry(resolution.resolution, resolution.transaction, refs);
      case 'not-found':
        return {
          state: 'failed',
          reason: `the transaction is not in the terminal log after ${anchorsText(refs)}, and the log was not emptied since: it was not performed`,
          protocolRefs: refs,
        };
      case 'undetermined':
        return {
          state: 'unknown',
          reason:
            resolution.why === 'log-emptied'
              ? 'not in the terminal log, but the log was emptied (settlement or clear) since the attempt: it may have run'
              : resolution.why === 'kind-unanchored'
                ? 'not in the terminal log within the time bound, and entries of the same amount paid by card or SBP (numbered apart) cannot be told from it without an anchor of their kind: it may have run'
                : 'not in the terminal log, and no earlier entry proves the log complete since the attempt: it may have run',
          protocolRefs: refs,
        };
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

  /**
   * [PAYORCH-RECOVER-CLOSE] A close-day whose answer was lost: the entry recorded before it still in the
   * log = the day was not closed (`failed`, a new close-day may go); gone = the log was emptied, the day
   * is closed (`approved`, its totals went with the lost answer). Nothing recorded = unknown.
   */
  private async recoverCloseDay(refs: ProtocolRefs): Promise<OperationOutcome> {
    const before = logAnchor({ seq: refString(refs, 'logBeforeSeq'), rrn: refString(refs, 'logBeforeRrn'), time: refString(refs, 'logBeforeTime') });
    if (before === undefined) {
      return {
        state: 'unknown',
        reason: 'the close-day was sent and its answer lost, and no log entry was recorded before it: the log cannot tell whether the day was closed',
        protocolRefs: refs,
      };
    }
    const report = await this.readLog(refs);
    if (!('transactions' in report)) return report;
    switch (closeDayFromReport(report, before)) {
      case 'not-closed':
        return {
          state: 'failed',
          reason: `receipt ${before.seq}, logged before the close-day, is still in the terminal log: the day was not closed`,
          protocolRefs: refs,
        };
      case 'undetermined':
        return { state: 'unknown', reason: 'the terminal log cannot tell whether the day was closed', protocolRefs: refs };
      case 'closed':
        return {
          state: 'approved',
          reason: `receipt ${before.seq}, logged before the close-day, is gone from the terminal log: the day was closed (its totals were lost with the answer)`,
          data: { report: null, xreport: null },
          protocolRefs: { ...refs, recoveredFrom: 'report' },
        };
    }
  }

  /** The terminal's full report, or the `unknown` outcome saying why it could not be read. */
  private async readLog(refs: ProtocolRefs): Promise<XReport | OperationOutcome> {
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
    return report.xreport;
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
      // SBP receipts are numbered apart (§8.10): a request that may run as SBP (a purchase without force-sbp
      // offers the QR beside the card) needs the last SBP entry too, or an SBP payment numbered below the card
      // anchor reads "not performed". The card anchor goes with every request: still in the log, it proves
      // the log unbroken for SBP entries as well (a close empties both kinds, §8.12).
      const sbp = paymentMethodsOf(request).sbp;
      if (this.cardAnchor === undefined || (sbp && this.sbpAnchor === undefined)) await this.learnAnchors();
      const card = this.cardAnchor;
      const sbpAnchor = sbp ? this.sbpAnchor : undefined;
      const refs: ProtocolRefs = compact({
        request: JSON.stringify(request),
        notBeforeTime: this.notBeforeTime(),
        afterSeq: card?.seq,
        afterRrn: card?.rrn,
        afterTime: card?.time,
        afterSbpSeq: sbpAnchor?.seq,
        afterSbpRrn: sbpAnchor?.rrn,
        afterSbpTime: sbpAnchor?.time,
      });
      try {
        await hooks.beforeSend(refs);
      } catch (error) {
        return failedBeforeSend(error);
      }
      let outcome: OperationOutcome;
      try {
        outcome = this.fromResult(await this.session((client) => client.transaction(request, { signal: abort.signal }), { signal: abort.signal }), refs);
      } catch (error) {
        // "Not sent" only when provably nothing was written (secure login, an invalid request, BUSY);
        // anything else may have reached the terminal.
        if (provablyNotSent(error)) return failedBeforeSend(error);
        outcome = { state: 'unknown', reason: errorMessage(error), protocolRefs: refs };
      }
      // Our transaction may now be in the log after the anchors: learn the log's end again before the next.
      if (outcome.state === 'unknown') this.forgetAnchors();
      return outcome;
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
    // The references persisted by beforeSend: set once the command is claimed, then it may be sent.
    let claimed: ProtocolRefs | undefined;
    const claim = async (refs: ProtocolRefs): Promise<void> => {
      try {
        await hooks.beforeSend(refs);
      } catch (error) {
        throw new NotSent(error);
      }
      claimed = refs;
    };
    try {
      switch (command.type) {
        case 'settlement':
          return await this.closeDay(password, claim, abort.signal);
        case 'report_x': {
          await claim({ command: command.type });
          const response = await this.session((client) => client.report(password, 'brief', { signal: abort.signal }));
          return response.status === 'ok'
            ? { state: 'approved', data: { report: response.xreport ?? null } }
            : { state: 'failed', reason: `report answered ${response.status}`, responseCode: response.status };
        }
        default:
          await claim({ command: command.type });
          return { state: 'approved', data: await this.terminalInfoUnlocked(password) };
      }
    } catch (error) {
      if (claimed === undefined || provablyNotSent(error)) return failedBeforeSend(error);
      // A close-day moves the day's totals: a lost answer is unknown, never failed; recover() reads the log.
      return { state: 'unknown', reason: errorMessage(error), protocolRefs: claimed };
    } finally {
      detachFrames();
      this.running = undefined;
    }
  }

  /**
   * Settlement (§8.12). The full report taken right before closing gives per-type counts and sums for
   * reconciliation (the sreport carries only the net total), and a card entry whose presence afterwards
   * tells recovery whether the day was closed ([PAYORCH-RECOVER-CLOSE]); it is claimed with the command.
   * Not having the report does not stop the close (recovery then cannot tell, and says unknown).
   */
  private async closeDay(password: string, claim: (refs: ProtocolRefs) => Promise<void>, signal: AbortSignal): Promise<OperationOutcome> {
    try {
      const { xreport, response } = await this.session(async (client) => {
        const before = await client.report(password, 'full', { signal }).catch(() => null);
        const xreport = before?.status === 'ok' ? (before.xreport ?? null) : null;
        const entry = xreport === null ? undefined : lastEntry(xreport.transactions, 'card');
        await claim(
          compact({
            command: 'settlement',
            logBeforeEntries: xreport?.transactions.length,
            logBeforeSeq: entry?.seq,
            logBeforeRrn: entry?.rrn,
            logBeforeTime: entry?.time,
          }),
        );
        return { xreport, response: await client.settlement(password, { signal }) };
      });
      return response.status === 'ok'
        ? { state: 'approved', data: { report: response.sreport ?? null, xreport } }
        : { state: 'failed', reason: `settlement answered ${response.status}`, responseCode: response.status };
    } finally {
      // A close (or an attempt) empties the log: the anchors are learned again.
      this.forgetAnchors();
    }
  }

  private async terminalInfoUnlocked(password: string): Promise<Record<string, unknown>> {
    const response = await this.client.withAdminSession(password, (client) => client.getParameters(), { secure: this.encrypted });
    return { ...(response.parameters ?? {}) };
  }

  /**
   * Learns both anchors from a full report (when the admin password is known): at start and after an
   * outcome that may have changed the log unseen. Without them, recovery relies on the time bound alone
   * and never concludes "not performed".
   */
  private async learnAnchors(): Promise<void> {
    const password = this.config.credentials?.adminPassword;
    if (!password) return;
    try {
      const report = await this.session((client) => client.report(password, 'full'));
      if (report.status !== 'ok' || !report.xreport) return;
      this.cardAnchor = lastEntry(report.xreport.transactions, 'card') ?? { seq: '000000' };
      this.sbpAnchor = lastEntry(report.xreport.transactions, 'sbp') ?? { seq: '000000' };
    } catch {
      // Recovery then relies on the time bound alone.
    }
  }

  private forgetAnchors(): void {
    this.cardAnchor = undefined;
    this.sbpAnchor = undefined;
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
      case 'unknown': {
        const detail = result.error
          ? `: ${result.error.message}`
          : result.status !== undefined
            ? `: ${result.status} without a receipt does not prove the transaction was not performed`
            : '';
        return compact({ state: 'unknown' as const, reason: `${result.reason}${detail}`, responseCode: result.status, protocolRefs: refs });
      }
    }
  }

  private fromReceipt(state: 'approved' | 'declined', receipt: Receipt, refs: ProtocolRefs): OperationOutcome {
    // The newest receipt is the log's newest entry of its kind (after a close its number may start again):
    // an SBP receipt (`iface` sbp, §8.10) moves the SBP anchor, any other the card anchor.
    const anchor = logAnchor({ seq: receipt.seq, rrn: receipt.rrn, time: receipt.datetime });
    if (anchor !== undefined && receipt.iface === 'sbp') this.sbpAnchor = anchor;
    else if (anchor !== undefined) this.cardAnchor = anchor;
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

/** The anchors a transaction recorded, for a reason: "card receipt 000150 and SBP receipt 000010". */
function anchorsText(refs: ProtocolRefs): string {
  const named = (kind: string, seq: string | undefined) => (seq === undefined || Number(seq) === 0 ? [] : [`${kind} receipt ${seq}`]);
  const text = [...named('card', refString(refs, 'afterSeq')), ...named('SBP', refString(refs, 'afterSbpSeq'))].join(' and ');
  return text || 'its anchors';
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
