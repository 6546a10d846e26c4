/** What one recovery pass of a terminal did (libs/operations `TerminalRecoveryReport`). */
export interface RecoveryPassReport {
  neverSent: number;
  /** PENDING and left so (queued here, or too young to be known never to arrive). */
  leftPending: number;
  markedUnknown: number;
  recovered: number;
  /** Asked, still UNKNOWN (the terminal could not tell, or could not be reached). */
  stillUnknown: number;
}

/** Why a pass ran: the terminal came online here, a retry after a pass that failed or left one undecided, or the executor refused an operation behind one in doubt. */
export type RecoveryTrigger = 'reconnect' | 'retry' | 'refusal';

/** How one pass ended, and when the next one runs (`retryInMs`; undefined: none is scheduled). */
export type RecoveryPassOutcome = { trigger: RecoveryTrigger; retryInMs: number | undefined } & (
  { report: RecoveryPassReport; error?: undefined } | { report?: undefined; error: Error }
);

export interface RecoveryRetryPolicy {
  /** Pause before the n-th retry in a row (n ≥ 1). */
  delayMs(retry: number): number;
  /**
   * Retries in a row of passes that did not fail but left an operation UNKNOWN (the terminal could not tell, or could not
   * be reached): each one counts a recovery attempt of those operations, whose budget (the worker's RECOVERY_MAX_ATTEMPTS)
   * they share with the recovery sweep; beyond it they are the sweep's (its own backoff). Passes that failed are retried
   * as long as the terminal is held here.
   */
  undecidedRetries: number;
}

/** 1 s, doubling, at most 30 s; five retries of passes that left an operation undecided (about half a minute). */
export const RECOVERY_RETRY: RecoveryRetryPolicy = {
  delayMs: (retry) => Math.min(30_000, 1_000 * 2 ** (retry - 1)),
  undecidedRetries: 5,
};

export interface TerminalRecoveryDeps {
  /** One pass (`OperationCommandHandler.recoverTerminal`: in the terminal's queue). `signal`: aborted when no longer wanted. */
  pass(signal: AbortSignal): Promise<RecoveryPassReport>;
  /** The terminal is still held here by an open session; aborted (`closed`) once its handle closed. */
  held(): boolean;
  closed: AbortSignal;
  policy(): RecoveryRetryPolicy;
  /** Each pass's end (logs and metrics), unless the terminal was let go meanwhile. */
  onPass(outcome: RecoveryPassOutcome): void;
}

/**
 * The recovery of one terminal held here (one per TerminalHandle, so per session and terminal): its non-final
 * operations are recovered when it comes online (`run('reconnect')`), and again — with a capped backoff, while the
 * session holding the terminal is open — as long as a pass fails (PostgreSQL, a full queue, a driver error that
 * escaped) or leaves an operation undecided (the terminal's link not up yet, an inconclusive answer; at most
 * `undecidedRetries` in a row). Until then every new payment of the terminal is refused at its claim
 * (`TERMINAL_RECOVERING`), so the sweep's RECOVERY_STUCK_AFTER_MS (10 min) is too late a second chance. An operation
 * refused behind one in doubt brings the next pass forward (`run('refusal')`).
 *
 * One pass at a time: a trigger while a pass is queued or running does nothing (that pass reads the terminal's
 * operations when its turn in the terminal's queue comes, after the command that was refused). The passes run in the
 * terminal's command queue, so never beside this process's own executor. Closing the handle (session closed, terminal
 * withdrawn, moved or rebuilt) stops the retries and aborts a pass not started yet.
 */
export class TerminalRecovery {
  private state: 'idle' | 'running' | 'waiting' | 'stopped' = 'idle';
  private timer: NodeJS.Timeout | undefined;
  /** Passes in a row that failed or left an operation undecided; of them, those that only left one undecided. */
  private failedInARow = 0;
  private undecidedInARow = 0;
  private passes = 0;
  private current: Promise<void> | undefined;

  constructor(private readonly deps: TerminalRecoveryDeps) {
    if (deps.closed.aborted) this.state = 'stopped';
    else deps.closed.addEventListener('abort', () => this.stop(), { once: true });
  }

  /** No pass queued, running or scheduled, and none will run: done, or let go. */
  get settled(): boolean {
    return this.state === 'idle' || this.state === 'stopped';
  }

  /** The pass queued or running now, if any (tests). */
  get running(): Promise<void> | undefined {
    return this.current;
  }

  /**
   * A pass now: unless one is already queued or running (it will see what the caller saw), or the terminal is no
   * longer held here. A retry that was scheduled is brought forward.
   */
  run(trigger: RecoveryTrigger): void {
    if (this.state === 'stopped' || this.state === 'running') return;
    if (!this.deps.held()) return this.stop();
    clearTimeout(this.timer);
    this.timer = undefined;
    this.state = 'running';
    this.passes++;
    this.current = this.pass(trigger);
  }

  /**
   * The first pass could not start (the terminal's link did not open when it came online): one is scheduled as a retry,
   * unless a pass ran or is due already.
   */
  retryLater(): void {
    if (this.state !== 'idle' || this.passes > 0 || !this.deps.held()) return;
    this.failedInARow++;
    this.schedule(this.deps.policy().delayMs(this.failedInARow));
  }

  stop(): void {
    this.state = 'stopped';
    clearTimeout(this.timer);
    this.timer = undefined;
  }

  private async pass(trigger: RecoveryTrigger): Promise<void> {
    let ended: { report: RecoveryPassReport } | { error: Error };
    try {
      ended = { report: await this.deps.pass(this.deps.closed) };
    } catch (error) {
      ended = { error: error instanceof Error ? error : new Error(String(error)) };
    }
    this.current = undefined;
    if (this.state === 'stopped') return; // let go meanwhile: a new handle (or another instance) recovers it
    const policy = this.deps.policy();
    let retryInMs: number | undefined;
    if ('error' in ended) {
      this.failedInARow++;
      retryInMs = policy.delayMs(this.failedInARow);
    } else if (ended.report.stillUnknown > 0) {
      this.failedInARow++;
      this.undecidedInARow++;
      if (this.undecidedInARow <= policy.undecidedRetries) retryInMs = policy.delayMs(this.failedInARow);
    } else {
      this.failedInARow = 0;
      this.undecidedInARow = 0;
    }
    if (retryInMs !== undefined && !this.deps.held()) retryInMs = undefined;
    this.deps.onPass({ trigger, retryInMs, ...ended });
    if (this.state !== 'running') return; // stopped by onPass's caller
    if (retryInMs === undefined) {
      this.state = 'idle';
      if (!this.deps.held()) this.stop();
      return;
    }
    this.schedule(retryInMs);
  }

  private schedule(delayMs: number): void {
    this.state = 'waiting';
    this.timer = setTimeout(() => {
      this.timer = undefined;
      this.state = 'idle';
      this.run('retry');
    }, delayMs);
    this.timer.unref();
  }
}
