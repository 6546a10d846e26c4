export interface BadMessageBudgetOptions {
  /** Protocol errors tolerated within `windowMs`; one more closes the tunnel. */
  limit: number;
  windowMs: number;
}

/**
 * Sliding-window count of protocol errors (ocpp-rpc's bad-message budget, STYLE C6): a peer that
 * keeps sending bad frames is disconnected, a rare glitch on a long-lived tunnel is not.
 */
export class BadMessageBudget {
  private readonly hits: number[] = [];

  constructor(private readonly options: BadMessageBudgetOptions) {}

  /** Records one protocol error at `now`; `false` once the budget is exhausted. */
  spend(now: number): boolean {
    while (this.hits.length > 0 && this.hits[0] <= now - this.options.windowMs) this.hits.shift();
    this.hits.push(now);
    return this.hits.length <= this.options.limit;
  }
}

export interface RateBudgetOptions {
  /** Events allowed at once (a burst), and per `windowMs` on average. */
  limit: number;
  windowMs: number;
}

/**
 * A token bucket: `limit` events at once, refilled at `limit` per `windowMs`, in two numbers whatever
 * the limit (a connector holds one per tunnel and one per agent). Used for what a peer may do often
 * but not without bound: frames on a tunnel's connection, an agent's connects.
 */
export class RateBudget {
  private tokens: number;
  private at: number;

  constructor(
    private readonly options: RateBudgetOptions,
    now: number,
  ) {
    if (!(options.limit >= 1) || !(options.windowMs > 0)) throw new RangeError('RateBudget needs limit >= 1 and windowMs > 0');
    this.tokens = options.limit;
    this.at = now;
  }

  /** Takes `cost` events (1 by default) at `now`; `false` (nothing taken) when fewer are left. */
  spend(now: number, cost = 1): boolean {
    this.refill(now);
    if (this.tokens < cost) return false;
    this.tokens -= cost;
    return true;
  }

  /** Milliseconds from `now` until one event is allowed again (0: now). */
  waitMs(now: number): number {
    this.refill(now);
    return this.tokens >= 1 ? 0 : Math.ceil(((1 - this.tokens) * this.options.windowMs) / this.options.limit);
  }

  /** Nothing spent that has not been refilled by `now`: a keeper of many budgets may forget this one. */
  isFull(now: number): boolean {
    this.refill(now);
    return this.tokens >= this.options.limit;
  }

  private refill(now: number): void {
    const elapsed = now - this.at;
    if (elapsed <= 0) return;
    this.tokens = Math.min(this.options.limit, this.tokens + (elapsed * this.options.limit) / this.options.windowMs);
    this.at = now;
  }
}
