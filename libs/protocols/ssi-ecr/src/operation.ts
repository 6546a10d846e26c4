import { randomUUID } from 'node:crypto';

import type { RequestLink, SsiEcrClient } from './client';
import { terminalError } from './client';
import { exponentialBackoff, sleep, type Backoff } from './clock';
import type { SsiResponse } from './codec';
import { INTERRUPTIBLE_STATUSES, TERMINAL_STATUSES, type TerminalPhase, type TerminalStatus } from './codes';
import { isSsiEcrError, SsiEcrError } from './errors';
import { matchResult, type MismatchReason, type NotExecutedVerdict, provesNotExecuted } from './matching';
import type { FinancialMethod, ReportMethod, SsiRequest } from './messages';
import { parseTransactionResult, type TerminalReport, type TransactionResult } from './results';

/** A status change seen while polling GetStatus (spec 4.3.4), for live display. */
export interface StatusEvent {
  readonly status: TerminalStatus;
  readonly phase: TerminalPhase;
  readonly description: string;
  readonly at: number;
}

/**
 * Everything needed to decide the outcome later (persist it before the request is sent; JSON-safe).
 * `baseline` is GetLastResult before sending: a result, or null when the buffer was empty (E20).
 */
export interface OperationTicket {
  readonly request: SsiRequest<FinancialMethod>;
  readonly transactionUid?: string;
  readonly baseline?: TransactionResult | null;
  /**
   * When the request was written (clock time). The ticket handed to `onSending` is made before the request is
   * written (it is persisted first), so there it is when the ticket was made: an earlier bound.
   */
  readonly startedAt: number;
  readonly secondStepAmount?: number;
}

export type UnknownReason =
  /** The terminal could not be reached again within the recovery window. */
  | 'CONNECTION_LOST'
  /** The terminal did not return to S00 within the operation timeout. */
  | 'TIMEOUT'
  /** The terminal's last result cannot be proven to be ours. */
  | 'RESULT_NOT_OURS'
  /** A result that contradicts itself (e.g. error=true with APPROVED). */
  | 'INCONSISTENT_RESULT';

export type OperationOutcome =
  | { readonly kind: 'approved'; readonly result: TransactionResult; readonly ticket: OperationTicket }
  | { readonly kind: 'declined'; readonly result: TransactionResult; readonly ticket: OperationTicket }
  | { readonly kind: 'cancelled'; readonly result: TransactionResult; readonly ticket: OperationTicket }
  /**
   * The terminal refused the request (or it could not be delivered): nothing was started. `NOT_EXECUTED`: a
   * request whose fate was open is proven never executed (matching.ts provesNotExecuted).
   */
  | { readonly kind: 'rejected'; readonly error: SsiEcrError; readonly ticket?: OperationTicket }
  /** Money may or may not have moved: recover later with the ticket. Never "failed". */
  | {
      readonly kind: 'unknown';
      readonly reason: UnknownReason;
      readonly detail: string;
      readonly ticket: OperationTicket;
      readonly lastStatus?: TerminalStatus;
      readonly mismatch?: MismatchReason;
      /** The last result read, when it could not be attributed (for a human to look at). */
      readonly candidate?: TransactionResult;
    };

export type ReportOutcome =
  | { readonly kind: 'completed'; readonly report: TerminalReport }
  /** Spec 5.5.4: reconciliation failed (error=true, totals zero). */
  | { readonly kind: 'failed'; readonly report: TerminalReport }
  | { readonly kind: 'rejected'; readonly error: SsiEcrError }
  | { readonly kind: 'unknown'; readonly reason: UnknownReason; readonly detail: string; readonly report?: TerminalReport };

/** What to do after step 1 of a two-step Purchase (later revision, S08). */
export type SecondStepDecision = { readonly kind: 'continue'; readonly transAmount?: number } | { readonly kind: 'cancel' };

export interface OperationOptions {
  readonly onStatus?: (event: StatusEvent) => void;
  /** Awaited before the request is sent: persist the ticket here for recovery after a crash. */
  readonly onSending?: (ticket: OperationTicket) => void | Promise<void>;
  /** Two-step Purchase: decide step 2 from the step-1 result. Default: continue with the same amount. */
  readonly onFirstStep?: (firstStep: TransactionResult) => SecondStepDecision | Promise<SecondStepDecision>;
  /** Overrides the runner's operation timeout. */
  readonly timeoutMs?: number;
  /**
   * Stops the operation at once (its driver was closed: the agent or the connector went away). Before
   * the request is sent the outcome is `rejected` (ABORTED); after, `unknown` (CONNECTION_LOST): polling
   * stops instead of waiting out the recovery window, and recovery later decides from the ticket.
   */
  readonly signal?: AbortSignal;
}

export interface RunnerOptions {
  /** Later revision `transactionUid` + GetResultByUid: probe once (`auto`), or fixed. */
  readonly uidSupport?: 'auto' | 'supported' | 'unsupported';
  readonly uidFactory?: () => string;
  /** GetStatus polling; the attempt counter resets on every status change. */
  readonly pollBackoff?: Backoff;
  /** Retrying after E06 "Terminal Busy". */
  readonly busyBackoff?: Backoff;
  /** From sending to S00; card waits can be long. */
  readonly operationTimeoutMs?: number;
  /** How long E06 may last before the request is given up (nothing started). */
  readonly busyTimeoutMs?: number;
  /** How long to keep reconnecting after the connection is lost mid-operation. */
  readonly recoveryTimeoutMs?: number;
  /** After the operation timeout, extra time granted after an Interrupt sent in S02/S03/S08. */
  readonly interruptGraceMs?: number;
  /**
   * How long after the link that carried a request closed the terminal may still read it (bytes left in a
   * socket or serial buffer): the "never executed" proof is not taken before then.
   */
  readonly lostRequestSettleMs?: number;
}

type Resolved = Required<Omit<RunnerOptions, 'uidSupport'>>;

const TRANSPORT_FAILURES = new Set(['CONNECT_FAILED', 'CONNECTION_CLOSED', 'TIMEOUT', 'UNEXPECTED_RESPONSE']);
const isTransportFailure = (error: unknown): error is SsiEcrError => error instanceof SsiEcrError && TRANSPORT_FAILURES.has(error.code);

/**
 * The asynchronous flow of spec section 3: ack → poll GetStatus (S01–S07 → S00) → GetLastResult /
 * GetLastReport, with E06 retry, Interrupt windows, two-step Purchase, timeouts and recovery.
 */
export class SsiEcrRunner {
  private readonly options: Resolved;
  private uidSupported: boolean | undefined;

  constructor(
    readonly client: SsiEcrClient,
    options: RunnerOptions = {},
  ) {
    this.options = {
      uidFactory: options.uidFactory ?? randomUUID,
      pollBackoff: options.pollBackoff ?? exponentialBackoff(250, 1000),
      busyBackoff: options.busyBackoff ?? exponentialBackoff(500, 3000),
      operationTimeoutMs: options.operationTimeoutMs ?? 180_000,
      busyTimeoutMs: options.busyTimeoutMs ?? 30_000,
      recoveryTimeoutMs: options.recoveryTimeoutMs ?? 120_000,
      interruptGraceMs: options.interruptGraceMs ?? 30_000,
      lostRequestSettleMs: options.lostRequestSettleMs ?? 5_000,
    };
    if (options.uidSupport === 'supported') this.uidSupported = true;
    if (options.uidSupport === 'unsupported') this.uidSupported = false;
  }

  /** Starts a financial operation; `outcome` settles once, never rejects. */
  start(request: SsiRequest<FinancialMethod>, options: OperationOptions = {}): FinancialOperation {
    return new FinancialOperation(this, this.options, request, options);
  }

  run(request: SsiRequest<FinancialMethod>, options: OperationOptions = {}): Promise<OperationOutcome> {
    return this.start(request, options).outcome;
  }

  /** Decides the outcome of an operation whose connection (or process) was lost, from its ticket. */
  recover(ticket: OperationTicket, options: OperationOptions = {}): Promise<OperationOutcome> {
    return new FinancialOperation(this, this.options, ticket.request, options, ticket).outcome;
  }

  /** ZReport / XReport (spec 5.3): same flow, result from GetLastReport. */
  async runReport(request: SsiRequest<ReportMethod>, options: Pick<OperationOptions, 'onStatus' | 'timeoutMs' | 'signal'> = {}): Promise<ReportOutcome> {
    const tracker = new StatusTracker(this.client, this.options, options.onStatus, options.timeoutMs, options.signal);
    const sent = await sendWithBusyRetry(this.client, this.options, async () => request, options.signal);
    if (sent.kind === 'rejected') return sent;
    const idle = await tracker.untilIdle();
    if (idle.kind !== 'idle') return { kind: 'unknown', reason: idle.kind, detail: idle.detail };
    let report: TerminalReport;
    try {
      report = await this.client.getLastReport();
    } catch (error) {
      return { kind: 'unknown', reason: 'CONNECTION_LOST', detail: `GetLastReport failed: ${(error as Error).message}` };
    }
    if (sent.kind === 'unacknowledged') {
      return { kind: 'unknown', reason: 'RESULT_NOT_OURS', detail: 'the report request was never acknowledged', report };
    }
    return { kind: report.error ? 'failed' : 'completed', report };
  }

  /** Probes GetResultByUid once: E05 "Unknown method" means the terminal predates the extension. */
  async supportsTransactionUid(): Promise<boolean> {
    if (this.uidSupported === undefined) {
      const response = await this.client.call({ method: 'GetResultByUid', params: { transactionUid: this.options.uidFactory() } });
      if (response.errorCode === 'E06') throw terminalError(response);
      this.uidSupported = !(response.error && response.errorCode === 'E05');
    }
    return this.uidSupported;
  }
}

type SendResult =
  | { readonly kind: 'acknowledged' }
  | { readonly kind: 'unacknowledged'; readonly error: SsiEcrError }
  | { readonly kind: 'rejected'; readonly error: SsiEcrError };

/**
 * Sends an async request. E06 is retried with backoff until `busyTimeoutMs` (spec 4.3.3: "repeat later");
 * `prepare` runs before each attempt (re-reading the baseline). A lost ack is `unacknowledged`, not rejected.
 */
async function sendWithBusyRetry(
  client: SsiEcrClient,
  options: Resolved,
  prepare: () => Promise<SsiRequest>,
  signal?: AbortSignal,
  onWritten?: (link: RequestLink) => void,
): Promise<SendResult> {
  const busyUntil = client.clock.now() + options.busyTimeoutMs;
  for (let attempt = 0; ; attempt++) {
    let request: SsiRequest;
    let response: SsiResponse;
    if (signal?.aborted) return { kind: 'rejected', error: abortedError(signal) };
    try {
      request = await prepare();
    } catch (error) {
      if (isSsiEcrError(error, 'TERMINAL_BUSY') && client.clock.now() < busyUntil) {
        await sleep(client.clock, options.busyBackoff(attempt), signal);
        continue;
      }
      return { kind: 'rejected', error: asSsiError(error) };
    }
    try {
      response = await client.call(request, { onWritten });
    } catch (error) {
      if (isSsiEcrError(error, 'CONNECT_FAILED') || isSsiEcrError(error, 'INVALID_FIELD') || isSsiEcrError(error, 'MISSING_FIELD')) {
        return { kind: 'rejected', error };
      }
      return { kind: 'unacknowledged', error: asSsiError(error) };
    }
    if (!response.error) return { kind: 'acknowledged' };
    if (response.errorCode === 'E06' && client.clock.now() < busyUntil) {
      await sleep(client.clock, options.busyBackoff(attempt), signal);
      continue;
    }
    return { kind: 'rejected', error: terminalError(response) };
  }
}

const asSsiError = (error: unknown): SsiEcrError => (error instanceof SsiEcrError ? error : new SsiEcrError('UNEXPECTED_RESPONSE', (error as Error).message));

const abortReason = (signal: AbortSignal): string => (signal.reason instanceof Error ? signal.reason.message : String(signal.reason ?? 'aborted'));

const abortedError = (signal: AbortSignal): SsiEcrError => new SsiEcrError('ABORTED', `aborted before sending: ${abortReason(signal)}`);

type IdleResult = { readonly kind: 'idle'; readonly status: TerminalStatus } | { readonly kind: 'TIMEOUT' | 'CONNECTION_LOST'; readonly detail: string };

/** Polls GetStatus until S00/S06, surviving connection loss for `recoveryTimeoutMs`. */
class StatusTracker {
  lastStatus: TerminalStatus | undefined;
  private deadline: number;
  private timeoutInterruptSent = false;

  constructor(
    private readonly client: SsiEcrClient,
    private readonly options: Resolved,
    private readonly onStatus?: (event: StatusEvent) => void,
    timeoutMs?: number,
    private readonly signal?: AbortSignal,
  ) {
    this.deadline = client.clock.now() + (timeoutMs ?? options.operationTimeoutMs);
  }

  get isInterruptible(): boolean {
    return this.lastStatus !== undefined && INTERRUPTIBLE_STATUSES.includes(this.lastStatus);
  }

  /**
   * @param onWaiting called for every non-idle status (used for S08); may perform requests.
   */
  async untilIdle(onWaiting?: (status: TerminalStatus) => Promise<void>): Promise<IdleResult> {
    const clock = this.client.clock;
    let lostSince: number | undefined;
    for (let attempt = 0; ; attempt++) {
      if (this.signal?.aborted) return { kind: 'CONNECTION_LOST', detail: `aborted: ${abortReason(this.signal)}` };
      if (clock.now() >= this.deadline) {
        if (this.isInterruptible && !this.timeoutInterruptSent && lostSince === undefined) {
          // Spec 5.4.2: still waiting for card/PIN past our deadline; cancel instead of abandoning it.
          this.timeoutInterruptSent = true;
          this.deadline = clock.now() + this.options.interruptGraceMs;
          await this.client.call({ method: 'Interrupt' }).catch(() => undefined);
        } else {
          return { kind: 'TIMEOUT', detail: `terminal still in ${this.lastStatus ?? 'an unknown status'} at the deadline` };
        }
      }
      if (lostSince !== undefined && clock.now() - lostSince >= this.options.recoveryTimeoutMs) {
        return { kind: 'CONNECTION_LOST', detail: `terminal unreachable for ${this.options.recoveryTimeoutMs} ms` };
      }
      await sleep(clock, this.options.pollBackoff(attempt), this.signal);
      if (this.signal?.aborted) continue;
      let status: TerminalStatus;
      try {
        status = await this.client.getStatus();
        lostSince = undefined;
      } catch (error) {
        // A terminal error answer to GetStatus is transient; a transport failure starts the recovery window.
        if (isSsiEcrError(error, 'TERMINAL_ERROR') || isSsiEcrError(error, 'TERMINAL_BUSY')) continue;
        if (!isTransportFailure(error)) throw error;
        lostSince ??= clock.now();
        continue;
      }
      if (status !== this.lastStatus) {
        this.lastStatus = status;
        attempt = -1;
        const info = TERMINAL_STATUSES[status];
        this.onStatus?.({ status, phase: info.phase, description: info.description, at: clock.now() });
      }
      // Spec 3: S00 means the operation is over; S06 (Z report required) cannot progress either.
      if (status === 'S00' || status === 'S06') return { kind: 'idle', status };
      await onWaiting?.(status);
    }
  }
}

/** One financial operation; see SsiEcrRunner.start. */
export class FinancialOperation {
  readonly outcome: Promise<OperationOutcome>;
  private readonly tracker: StatusTracker;
  private ticket: OperationTicket;
  private finished = false;
  private secondStepHandled = false;
  /** The terminal acknowledged our request (error=false): spec 5.1 then guarantees a new buffer. */
  private acknowledged = false;
  /** The connection our request was written on (run in this process only). */
  private requestLink: RequestLink | undefined;
  /** Recovery from a ticket: when it started (clock time). */
  private readonly recoveringSince: number | undefined;

  constructor(
    private readonly runner: SsiEcrRunner,
    private readonly options: Resolved,
    private readonly request: SsiRequest<FinancialMethod>,
    private readonly callbacks: OperationOptions,
    recoverFrom?: OperationTicket,
  ) {
    const client = runner.client;
    this.tracker = new StatusTracker(client, options, callbacks.onStatus, callbacks.timeoutMs, callbacks.signal);
    this.ticket = recoverFrom ?? { request, startedAt: client.clock.now() };
    this.recoveringSince = recoverFrom ? client.clock.now() : undefined;
    const flow = recoverFrom ? this.track() : this.execute();
    this.outcome = flow
      .catch((error: unknown): OperationOutcome => this.unknown('CONNECTION_LOST', `runner error: ${(error as Error).message}`))
      .finally(() => {
        this.finished = true;
      });
  }

  /** The last status seen by polling. */
  get status(): TerminalStatus | undefined {
    return this.tracker.lastStatus;
  }

  /**
   * Spec 5.4.2: Interrupt only while the terminal waits for the card (S02) or PIN (S03), or for step 2
   * (S08, later revision). Throws INTERRUPT_NOT_ALLOWED outside that window or when the terminal
   * answers E08; the outcome then still follows from GetLastResult.
   */
  async interrupt(): Promise<void> {
    const status = this.tracker.lastStatus;
    if (this.finished || !this.tracker.isInterruptible) {
      throw new SsiEcrError(
        'INTERRUPT_NOT_ALLOWED',
        `interrupt is allowed only in S02/S03/S08, terminal is in ${this.finished ? 'a finished operation' : (status ?? 'an unknown status')}`,
        {
          context: { status: status ?? 'unknown', finished: this.finished },
        },
      );
    }
    const response = await this.runner.client.call({ method: 'Interrupt' });
    if (response.error) {
      if (response.errorCode === 'E08') {
        throw new SsiEcrError('INTERRUPT_NOT_ALLOWED', 'terminal answered E08 Interrupt prohibited', {
          reply: 'E08',
          terminalErrorCode: 'E08',
          terminalErrorDescription: response.errorDescription,
        });
      }
      throw terminalError(response);
    }
  }

  private async execute(): Promise<OperationOutcome> {
    const client = this.runner.client;
    let wire: SsiRequest<FinancialMethod> = this.request;
    const sent = await sendWithBusyRetry(
      client,
      this.options,
      async () => {
        // Additional operations need S00; E06 here means someone else's operation is running.
        const uidSupported = await this.runner.supportsTransactionUid();
        const transactionUid = uidSupported ? (this.ticket.transactionUid ?? this.requestedUid() ?? this.options.uidFactory()) : undefined;
        const baseline = await this.readBaseline();
        this.ticket = { request: this.request, startedAt: client.clock.now(), baseline, ...(transactionUid ? { transactionUid } : {}) };
        wire = transactionUid ? withUid(this.request, transactionUid) : this.request;
        await this.callbacks.onSending?.(this.ticket);
        return wire;
      },
      this.callbacks.signal,
      (link) => {
        this.requestLink = link;
        this.ticket = { ...this.ticket, startedAt: link.writtenAt };
      },
    );
    if (sent.kind === 'rejected') return { kind: 'rejected', error: sent.error, ticket: this.ticket };
    this.acknowledged = sent.kind === 'acknowledged';
    return this.track();
  }

  private requestedUid(): string | undefined {
    return (this.request.params as { transactionUid?: string }).transactionUid;
  }

  /**
   * GetLastResult before sending. E20 / no data → null; busy → TERMINAL_BUSY (retried by the caller); any other error
   * → the operation is rejected unsent (TERMINAL_ERROR): without a baseline no result could be proven ours.
   */
  private readBaseline(): Promise<TransactionResult | null> {
    return readResultBuffer(this.runner.client);
  }

  private async track(): Promise<OperationOutcome> {
    const idle = await this.tracker.untilIdle((status) => this.onWaiting(status));
    if (idle.kind !== 'idle') return this.unknown(idle.kind, idle.detail);
    let result: TransactionResult;
    try {
      result = await this.fetchResult();
    } catch (error) {
      if (isTransportFailure(error) || isSsiEcrError(error, 'TERMINAL_BUSY')) return this.track();
      return (await this.notExecuted(idle.status)) ?? this.unknown('RESULT_NOT_OURS', `result unavailable: ${(error as Error).message}`);
    }
    const verdict = matchResult(this.ticket, result);
    if (!verdict.ok) {
      return (
        (await this.notExecuted(idle.status)) ?? {
          ...this.unknown('RESULT_NOT_OURS', `last result is not this operation (${verdict.reason})`),
          mismatch: verdict.reason,
          candidate: result,
        }
      );
    }
    return this.classify(result);
  }

  /**
   * The result is not ours: was our request ever executed? `rejected` NOT_EXECUTED when provesNotExecuted holds
   * on a fresh read, else undefined (the outcome stays unknown). Not tried when the terminal acknowledged our
   * request in this process: its buffer must then have changed, and a terminal that contradicts spec 5.1 proves
   * nothing. In recovery the ack is unknown, which the proof does not need.
   */
  private async notExecuted(idleStatus: TerminalStatus): Promise<OperationOutcome | undefined> {
    if (this.acknowledged || idleStatus !== 'S00' || this.ticket.baseline === undefined) return undefined;
    const client = this.runner.client;
    const signal = this.callbacks.signal;
    // A request still in a dead link's buffers could be read after our check; give it the time to surface.
    const settle = this.requestLostSince() + this.options.lostRequestSettleMs - client.clock.now();
    if (settle > 0) await sleep(client.clock, settle, signal);
    if (signal?.aborted) return undefined;
    let verdict: NotExecutedVerdict;
    try {
      const statusBefore = await client.getStatus();
      const lastResult = await readResultBuffer(client);
      const statusAfter = await client.getStatus();
      verdict = provesNotExecuted({ baseline: this.ticket.baseline, statusBefore, lastResult, statusAfter });
    } catch {
      return undefined;
    }
    if (!verdict.proven) return undefined;
    const error = new SsiEcrError('NOT_EXECUTED', 'the terminal is idle and its last result is the one from before this request');
    return { kind: 'rejected', error, ticket: this.ticket };
  }

  /**
   * When the request's bytes stopped being able to reach the terminal by their link: when the link it was written
   * on closed (measured from the write, a slow claim or connect would eat into the settle window). Still open, or
   * never written: now. A recovery cannot know when the link of a request sent by another process (or by this one,
   * long ago) closed — only that it was no later than the recovery's start.
   */
  private requestLostSince(): number {
    if (this.recoveringSince !== undefined) return this.recoveringSince;
    return this.requestLink?.closedAt ?? this.runner.client.clock.now();
  }

  /**
   * GetResultByUid when we sent a uid (later revision), else GetLastResult (spec 5.5.1). A terminal that knows
   * uids but not ours has no result of ours: that is thrown (TERMINAL_ERROR), never answered from GetLastResult,
   * which may hold a later operation done by hand with the same method and amount. Only E05 (the terminal does
   * not know GetResultByUid after all) falls back to GetLastResult, judged by the baseline as without uids.
   */
  private async fetchResult(): Promise<TransactionResult> {
    return (await this.resultByUid('final')) ?? this.runner.client.getLastResult();
  }

  /**
   * GetResultByUid for our uid: the result, or undefined when there is no uid or the terminal answers E05. Not found
   * throws (TERMINAL_ERROR), unless `firstStep`: in S08 the notes put FIRST_STEP_COMPLETED in GetLastResult, and the
   * terminal is then waiting for the second step of the operation running on it, which matchResult still checks.
   */
  private async resultByUid(wanted: 'final' | 'firstStep'): Promise<TransactionResult | undefined> {
    if (this.ticket.transactionUid === undefined) return undefined;
    const response = await this.runner.client.call({ method: 'GetResultByUid', params: { transactionUid: this.ticket.transactionUid } });
    if (!response.error || response.params !== undefined) return parseTransactionResult(response);
    if (response.errorCode === 'E05' || (wanted === 'firstStep' && response.errorCode !== 'E06')) return undefined;
    throw terminalError(response);
  }

  /** Later revision: S08 after step 1 of a two-step Purchase → send step 2 (or cancel). */
  private async onWaiting(status: TerminalStatus): Promise<void> {
    if (status !== 'S08') {
      this.secondStepHandled = false;
      return;
    }
    if (this.secondStepHandled) return;
    this.secondStepHandled = true;
    try {
      await this.sendSecondStep();
    } catch (error) {
      // Retried on the next S08 poll; a terminal that moved on is judged by its final result.
      if (!isTransportFailure(error) && !(error instanceof SsiEcrError && error.code.startsWith('TERMINAL_'))) throw error;
      this.secondStepHandled = false;
    }
  }

  private async sendSecondStep(): Promise<void> {
    const firstStep = (await this.resultByUid('firstStep')) ?? (await this.runner.client.getLastResult());
    const verdict = matchResult(this.ticket, firstStep);
    if (firstStep.transactionResult !== 'FIRST_STEP_COMPLETED' || !verdict.ok) return;
    const decision = (await this.callbacks.onFirstStep?.(firstStep)) ?? { kind: 'continue' };
    const client = this.runner.client;
    if (decision.kind === 'cancel') {
      await client.call({ method: 'Interrupt' });
      return;
    }
    const params = { ...(this.request.params as Record<string, unknown>) };
    if (decision.transAmount !== undefined) {
      params.transAmount = decision.transAmount;
      this.ticket = { ...this.ticket, secondStepAmount: decision.transAmount };
    }
    if (this.ticket.transactionUid !== undefined) params.transactionUid = this.ticket.transactionUid;
    await client.call({ method: this.request.method, params, step: 2 } as SsiRequest<FinancialMethod>);
  }

  private classify(result: TransactionResult): OperationOutcome {
    const ticket = this.ticket;
    const value = result.transactionResult;
    if (value === 'CANCELLED' || result.errorCode === 'E12') return { kind: 'cancelled', result, ticket };
    if (value === 'APPROVED_ONLINE' || value === 'APPROVED_OFFLINE') {
      return result.error ? this.inconsistent(result, 'error=true with an APPROVED result') : { kind: 'approved', result, ticket };
    }
    if (value === undefined) {
      if (result.transactionResultRaw !== undefined) return this.inconsistent(result, `undocumented transactionResult ${result.transactionResultRaw}`);
      return { kind: result.error ? 'declined' : 'approved', result, ticket };
    }
    if (value === 'FIRST_STEP_COMPLETED') return this.inconsistent(result, 'idle terminal still reports FIRST_STEP_COMPLETED');
    return { kind: 'declined', result, ticket };
  }

  private inconsistent(result: TransactionResult, detail: string): OperationOutcome {
    return { ...this.unknown('INCONSISTENT_RESULT', detail), candidate: result };
  }

  private unknown(reason: UnknownReason, detail: string): Extract<OperationOutcome, { kind: 'unknown' }> {
    const lastStatus = this.tracker.lastStatus;
    return { kind: 'unknown', reason, detail, ticket: this.ticket, ...(lastStatus ? { lastStatus } : {}) };
  }
}

/**
 * The GetLastResult buffer (spec 5.5.1). Empty → null: E20 "No last transactions found", or a result with empty
 * values. Any other error without a result (E00, E18, E21, …: spec 4.3.3) is a failure of this read, not an empty
 * buffer, and throws (TERMINAL_ERROR; busy → TERMINAL_BUSY): read as empty, it made the baseline of an operation
 * "nothing", so an older result of the same method and amount matched it (approved, never run), and it made a
 * buffer that had changed look still empty (NOT_EXECUTED, though the terminal ran the request).
 */
async function readResultBuffer(client: SsiEcrClient): Promise<TransactionResult | null> {
  const response = await client.call({ method: 'GetLastResult' });
  if (response.error && response.errorCode === 'E06') throw terminalError(response);
  if (response.error && response.params === undefined) {
    if (response.errorCode === 'E20') return null;
    throw terminalError(response);
  }
  const result = parseTransactionResult(response);
  return result.originalTrnName === undefined ? null : result;
}

function withUid(request: SsiRequest<FinancialMethod>, transactionUid: string): SsiRequest<FinancialMethod> {
  return { ...request, params: { ...request.params, transactionUid } } as SsiRequest<FinancialMethod>;
}
