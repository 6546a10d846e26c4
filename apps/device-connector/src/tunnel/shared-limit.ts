import { withTimeout } from '@payorch/domain';
import type { RedisClient, RedisScript } from '@payorch/redis';

/**
 * Longest wait for Redis' answer to a limit every connector instance shares (an agent credential's connect budget,
 * a tenant's relay sessions); past it this instance decides alone. A Redis round trip takes about a millisecond: a
 * slower answer means Redis is in trouble.
 */
export const SHARED_LIMIT_TIMEOUT_MS = 200;

export interface SharedLimitOptions {
  /** Longest wait for Redis' answer; past it this instance decides alone. */
  timeoutMs: number;
  /** What the timeout's error names (`<what> timed out after <ms> ms`). */
  what: string;
  /**
   * Redis did not decide (not connected, an error, or no answer within `timeoutMs`): this instance's own count
   * does. `first`: the first such decision since Redis last answered (warn once per outage).
   */
  onUnshared(error: Error, first: boolean): void;
}

/**
 * The Redis side of a limit every connector instance shares. Redis is a cache here (STYLE C12): it may be down, slow
 * or emptied at any time, and neither may refuse a caller or hold it for long. `ask` runs the limit's script and
 * gives its answer, or `undefined` (after `onUnshared`) when Redis gave none: then the caller's own count, which it
 * keeps in any case, decides alone. Nothing is sent while the connection is not up: its offline queue would hold the
 * command until Redis is back. A script whose answer came too late may still have run.
 */
export class SharedLimit {
  private unshared = false;

  constructor(
    readonly redis: RedisClient,
    private readonly options: SharedLimitOptions,
  ) {}

  async ask(script: RedisScript, keys: readonly string[], args: readonly (string | number)[]): Promise<unknown> {
    if (this.redis.status !== 'ready') return this.fallBack(new Error(`Redis connection ${this.redis.status}`));
    try {
      const answer = await withTimeout(script.run(this.redis, keys, args), this.options.timeoutMs, this.options.what);
      this.unshared = false;
      return answer;
    } catch (error) {
      return this.fallBack(error as Error);
    }
  }

  private fallBack(error: Error): undefined {
    this.options.onUnshared(error, !this.unshared);
    this.unshared = true;
    return undefined;
  }
}
