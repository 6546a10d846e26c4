import { performance } from 'node:perf_hooks';

import { RateBudget } from '@payorch/tunnel';

/** One refused relay open (91), as its RelaySession row would read. */
export interface RefusedOpen {
  host: string;
  port: number;
  outcome: 'denied' | 'connect_failed';
  /** What the tenant may see (already stripped of what the platform's DNS answered). */
  reason: string;
  startedAt: Date;
  endedAt: Date;
}

/** The refusals of one terminal over its budget, written as one RelaySession row when its window ends. */
export interface RefusalSummary {
  count: number;
  /** The first one's start. */
  startedAt: Date;
  /** The last one's end. */
  endedAt: Date;
  last: RefusedOpen;
}

export interface RelayRefusalsOptions {
  /** How long unrecorded refusals are gathered before their summary is written. Default 60 s. */
  windowMs?: number;
  /** Monotonic milliseconds (tests). */
  now?: () => number;
  /** Each refusal that is not recorded one by one (a metric). */
  onUnrecorded?: () => void;
}

/**
 * The budget of refused relay opens of one terminal (denied or connect_failed: each is a transaction, a
 * RelaySession row and, for a denial, a `relay.denied` event): a token bucket of `perMinute` tokens, refilled
 * continuously at `perMinute` a minute. Within it every refusal is recorded one by one. Past it the terminal's opens
 * are refused at once, with no database work, DNS lookup or connect, counted (`onUnrecorded`) and gathered into one
 * summarising row per window (`writeSummary`), so a terminal (or the agent feeding it bytes) that floods 91s costs
 * at most `perMinute` rows plus one a window, and the audit still shows that it happened (docs/relay.md, "Audit").
 */
export class RelayRefusals {
  /** The bucket (the tunnel's token bucket: one logic for every rate budget of the connector). */
  private readonly budget: RateBudget;
  private summary: RefusalSummary | undefined;
  private timer: NodeJS.Timeout | undefined;
  private readonly windowMs: number;
  private readonly now: () => number;

  constructor(
    readonly perMinute: number,
    private readonly writeSummary: (summary: RefusalSummary) => Promise<void>,
    private readonly options: RelayRefusalsOptions = {},
  ) {
    this.windowMs = options.windowMs ?? 60_000;
    this.now = options.now ?? (() => performance.now());
    this.budget = new RateBudget({ limit: perMinute, windowMs: 60_000 }, this.now());
  }

  /** Whether a refusal would still be recorded one by one; false: the terminal is over its budget. */
  get available(): boolean {
    return this.budget.waitMs(this.now()) === 0;
  }

  /** Full again and nothing left to summarise: the terminal's entry can be forgotten. */
  get idle(): boolean {
    return this.budget.isFull(this.now()) && this.summary === undefined;
  }

  /** Takes the token of one refusal recorded one by one; false when none is left (then `unrecorded` it). Synchronous. */
  take(): boolean {
    return this.budget.spend(this.now());
  }

  /** Counts a refusal that is not recorded one by one; the first of a window schedules the window's summary. */
  unrecorded(refusal: RefusedOpen): void {
    this.options.onUnrecorded?.();
    if (this.summary) {
      this.summary.count += 1;
      this.summary.endedAt = refusal.endedAt;
      this.summary.last = refusal;
      return;
    }
    this.summary = { count: 1, startedAt: refusal.startedAt, endedAt: refusal.endedAt, last: refusal };
    this.timer = setTimeout(() => void this.flush(), this.windowMs);
    this.timer.unref();
  }

  /** Writes the pending summary now (its window ended, the terminal's relay closed, shutdown). Never rejects. */
  async flush(): Promise<void> {
    clearTimeout(this.timer);
    this.timer = undefined;
    const summary = this.summary;
    this.summary = undefined;
    if (summary) await this.writeSummary(summary).catch(() => undefined);
  }
}
