import { randomInt } from 'node:crypto';

import {
  type CommandOutcome,
  duplexTransport,
  type IdAllocator,
  type InterruptResponse,
  type OperationResult,
  type RecoveryOutcome,
  type TillCommandInput,
  type TillCommandName,
  TillSession,
} from '@payorch/joinproto';

import { assertSupported, DriverError } from './capabilities';
import { FrameTap } from './frames';
import { joinprotoResult } from './result-codes';
import { compact, DriverLinks, errorMessage, failedBeforeSend, refString, requireAmount, requireOriginal } from './shared';
import type { CancelResult, DriverConfig, ExecuteHooks, OperationCommand, OperationOutcome, ProtocolRefs, TerminalDriver } from './types';

/** How many recent random DF01 ids a driver without an id source avoids (~60 KB at most). */
const RECENT_IDS = 1_024;

/** A set of at most `capacity` ids: adding one more forgets the oldest. */
export class RecentIds {
  private readonly ids = new Set<string>();

  constructor(private readonly capacity: number) {}

  /** Adds `id`; false when it is already among the recent ones. */
  add(id: string): boolean {
    if (this.ids.has(id)) return false;
    this.ids.add(id);
    if (this.ids.size > this.capacity) this.ids.delete(this.ids.values().next().value as string);
    return true;
  }

  get size(): number {
    return this.ids.size;
  }
}

const BANK_TIMEOUT_KEYS: readonly TillCommandName[] = [
  'Purchase',
  'Preauth',
  'Completion',
  'Cancel',
  'Refund',
  'CashAdvance',
  'CashDeposit',
  'Balance',
  'PinChange',
  'LoadKeys',
  'CloseDay',
];

/**
 * Whether a 90's answer proves that no command runs on the terminal any more (spec 4.10): interrupted (4.10.1: the
 * running command ends CANCELED) or `XX Nothing to interrupt` (4.10.2: the terminal waits for a command). Anything
 * else — no answer, another refusal (a command past the point where it can be interrupted, in its host exchange) —
 * leaves a command possibly running, and a 95 "not found" then only means its answer is not there yet. Until
 * 2026-12-07 the 90's answer was ignored and such a command was reported failed while it could still be approved.
 * Returns true, or what the 90 answered instead (for the operation's reason).
 */
function provesNothingRunning(answer: CommandOutcome<InterruptResponse> | undefined): true | string {
  if (answer === undefined) return 'the interrupt (90) was not sent';
  if (answer.outcome !== 'completed') return `the interrupt (90) got no answer (${answer.reason})`;
  if (answer.result.category === 'approved') return true;
  if (answer.response.responseCode === 'XX' && /^nothing to interrupt$/i.test((answer.response.message ?? '').trim())) return true;
  return `the interrupt (90) was answered ${answer.response.responseCode ?? ''} ${answer.response.message ?? ''}`.trimEnd();
}

/**
 * Joinproto terminals (we are the till). One TillSession per link, reopened when the link drops.
 * DF01 is allocated by an IdAllocator that awaits `beforeSend` before handing the id to the session, so
 * the id is persisted before the frame that carries it is written.
 */
export class JoinprotoDriver implements TerminalDriver {
  readonly protocol = 'JOINPROTO' as const;
  readonly device: string | undefined;
  private session: TillSession | undefined;
  private opening: Promise<TillSession> | undefined;
  /**
   * The random ids of this driver's recent commands, when it has no id source of its own (tests, tools): a new id avoids
   * them. Bounded: it held every id the driver ever sent, one string per command for the life of the link (a
   * terminal's months-long tunnel), and with a persisted counter it refused the counter's ids once it had wrapped.
   */
  private readonly recentIds = new RecentIds(RECENT_IDS);
  /** Set while a command waits for its DF01: the allocator persists the id through it before returning it. */
  private pendingBeforeSend: ((id: string) => Promise<void>) | undefined;
  private running: { operationId: string; df01?: string } | undefined;
  private readonly links: DriverLinks;
  private readonly frames = new FrameTap('JOINPROTO');

  constructor(private readonly config: DriverConfig) {
    this.device = config.device;
    this.links = new DriverLinks(config);
  }

  async execute(command: OperationCommand, hooks: ExecuteHooks): Promise<OperationOutcome> {
    let input: TillCommandInput;
    try {
      assertSupported('JOINPROTO', this.config.dialect, command.type);
      input = this.toInput(command);
    } catch (error) {
      if (error instanceof DriverError) return { state: 'failed', reason: error.message };
      throw error;
    }
    let session: TillSession;
    try {
      session = await this.ensureSession();
    } catch (error) {
      return failedBeforeSend(error);
    }
    const commandName = input.type.slice(0, -'Request'.length);
    this.running = { operationId: command.operationId };
    const detachFrames = this.frames.attach(hooks);
    this.pendingBeforeSend = async (id) => {
      await hooks.beforeSend({ df01: id, command: commandName });
      if (this.running?.operationId === command.operationId) this.running.df01 = id;
      hooks.onProgress({ kind: 'status', subStatus: 'processing' });
    };
    try {
      const outcome = await session.execute(input);
      return this.toOutcome(outcome, { df01: outcome.id, command: commandName });
    } catch (error) {
      // TillSession.execute rejects only before the frame is written (closed session, invalid input, beforeSend failed).
      return failedBeforeSend(error);
    } finally {
      detachFrames();
      this.pendingBeforeSend = undefined;
      this.running = undefined;
    }
  }

  async cancel(operationId: string): Promise<CancelResult> {
    const running = this.running;
    if (running?.operationId !== operationId || this.session === undefined) return 'not_running';
    if (running.df01 === undefined) return 'too_late';
    const ack = await this.session.interrupt().catch(() => undefined);
    if (ack?.outcome === 'completed' && ack.result.category === 'approved') return 'requested';
    return 'too_late';
  }

  /**
   * 90 first (a command still running is interrupted, so "not found" becomes conclusive), then 95 for DF01:
   * the terminal repeats its answer, or has none: the command never ran → failed, but only when the 90 proved that
   * nothing runs any more (see provesNothingRunning); otherwise unknown, and recovery asks again later.
   */
  async recover(command: OperationCommand, refs: ProtocolRefs): Promise<OperationOutcome> {
    const df01 = refString(refs, 'df01');
    if (df01 === undefined) return { state: 'failed', reason: 'no DF01 was recorded: the command was never sent' };
    let session: TillSession;
    try {
      session = await this.ensureSession();
    } catch (error) {
      return { state: 'unknown', reason: `terminal unreachable: ${errorMessage(error)}`, protocolRefs: refs };
    }
    if (this.config.options?.nextJoinprotoId === undefined) this.recentIds.add(df01);
    const idle = provesNothingRunning(await session.interrupt().catch(() => undefined));
    let outcome: RecoveryOutcome;
    try {
      outcome = await session.recover(df01);
    } catch (error) {
      return { state: 'unknown', reason: `recovery failed: ${errorMessage(error)}`, protocolRefs: refs };
    }
    if (outcome.outcome === 'not-found') {
      // A command still running has no answer to repeat yet: "not found" proves nothing unless the 90 said so.
      if (idle !== true) {
        return { state: 'unknown', reason: `the terminal has no answer for DF01 ${df01} yet, and ${idle}: it may still be running it`, protocolRefs: refs };
      }
      return { state: 'failed', reason: `the terminal has no answer for DF01 ${df01}: the command was not performed`, protocolRefs: refs };
    }
    return this.toOutcome(outcome, { ...refs, df01 });
  }

  async terminalInfo(): Promise<Record<string, unknown>> {
    return { protocol: 'JOINPROTO', terminalId: this.config.terminalId, merchantId: this.config.merchantId };
  }

  /** Ends the link at once: a command in flight becomes `unknown` (transport-closed) and is recovered with 95 later. */
  async close(): Promise<void> {
    this.links.close();
    this.session?.close();
    this.session = undefined;
  }

  private async ensureSession(): Promise<TillSession> {
    if (this.links.closed) throw new Error('driver closed');
    if (this.session !== undefined && !this.session.isClosed) return this.session;
    this.opening ??= (async () => {
      try {
        const stream = await this.links.open();
        const timeout = this.config.options?.commandTimeoutMs;
        const timeoutsMs = timeout === undefined ? undefined : Object.fromEntries(BANK_TIMEOUT_KEYS.map((k) => [k, timeout]));
        this.session = new TillSession({
          transport: this.frames.wrap(duplexTransport(stream)),
          ids: this.allocator(),
          timeoutsMs,
          ...(this.config.relay && { relay: this.config.relay }),
        });
        return this.session;
      } finally {
        this.opening = undefined;
      }
    })();
    return this.opening;
  }

  private allocator(): IdAllocator {
    return {
      next: () => this.freshId(),
      // The id the session sends the command with (not merely the first one `next` gave: the session may refuse one).
      accepted: async (id) => {
        const hook = this.pendingBeforeSend;
        if (hook !== undefined) {
          this.pendingBeforeSend = undefined;
          await hook(id);
        }
      },
    };
  }

  /**
   * The id source of the driver's config (the connector's: the terminal's persisted counter, which is what keeps
   * ids unique per terminal across links, restarts and instances; the session skips ids still in doubt), else a
   * random six-digit id not among this driver's recent ones.
   */
  private async freshId(): Promise<string> {
    const custom = this.config.options?.nextJoinprotoId;
    if (custom !== undefined) return custom();
    for (let attempt = 0; attempt < 100; attempt++) {
      const id = String(randomInt(1, 1_000_000)).padStart(6, '0');
      if (this.recentIds.add(id)) return id;
    }
    throw new Error('no unused DF01 id available');
  }

  private toInput(command: OperationCommand): TillCommandInput {
    const department = this.config.department ?? undefined;
    const dep = department === undefined ? {} : { department };
    switch (command.type) {
      case 'purchase':
        return { type: 'PurchaseRequest', amount: requireAmount(command), ...dep };
      case 'purchase_with_cashback':
        return { type: 'PurchaseRequest', amount: requireAmount(command), cashback: requireAmount(command, 'cashbackAmount'), ...dep };
      case 'refund':
      case 'void': {
        const original = requireOriginal(command);
        // 06 pays back to the card: a "void" of a refund would pay it out again (capabilities: originals).
        if (command.type === 'void' && original.type === 'refund') {
          throw new DriverError('INVALID_COMMAND', 'Joinproto cannot void a refund: its only reversal (06 Refund) would pay the refund out again');
        }
        const refs = original.protocolRefs;
        const amount = command.type === 'void' ? (original.amount ?? requireAmount(command)) : requireAmount(command);
        return compact({
          type: 'RefundRequest' as const,
          amount,
          originalRrn: original.rrn ?? refString(refs, 'rrn'),
          originalDate: fullDate(refString(refs, 'date')),
          originalReceiptNo: refString(refs, 'receiptNo'),
          ...dep,
        });
      }
      case 'preauth':
        return { type: 'PreauthRequest', amount: requireAmount(command), ...dep };
      case 'preauth_capture':
        return { type: 'CompletionRequest', amount: requireAmount(command), rrn: this.originalRrn(command), ...dep };
      case 'preauth_cancel':
        return { type: 'CancelRequest', rrn: this.originalRrn(command), ...dep };
      case 'cash_withdrawal':
        return { type: 'CashAdvanceRequest', amount: requireAmount(command), ...dep };
      case 'cash_deposit':
        return { type: 'CashDepositRequest', amount: requireAmount(command), ...dep };
      case 'balance_inquiry':
        return { type: 'BalanceRequest', ...dep };
      case 'pin_change':
        return { type: 'PinChangeRequest', ...dep };
      case 'settlement':
        return { type: 'CloseDayRequest', ...dep };
      case 'load_keys':
        return { type: 'LoadKeysRequest', ...dep };
      case 'load_config':
        return { type: 'LoadConfigRequest' };
      case 'update_app':
        return { type: 'UpdateAppRequest' };
      case 'upload_logs':
        return { type: 'UploadLogsRequest' };
      default:
        throw new DriverError('UNSUPPORTED_OPERATION', `JOINPROTO does not support operation type "${command.type}"`);
    }
  }

  private originalRrn(command: OperationCommand): string {
    const original = requireOriginal(command);
    const rrn = original.rrn ?? refString(original.protocolRefs, 'rrn');
    if (rrn === undefined) throw new DriverError('INVALID_COMMAND', `${command.type} needs the RRN of the original operation`, { field: 'original' });
    return rrn;
  }

  private toOutcome(outcome: CommandOutcome | RecoveryOutcome, refs: ProtocolRefs): OperationOutcome {
    if (outcome.outcome === 'unknown') {
      return { state: 'unknown', reason: `${outcome.reason}: ${outcome.detail}`, protocolRefs: refs };
    }
    if (outcome.outcome === 'not-found') return { state: 'failed', reason: 'not performed', protocolRefs: refs };
    const result: OperationResult = outcome.result;
    // 10 LoadConfig / 11 UpdateApp use `001` for "not ok" (spec 4.6, 4.7): their own rule, not the DF16 table.
    const row =
      result.responseCode === undefined || outcome.command === 'LoadConfig' || outcome.command === 'UpdateApp'
        ? undefined
        : joinprotoResult(result.responseCode, result.category === 'canceled');
    const protocolRefs = compact({ ...refs, rrn: result.rrn, receiptNo: result.receiptNo, date: result.date, time: result.time, shiftNo: result.shiftNo });
    const state =
      row?.state ??
      (() => {
        switch (result.category) {
          case 'approved':
            return 'approved' as const;
          case 'declined':
            return 'declined' as const;
          case 'canceled':
            return 'canceled' as const;
          case 'error':
            // 923 "Request in process" is not final: the outcome is still open.
            return result.responseCode === '923' ? ('unknown' as const) : ('failed' as const);
        }
      })();
    const data = compact({
      balance: outcome.command === 'Balance' && state === 'approved' ? result.amount : undefined,
      logs: result.data === undefined ? undefined : Buffer.from(result.data).toString('utf8'),
      merchantId: result.merchantId,
      terminalId: result.terminalId,
    });
    return compact({
      state,
      reason: state === 'approved' ? undefined : (row?.message ?? result.responseMeaning ?? result.message),
      reasonCode: row?.reasonCode,
      responseCode: result.responseCode,
      responseMessage: result.message,
      maskedPan: result.maskedPan,
      rrn: result.rrn,
      approvalCode: result.authCode,
      amount: outcome.command === 'Balance' ? undefined : result.amount,
      protocolRefs,
      receipt:
        result.receiptText === undefined && result.receiptNo === undefined
          ? undefined
          : { text: result.receiptText, fields: compact({ receiptNo: result.receiptNo, shiftNo: result.shiftNo, date: result.date, time: result.time }) },
      data: Object.keys(data).length > 0 ? data : undefined,
    });
  }
}

/** DF2C is YYMMDD; DF09 wants YYYYMMDD (spec 2). */
function fullDate(date: string | undefined): string | undefined {
  if (date === undefined) return undefined;
  return date.length === 6 ? `20${date}` : date;
}
