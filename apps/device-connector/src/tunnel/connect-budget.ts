import { type RedisClient, RedisScript } from '@payorch/redis';
import { RateBudget, type RateBudgetOptions } from '@payorch/tunnel';

import { SharedLimit } from './shared-limit';

/**
 * One connect of a credential from the budget every connector instance shares: a token bucket (`limit` at once,
 * refilled at `limit` per `windowMs`, as the local RateBudget) kept as one number, GCRA's "theoretical arrival time"
 * (the instant the bucket is full again, in ms). A connect is allowed while that instant, plus one connect's share
 * of the window, is at most one window ahead; it then moves the instant on by that share. The key expires when the
 * bucket is full again, so an idle credential leaves nothing behind. Redis' own clock (TIME): instances whose
 * clocks differ still share one budget. Token bucket rather than fixed window: no twice-the-limit burst across a
 * window boundary, and the same answer as the local budget that stands in for it.
 * KEYS[1]: the credential's key. ARGV: windowMs, limit. Returns 0 (spent) or the ms until one connect is allowed.
 */
const SPEND = new RedisScript(`
local time = redis.call('TIME')
local now = tonumber(time[1]) * 1000 + math.floor(tonumber(time[2]) / 1000)
local window = tonumber(ARGV[1])
local share = window / tonumber(ARGV[2])
local full = tonumber(redis.call('GET', KEYS[1]) or '0') or 0
if full < now then full = now end
local wait = full + share - window - now
if wait > 0 then return math.ceil(wait) end
redis.call('SET', KEYS[1], string.format('%.3f', full + share), 'PX', math.ceil(full + share - now))
return 0`);

export interface ConnectBudgetOptions extends RateBudgetOptions {
  /** REDIS_KEY_PREFIX: a credential's shared budget is `<prefix>:tunnel:connects:<credential lookup prefix>`. */
  keyPrefix: string;
  /** Longest wait for Redis' answer; past it this instance's budget decides alone. */
  timeoutMs: number;
  /**
   * Redis did not decide a connect (not connected, an error, or no answer within `timeoutMs`): this instance's
   * budget did. `first`: the first such connect since Redis last answered.
   */
  onUnshared(error: Error, first: boolean): void;
}

interface LocalEntry {
  budget: RateBudget;
  /** Until when the shared budget refused this credential: its next upgrades here are answered before a lookup. */
  refusedUntil: number;
}

/**
 * The connects of each agent credential (TUNNEL_AGENT_CONNECTS_PER_MINUTE), counted over every connector instance
 * in Redis: behind a load balancer a credential got the budget once per instance (security review). Keyed by the
 * credential's lookup prefix, which is no secret (stored in clear, as Agent.credentialPrefix; it authenticates
 * nothing without the secret part).
 *
 * Redis is a cache here (STYLE C12): it may be down, slow or emptied at any time, and neither may refuse an agent
 * or hold its upgrade. Unless Redis is connected and answers within `timeoutMs`, the instance's own budget (a
 * RateBudget per credential, what decided alone before) decides; that budget also counts every connect this
 * instance lets through when Redis answers, so a credential never gets more here than the instance alone allows,
 * even right after Redis lost its keys. A spend whose answer came too late still counts in Redis.
 */
export class ConnectBudget {
  private readonly local = new Map<string, LocalEntry>();
  private readonly localOptions: RateBudgetOptions;
  private readonly shared: SharedLimit;

  constructor(
    redis: RedisClient,
    private readonly options: ConnectBudgetOptions,
  ) {
    this.localOptions = { limit: options.limit, windowMs: options.windowMs };
    this.shared = new SharedLimit(redis, { timeoutMs: options.timeoutMs, what: 'shared connect budget', onUnshared: options.onUnshared });
  }

  /**
   * Before the credential is looked up, from what this instance knows (no Redis): the ms until `prefix` may connect
   * again (0: look it up). A credential refused here, by either budget, is answered without a lookup until then.
   */
  waitMs(prefix: string, now: number): number {
    const entry = this.local.get(prefix);
    return entry ? Math.max(entry.budget.waitMs(now), entry.refusedUntil - now) : 0;
  }

  /**
   * Spends one connect of an authenticated credential: 0 when it may connect, else the ms until it may. Never
   * waits for Redis longer than `timeoutMs`.
   */
  async spend(prefix: string): Promise<number> {
    const shared = await this.spendShared(prefix);
    const now = Date.now();
    let entry = this.local.get(prefix);
    if (!entry) this.local.set(prefix, (entry = { budget: new RateBudget(this.localOptions, now), refusedUntil: 0 }));
    if (shared > 0) {
      entry.refusedUntil = now + shared;
      return shared;
    }
    return entry.budget.spend(now) ? 0 : entry.budget.waitMs(now);
  }

  /** Forgets the credentials this instance has nothing left to remember of (bounded memory). */
  forgetIdle(now: number): void {
    for (const [prefix, entry] of this.local) if (entry.refusedUntil <= now && entry.budget.isFull(now)) this.local.delete(prefix);
  }

  /** The shared budget's answer; 0 too when Redis gave none (the local budget decides). */
  private async spendShared(prefix: string): Promise<number> {
    const key = `${this.options.keyPrefix}:tunnel:connects:${prefix}`;
    const wait = await this.shared.ask(SPEND, [key], [this.options.windowMs, this.options.limit]);
    return wait === undefined ? 0 : Number(wait);
  }
}
