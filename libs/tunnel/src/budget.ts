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
