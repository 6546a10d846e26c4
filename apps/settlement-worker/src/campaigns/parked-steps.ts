import type { Queue } from 'bullmq';
import type { Redis } from 'ioredis';

import type { Logger } from '@payorch/logging';

import { wakeJob, wakeJobs } from '../wake-jobs';

/** What a step waits for: a slot under its campaign's tenant limit, or under its store limit (both counted over every campaign of the tenant). */
export type SlotWait = { kind: 'tenant'; limit: number } | { kind: 'store'; storeId: string; limit: number };

/** Wakes tried per freed slot and list: a popped step that is not parked (it came back on its own, or ended) passes the turn on. */
const WAKES_PER_RELEASE = 3;

/**
 * The steps parked for a concurrency slot, per tenant (issue 20 review: a step waiting for a slot re-ran every
 * `pollMs` from the delayed set, a transaction each time — ~25,000 runs/s for one 50,000-terminal wave behind a
 * limit of 1, starving every other tenant's campaigns on the shared queue). A step that finds a limit reached
 * parks in the delayed set with a long fallback delay (CampaignTiming.parkMs) and is listed here; a step that
 * leaves RUNNING frees one slot of its tenant and one of its store and wakes (promotes) a step waiting for each
 * (`release`). The discipline of the settlement's TenantSlots and the webhooks' DeliverySlots (a waiting list
 * beside the delayed job, woken by the job that frees a slot, passing the turn on past one that is not delayed,
 * its own delay as the fallback), with the slots themselves counted in PostgreSQL.
 *
 * Sorted sets scored by the waiter's limit, and `release` wakes the one with the highest: with campaigns of
 * different limits at once (a limit of 1 beside one of 50), the waiter most likely under its limit gets the
 * wake, and those under a lower limit get theirs once the higher ones are served. Keys share the `{<tenantId>}`
 * hash tag (one Redis Cluster slot) and expire `ttlMs` after the last park: by then every member's fallback
 * delay has run it.
 *
 * Best effort: Redis may lose these lists, refuse a call, or a worker die between a step's end and its wake. A
 * lost wake costs the waiter its fallback delay, never its run; nothing here fails a step.
 */
export class ParkedSteps {
  constructor(
    private readonly redis: Redis,
    private readonly prefix: string,
    private readonly queue: Queue,
    private readonly ttlMs: number,
    private readonly logger: Logger,
  ) {}

  /** Lists `jobId` (already moved to the delayed set) as waiting for `wait`. */
  async park(tenantId: string, wait: SlotWait, jobId: string): Promise<void> {
    const key = this.keyOf(tenantId, wait);
    await this.bestEffort('park', () => this.redis.multi().zadd(key, wait.limit, jobId).pexpire(key, this.ttlMs).exec());
  }

  /** Takes `jobId` off the list of `wait` (it goes on without a wake). */
  async unlist(tenantId: string, wait: SlotWait, jobId: string): Promise<void> {
    await this.bestEffort('unlist', () => this.redis.zrem(this.keyOf(tenantId, wait), jobId));
  }

  /** Takes `jobId` off the tenant's and its store's lists (it runs: it takes a slot, parks again, or no longer needs one). */
  async unpark(tenantId: string, storeId: string, jobId: string): Promise<void> {
    await this.bestEffort('unpark', () => this.redis.multi().zrem(this.tenantKey(tenantId), jobId).zrem(this.storeKey(tenantId, storeId), jobId).exec());
  }

  /**
   * A target of the store left RUNNING: one slot of the tenant and one of the store are free. Wakes the parked step
   * with the highest limit waiting for each (at most two runs per freed slot; one may find the slot taken and park
   * again).
   */
  async release(tenantId: string, storeId: string): Promise<void> {
    await this.bestEffort('release', () => Promise.all([this.wakeNext(this.tenantKey(tenantId)), this.wakeNext(this.storeKey(tenantId, storeId))]));
  }

  /** Wakes those of these jobs that are parked (a resumed or canceled campaign's); returns how many were. */
  wake(jobIds: readonly string[]): Promise<number> {
    return wakeJobs(this.queue, jobIds);
  }

  /** The step job ids waiting for a slot of the tenant (or of one of its stores), highest limit first (tests, diagnostics). */
  listed(tenantId: string, storeId?: string): Promise<string[]> {
    return this.redis.zrevrange(storeId === undefined ? this.tenantKey(tenantId) : this.storeKey(tenantId, storeId), 0, -1);
  }

  private async wakeNext(key: string): Promise<void> {
    for (let tries = 0; tries < WAKES_PER_RELEASE; tries++) {
      const [next] = await this.redis.zpopmax(key);
      if (next === undefined || (await wakeJob(this.queue, next))) return;
    }
  }

  private async bestEffort(what: string, call: () => Promise<unknown>): Promise<void> {
    try {
      await call();
    } catch (error) {
      this.logger.warn({ err: (error as Error).message }, `campaign waiting list not updated (${what}); a parked step waits for its fallback delay`);
    }
  }

  private keyOf(tenantId: string, wait: SlotWait): string {
    return wait.kind === 'tenant' ? this.tenantKey(tenantId) : this.storeKey(tenantId, wait.storeId);
  }

  private tenantKey(tenantId: string): string {
    return `${this.prefix}:campaigns:parked:{${tenantId}}`;
  }

  private storeKey(tenantId: string, storeId: string): string {
    return `${this.prefix}:campaigns:parked:{${tenantId}}:store:${storeId}`;
  }
}
