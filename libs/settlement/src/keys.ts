import { createHash } from 'node:crypto';

/** Names shared by the gateway (producer) and the settlement worker (consumer). */
export const settlementKeys = (prefix: string) => ({
  /** Pub/sub channel: the gateway publishes here after a schedule change; the worker re-syncs its job schedulers. */
  schedulesChanged: `${prefix}:settlement:schedules-changed`,
  /**
   * Sorted set of running settlement job ids of one tenant, scored by lease expiry (per-tenant concurrency). Hash tag
   * `{<tenantId>}`, shared with `tenantWaiting`: the slot script touches both, which a Redis Cluster allows only within
   * one slot (CROSSSLOT otherwise).
   */
  tenantSlots: (tenantId: string) => `${prefix}:settlement:slots:{${tenantId}}`,
  /** Sorted set of the tenant's settlement job ids deferred for its limit, oldest first: a freed slot wakes the first. */
  tenantWaiting: (tenantId: string) => `${prefix}:settlement:waiting:{${tenantId}}`,
});

/** BullMQ job id of a scheduled run: one per terminal and business day (BullMQ allows exactly two `:`). */
export const settlementJobId = (terminalId: string, businessDate: string) => `settlement:${terminalId}:${businessDate}`;

/** Settlement.runKey of a scheduled run. */
export const scheduleRunKey = (terminalId: string, businessDate: string) => `schedule:${terminalId}:${businessDate}`;

/** BullMQ job id of a manual run keyed by the client's Idempotency-Key (hashed: the key may contain `:`). */
export const manualJobId = (terminalId: string, runKey: string) =>
  `settlement:${terminalId}:manual-${createHash('sha256').update(runKey).digest('hex').slice(0, 24)}`;

/** BullMQ job scheduler id of a schedule (no `:` allowed: BullMQ builds `repeat:<id>:<millis>`). */
export const schedulerIdOf = (scheduleId: string) => `schedule-${scheduleId}`;

/**
 * BullMQ job id of the `settlement.fire` a schedule's job scheduler queues for the firing at `instant`
 * (`repeat:<scheduler id>:<millis>`, BullMQ's JobScheduler.getSchedulerNextJobId).
 */
export const scheduledFireJobId = (scheduleId: string, instant: Date) => `repeat:${schedulerIdOf(scheduleId)}:${instant.getTime()}`;
