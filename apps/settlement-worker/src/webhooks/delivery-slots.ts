import type { Redis } from 'ioredis';

import { RedisScript } from '@payorch/redis';

/** Whose slots a delivery attempt takes: its tenant's and its endpoint's. */
export interface SlotKey {
  tenantId: string;
  endpointId: string;
}

/** Which limit kept an attempt from running. */
export type SlotScope = 'endpoint' | 'tenant';

export type SlotAnswer = { acquired: true } | { acquired: false; scope: SlotScope; delayMs: number };

export interface DeliverySlotLimits {
  /** Attempts to one endpoint at once, across every worker (WEBHOOK_ENDPOINT_CONCURRENCY). */
  endpoint: number;
  /** Attempts to all endpoints of one tenant at once, across every worker (WEBHOOK_TENANT_CONCURRENCY). */
  tenant: number;
  /** How long a slot is held at most: a worker that died frees its slots then (longer than one attempt). */
  leaseMs: number;
}

/** A deferred attempt's own delay, the fallback for a wake that never comes: the time it has waited so far, within these bounds. */
export const SLOT_WAIT_MIN_MS = 5_000;
export const SLOT_WAIT_MAX_MS = 5 * 60_000;
/** Wakes tried per freed slot: a popped job that is no longer delayed (it came back on its own, or is gone) passes the turn on. */
const WAKES_PER_RELEASE = 3;

/**
 * KEYS: tenant slots, endpoint slots, tenant waiting, endpoint waiting. ARGV: now, lease expiry, holder, tenant limit,
 * endpoint limit, key TTL. Slots are sorted sets of holders scored by lease expiry (expired leases are dropped first);
 * a holder that already holds both (its job came back after a stall) renews them. The endpoint's limit is checked
 * first: an attempt waits for the limit it is over, on that limit's waiting set. Returns {1} or {0, scope, the time the
 * holder has been waiting on that set since, or ''}. An admitted holder leaves both waiting sets.
 */
const ACQUIRE = new RedisScript(`
local now = tonumber(ARGV[1])
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now)
redis.call('ZREMRANGEBYSCORE', KEYS[2], '-inf', now)
local holds = redis.call('ZSCORE', KEYS[1], ARGV[3]) and redis.call('ZSCORE', KEYS[2], ARGV[3])
if not holds then
  if redis.call('ZCARD', KEYS[2]) >= tonumber(ARGV[5]) then
    return {0, 'endpoint', redis.call('ZSCORE', KEYS[4], ARGV[3]) or ''}
  end
  if redis.call('ZCARD', KEYS[1]) >= tonumber(ARGV[4]) then
    return {0, 'tenant', redis.call('ZSCORE', KEYS[3], ARGV[3]) or ''}
  end
end
for i = 1, 2 do
  redis.call('ZADD', KEYS[i], ARGV[2], ARGV[3])
  redis.call('PEXPIRE', KEYS[i], ARGV[6])
  redis.call('ZREM', KEYS[i + 2], ARGV[3])
end
return {1}`);

/**
 * KEYS as ACQUIRE. ARGV: holder ('' to only pick), key TTL. Frees the holder's slots and pops the job whose turn it
 * is: the longest-waiting of the endpoint's waiting set and the tenant's (the slots freed are one of each), or nil.
 * When the tenant's job goes first, the endpoint's longest-waiting job now waits for the tenant's limit, not its
 * endpoint's (a slot of it is free): it moves to the tenant's set, keeping its place in time, so that the next
 * slot the tenant frees, on whatever endpoint, wakes it.
 */
const RELEASE = new RedisScript(`
if ARGV[1] ~= '' then
  redis.call('ZREM', KEYS[1], ARGV[1])
  redis.call('ZREM', KEYS[2], ARGV[1])
end
local e = redis.call('ZRANGE', KEYS[4], 0, 0, 'WITHSCORES')
local t = redis.call('ZRANGE', KEYS[3], 0, 0, 'WITHSCORES')
if #e == 0 and #t == 0 then return false end
if #t == 0 or (#e > 0 and tonumber(e[2]) <= tonumber(t[2])) then
  redis.call('ZREM', KEYS[4], e[1])
  return e[1]
end
redis.call('ZREM', KEYS[3], t[1])
if #e > 0 then
  redis.call('ZREM', KEYS[4], e[1])
  redis.call('ZADD', KEYS[3], e[2], e[1])
  redis.call('PEXPIRE', KEYS[3], ARGV[2])
end
return t[1]`);

/**
 * Webhook delivery slots across every worker (docs/webhooks.md "Slow receivers"): an attempt holds a slot of its
 * endpoint and one of its tenant while it sends, so a receiver that answers slowly (or never) holds at most
 * `endpoint` worker slots, and one tenant's receivers at most `tenant`, whatever their backlog; the worker takes
 * other tenants' deliveries meanwhile. Group-less leases in Redis as for settlements (BullMQ OSS has no groups):
 * an attempt over a limit is deferred (moved to delayed, not counted as an attempt) and recorded in that limit's
 * waiting set; the attempt that frees a slot wakes (promotes) the longest-waiting one, so a deferred job runs when
 * its turn comes. Its own delay, as long as it has waited so far (5 s to 5 min), only covers a wake that never
 * comes, so a deep backlog polls ever less often. Keys carry the `{tenantId}` hash tag (one Lua script per call
 * over one slot in a Redis Cluster).
 */
export class DeliverySlots {
  constructor(
    private readonly redis: Redis,
    private readonly prefix: string,
    private readonly limits: DeliverySlotLimits,
    /** Promotes a delayed job out of its delay; false when it is not delayed (any more). */
    private readonly wake: (jobId: string) => Promise<boolean>,
  ) {}

  /** Takes a slot of the endpoint and of the tenant for `holder` (a job id), or says which limit is full and how long to wait at most. */
  async acquire(key: SlotKey, holder: string): Promise<SlotAnswer> {
    const now = Date.now();
    const answer = (await ACQUIRE.run(this.redis, this.keys(key), [
      now,
      now + this.limits.leaseMs,
      holder,
      this.limits.tenant,
      this.limits.endpoint,
      this.limits.leaseMs * 2,
    ])) as [number, SlotScope?, string?];
    if (answer[0] === 1) return { acquired: true };
    const since = answer[2] ? Number(answer[2]) : now;
    const waited = Math.min(Math.max(now - since, SLOT_WAIT_MIN_MS), SLOT_WAIT_MAX_MS);
    return { acquired: false, scope: answer[1]!, delayMs: waited + Math.floor(Math.random() * (waited / 2)) };
  }

  /** Records `holder` as waiting for `scope`'s limit (call it once the job is delayed, so that a wake finds it so). */
  async wait(key: SlotKey, scope: SlotScope, holder: string): Promise<void> {
    const [tenantWaiting, endpointWaiting] = this.keys(key).slice(2);
    const waiting = scope === 'endpoint' ? endpointWaiting! : tenantWaiting!;
    await this.redis.multi().zadd(waiting, 'NX', Date.now(), holder).pexpire(waiting, this.waitingTtlMs).exec();
  }

  /** Frees `holder`'s slots and wakes the job whose turn it is (passing the turn on while the popped job is not delayed). */
  async release(key: SlotKey, holder: string): Promise<void> {
    let next = (await RELEASE.run(this.redis, this.keys(key), [holder, this.waitingTtlMs])) as string | null;
    for (let tries = 1; next !== null && !(await this.wake(next).catch(() => false)) && tries < WAKES_PER_RELEASE; tries++) {
      next = (await RELEASE.run(this.redis, this.keys(key), ['', this.waitingTtlMs])) as string | null;
    }
  }

  /** Attempts holding a slot of the endpoint and of the tenant now (for tests and diagnostics). */
  async running(key: SlotKey): Promise<{ tenant: number; endpoint: number }> {
    const [tenant, endpoint] = this.keys(key);
    const now = Date.now();
    const [t, e] = await Promise.all([this.redis.zcount(tenant!, now, '+inf'), this.redis.zcount(endpoint!, now, '+inf')]);
    return { tenant: t, endpoint: e };
  }

  /** A waiting set outlives its members' longest delay a few times over. */
  private get waitingTtlMs(): number {
    return SLOT_WAIT_MAX_MS * 4 + this.limits.leaseMs;
  }

  private keys({ tenantId, endpointId }: SlotKey): [string, string, string, string] {
    const slots = `${this.prefix}:webhooks:slots:{${tenantId}}`;
    const waiting = `${this.prefix}:webhooks:waiting:{${tenantId}}`;
    return [slots, `${slots}:${endpointId}`, waiting, `${waiting}:${endpointId}`];
  }
}
