import type { Redis } from 'ioredis';

import { RedisScript } from '@payorch/redis';
import { settlementKeys } from '@payorch/settlement';

/**
 * Per-tenant concurrency across every worker: a sorted set per tenant holds the running job ids
 * scored by lease expiry. Acquire drops expired leases (a worker that died frees its slot after the
 * lease) and adds the job only if the tenant is under its limit; all in one Lua call. A job that gets
 * its slot leaves the tenant's waiting set (KEYS[2]): it may get it without being woken (its fallback
 * delay ran out while a slot was free), and a wake left behind would promote it later out of a delay
 * of its own (a backoff), while the job it should have woken keeps waiting.
 */
const ACQUIRE = new RedisScript(`
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', ARGV[1])
if redis.call('ZSCORE', KEYS[1], ARGV[3]) then
  redis.call('ZADD', KEYS[1], ARGV[2], ARGV[3])
  redis.call('ZREM', KEYS[2], ARGV[3])
  return 1
end
if redis.call('ZCARD', KEYS[1]) < tonumber(ARGV[4]) then
  redis.call('ZADD', KEYS[1], ARGV[2], ARGV[3])
  redis.call('PEXPIRE', KEYS[1], ARGV[5])
  redis.call('ZREM', KEYS[2], ARGV[3])
  return 1
end
return 0`);

export class TenantSlots {
  private readonly keys: ReturnType<typeof settlementKeys>;

  constructor(
    private readonly redis: Redis,
    prefix: string,
    private readonly limit: number,
    private readonly leaseMs = 15 * 60 * 1000,
  ) {
    this.keys = settlementKeys(prefix);
  }

  /**
   * Takes a slot for `jobId` (or renews its lease). By SHA (EVALSHA): the script's text goes over the wire
   * only when Redis does not know it yet (first call, or after a restart / SCRIPT FLUSH).
   */
  async acquire(tenantId: string, jobId: string): Promise<boolean> {
    const now = Date.now();
    const got = await ACQUIRE.run(
      this.redis,
      [this.keys.tenantSlots(tenantId), this.keys.tenantWaiting(tenantId)],
      [String(now), String(now + this.leaseMs), jobId, String(this.limit), String(this.leaseMs * 2)],
    );
    return got === 1;
  }

  /**
   * Frees the slot of `jobId` and hands back the tenant's longest-waiting deferred job (see `wait`), if any, for
   * the caller to wake: its turn has come now, not at the end of its deferral delay.
   */
  async release(tenantId: string, jobId: string): Promise<string | null> {
    await this.redis.zrem(this.keys.tenantSlots(tenantId), jobId);
    const [next] = await this.redis.zpopmin(this.keys.tenantWaiting(tenantId), 1);
    return next ?? null;
  }

  /** Records `jobId` as deferred for the tenant's limit (woken by the next `release`; its own delay is the fallback). */
  async wait(tenantId: string, jobId: string): Promise<void> {
    const key = this.keys.tenantWaiting(tenantId);
    await this.redis
      .multi()
      .zadd(key, 'NX', Date.now(), jobId)
      .pexpire(key, this.leaseMs * 2)
      .exec();
  }

  async running(tenantId: string): Promise<number> {
    return this.redis.zcount(this.keys.tenantSlots(tenantId), Date.now(), '+inf');
  }
}
