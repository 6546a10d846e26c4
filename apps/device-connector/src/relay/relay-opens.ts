import { performance } from 'node:perf_hooks';

import { RateBudget } from '@payorch/tunnel';

export interface RelayOpensOptions {
  /** Monotonic milliseconds (tests). */
  now?: () => number;
  /** Each open refused over the budget (a metric). */
  onOverBudget?: () => void;
}

/**
 * The budget of relay opens (91s) of one terminal: a token bucket of `perMinute` tokens, refilled continuously at
 * `perMinute` a minute; every 91 takes one. The sessions limit bounds the sessions at once, not how often: a
 * terminal (or the agent feeding it bytes) that opened an allowed host, closed and opened again as fast as it could
 * cost a rules read, a lookup, a dial-out and a RelaySession row plus its update each cycle, without bound. Past the
 * budget its opens are refused as denials are (`DENIED`, `Address not allowed by till`), before any other check, and
 * those refusals fall under its budget of refused opens (RelayRefusals): recorded one by one only within it, then
 * summarised. A real terminal opens one session per transaction (docs/relay.md, "Checks" item 5).
 */
export class RelayOpens {
  /** The bucket (the tunnel's token bucket: one logic for every rate budget of the connector). */
  private readonly budget: RateBudget;
  private readonly now: () => number;

  constructor(
    readonly perMinute: number,
    private readonly options: RelayOpensOptions = {},
  ) {
    this.now = options.now ?? (() => performance.now());
    this.budget = new RateBudget({ limit: perMinute, windowMs: 60_000 }, this.now());
  }

  /** Nothing spent that has not been refilled: the terminal's entry can be forgotten. */
  get idle(): boolean {
    return this.budget.isFull(this.now());
  }

  /** Takes the token of one open; false (and counted: `onOverBudget`) when none is left. Synchronous. */
  take(): boolean {
    if (this.budget.spend(this.now())) return true;
    this.options.onOverBudget?.();
    return false;
  }
}
