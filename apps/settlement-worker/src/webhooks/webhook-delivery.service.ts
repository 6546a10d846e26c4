import { Inject, Injectable, Optional } from '@nestjs/common';
import type { Queue } from 'bullmq';

import type { WorkerConfig } from '@payorch/config';
import type { Database, TransactionClient } from '@payorch/db';
import type { JobData, SecretBox } from '@payorch/domain';
import { EgressError, EgressPolicy, guardedHttpRequest, type Resolver } from '@payorch/egress-guard';
import type { Logger } from '@payorch/logging';
import { webhookSecretAad, webhookSignature } from '@payorch/operations';

import { DATABASE, EGRESS_RESOLVER, LOGGER, METRICS, SECRET_BOX, WORKER_CONFIG } from '../tokens';
import type { WorkerMetrics } from '../worker-metrics';
import { retryDelayMs } from './backoff';
import type { DeliverySlots, SlotKey, SlotScope } from './delivery-slots';
import { WEBHOOK_DELIVERY_SLOTS } from './webhooks.tokens';

/**
 * The outcome of one delivery attempt, for the processor (which reschedules the job on `retry`, and on `deferred`
 * moves it back to delayed and records it as waiting for `scope`'s slots: nothing was sent, no attempt counted).
 */
export type DeliveryStep =
  | { kind: 'skipped'; reason: string }
  | { kind: 'deferred'; slot: SlotKey; scope: SlotScope; delayMs: number }
  | { kind: 'delivered'; status: number }
  | { kind: 'retry'; at: Date; attempts: number; error: string }
  | { kind: 'failed'; attempts: number; error: string };

/** The actor of the audit row of an endpoint the worker disabled. */
const AUTO_DISABLE_ACTOR = 'settlement-worker';

const SWEEP_BATCH = 500;
/** How long the sweep keeps re-scanning events it already scanned (a failed fan-out job is retried meanwhile). */
const SWEEP_OVERLAP_MS = 5 * 60_000;

/** Rows per page of the cross-tenant scan of overdue deliveries; every page is read, so none waits behind the oldest ones. */
const OVERDUE_PAGE = 500;
const NIL_UUID = '00000000-0000-0000-0000-000000000000';
/** Delivery ids named in the sweep's summary log line (every one is in its own info line). */
const LOGGED_IDS = 50;

/**
 * The options of a delivery's own job, the same wherever it is added (fan-out, lost-delivery sweep, redelivery hand-over):
 * job id = delivery id, so BullMQ ignores a second add while the job exists. A finished job is kept for a while
 * (completed: the last 1000, failed: the last 5000) and blocks an add with its id until then: the sweep retries it instead.
 */
function deliverJobOptions(deliveryId: string) {
  return { jobId: deliveryId, removeOnComplete: { count: 1000 }, removeOnFail: { count: 5000 } };
}

/** Reads of a job's state per delivery before it is taken as live (it kept changing under the sweep). */
const ENSURE_TRIES = 3;

/**
 * What making sure a delivery has its job found: `live` / `active` (it has one that will run, or runs now), or why it
 * had none that would ever run, and was given one: `missing` (no job: Redis lost it, or it was removed once finished),
 * `failed` (it failed: a database error that is no outage on its one attempt, or stalled past its limit; retried),
 * `completed` (it had finished before the delivery was pending again: retried), `orphaned` (its hash without a state:
 * Redis lost part of the queue; removed and added again).
 */
export type DeliverJobOutcome = 'live' | 'active' | RequeueReason;
export type RequeueReason = 'missing' | 'failed' | 'completed' | 'orphaned';

export interface RequeueResult {
  /** Deliveries PENDING / RETRYING due more than WEBHOOK_REQUEUE_AFTER_MS ago. */
  overdue: number;
  /** Of them, those whose job still exists and will run (waiting, delayed: a retry or a slot deferral, running): left alone. */
  live: number;
  /** Of them, those that had no job that would ever run, by reason: queued again under the delivery's own job id. */
  requeued: Record<RequeueReason, number>;
}

/**
 * Where the webhook sweep is, kept in Redis. Scans cover seq > `from` (and createdAt > `since`, only
 * until the first mark has aged); `scanned`: every event up to it was scanned at least once; `mark`: the
 * `scanned` of `markAt`, which becomes `from` once SWEEP_OVERLAP_MS old.
 */
interface SweepPosition {
  from: bigint;
  since: Date | null;
  scanned: bigint;
  mark: bigint;
  markAt: number;
}

function formatSweepPosition(p: SweepPosition): string {
  return JSON.stringify({ from: String(p.from), since: p.since?.toISOString() ?? null, scanned: String(p.scanned), mark: String(p.mark), markAt: p.markAt });
}

/** null when absent or unreadable (then the sweep starts over from its look-back). */
function parseSweepPosition(raw: string | null): SweepPosition | null {
  if (raw === null) return null;
  try {
    const v = JSON.parse(raw) as { from: string; since: string | null; scanned: string; mark: string; markAt: number };
    const since = v.since === null ? null : new Date(v.since);
    if (since !== null && Number.isNaN(since.getTime())) return null;
    if (!Number.isFinite(v.markAt)) return null;
    return { from: BigInt(v.from), since, scanned: BigInt(v.scanned), mark: BigInt(v.mark), markAt: v.markAt };
  } catch {
    return null;
  }
}

/**
 * Webhook fan-out and delivery (docs/webhooks.md). Every read and write of tenant rows is inside
 * withTenant; only the sweeps' scans are cross-tenant (SECURITY DEFINER payorch_events_pending_fanout,
 * payorch_overdue_webhook_deliveries), and return ids only.
 */
@Injectable()
export class WebhookDeliveryService {
  /**
   * The operator's egress policy (EGRESS_ALLOW_CIDRS, open to every tenant), checked on every delivery's resolved
   * address together with the ranges the operator granted the delivery's tenant for webhooks (EgressGrant).
   */
  private readonly policy: EgressPolicy;

  constructor(
    @Inject(DATABASE) private readonly db: Database,
    @Inject(WORKER_CONFIG) private readonly config: WorkerConfig,
    @Inject(SECRET_BOX) private readonly secrets: SecretBox,
    @Inject(LOGGER) private readonly logger: Logger,
    @Inject(EGRESS_RESOLVER) private readonly resolver: Resolver,
    /** Per-endpoint and per-tenant limits of attempts at once (without them, as in tests that call `attempt` directly, none). */
    @Optional() @Inject(WEBHOOK_DELIVERY_SLOTS) private readonly slots?: DeliverySlots,
    /** Counts the deliveries the lost-delivery sweep queued again (`payorch_webhook_deliveries_requeued_total`). */
    @Optional() @Inject(METRICS) private readonly metrics?: WorkerMetrics,
  ) {
    this.policy = EgressPolicy.fromList(config.EGRESS_ALLOW_CIDRS);
  }

  /**
   * Creates one WebhookDelivery per matching enabled endpoint (created no later than the event; its
   * eventTypes lists the type or `*`), idempotently (unique endpoint+event), and enqueues a delivery job
   * per delivery not yet attempted, with jobId = delivery id (BullMQ ignores a duplicate id).
   */
  async fanout(data: JobData['webhook.fanout'], queue: Queue): Promise<{ deliveries: number }> {
    const pending = await this.db.withTenant(data.tenantId, async (tx) => {
      const event = await tx.domainEvent.findUnique({ where: { id: data.eventId } });
      if (!event) return [];
      const endpoints = await tx.webhookEndpoint.findMany({
        where: { enabled: true, createdAt: { lte: event.createdAt }, OR: [{ eventTypes: { has: event.type } }, { eventTypes: { has: '*' } }] },
        select: { id: true },
      });
      if (endpoints.length === 0) return [];
      await tx.webhookDelivery.createMany({
        data: endpoints.map((e) => ({ tenantId: data.tenantId, endpointId: e.id, eventId: event.id, status: 'PENDING' as const, nextAttemptAt: new Date() })),
        skipDuplicates: true,
      });
      return tx.webhookDelivery.findMany({ where: { eventId: event.id, status: 'PENDING', attempts: 0 }, select: { id: true } });
    });
    for (const d of pending) await queue.add('webhook.deliver', { tenantId: data.tenantId, deliveryId: d.id }, deliverJobOptions(d.id));
    return { deliveries: pending.length };
  }

  /**
   * One attempt: POST the signed event; 2xx = delivered; anything else is recorded and retried or FAILED after the
   * last attempt (and the endpoint disabled if it has failed for WEBHOOK_DISABLE_AFTER_MS). With `holder` (the job's
   * id) the attempt first takes a slot of its endpoint and of its tenant (DeliverySlots), and is `deferred` when
   * either is full: a slow receiver holds at most WEBHOOK_ENDPOINT_CONCURRENCY worker slots, a tenant's receivers
   * at most WEBHOOK_TENANT_CONCURRENCY.
   */
  async attempt(data: JobData['webhook.deliver'], holder?: string): Promise<DeliveryStep> {
    const { loaded, grants } = await this.db.withTenant(data.tenantId, async (tx) => ({
      loaded: await tx.webhookDelivery.findUnique({ where: { id: data.deliveryId }, include: { endpoint: true, event: true } }),
      // The operator's webhook grants to this tenant (RLS: only its own), read with the delivery.
      grants: await tx.egressGrant.findMany({ where: { channel: 'WEBHOOK' }, select: { cidr: true, port: true } }),
    }));
    if (!loaded) return { kind: 'skipped', reason: 'delivery not found' };
    if (loaded.status === 'DELIVERED' || loaded.status === 'FAILED') return { kind: 'skipped', reason: `already ${loaded.status.toLowerCase()}` };
    const attempts = loaded.attempts + 1;
    if (!loaded.endpoint.enabled) {
      await this.record(data, { status: 'FAILED', attempts: loaded.attempts, lastError: 'endpoint disabled', nextAttemptAt: null });
      return { kind: 'failed', attempts: loaded.attempts, error: 'endpoint disabled' };
    }
    const event = loaded.event;
    // The endpoint was changed since the fan-out and no longer takes this type: it is not sent (nor retried).
    if (!loaded.endpoint.eventTypes.includes('*') && !loaded.endpoint.eventTypes.includes(event.type)) {
      const reason = 'endpoint no longer subscribes to this event type';
      await this.record(data, { status: 'FAILED', attempts: loaded.attempts, lastError: reason, nextAttemptAt: null });
      return { kind: 'failed', attempts: loaded.attempts, error: reason };
    }
    const slot: SlotKey = { tenantId: data.tenantId, endpointId: loaded.endpointId };
    const held = holder !== undefined && this.slots !== undefined ? await this.takeSlot(slot, holder) : false;
    if (held !== true && held !== false) return held;
    const body = JSON.stringify({ id: event.id, type: event.type, createdAt: event.createdAt.toISOString(), tenantId: event.tenantId, data: event.data });
    let status: number | null = null;
    let error: string | null = null;
    try {
      const secret = this.secrets.decrypt(loaded.endpoint.secretEncrypted, webhookSecretAad(data.tenantId, loaded.endpointId));
      const timestamp = Math.floor(Date.now() / 1000);
      // Through the platform egress policy on the address actually dialled; redirects are never followed.
      const response = await guardedHttpRequest({
        url: loaded.endpoint.url,
        method: 'POST',
        timeoutMs: this.config.WEBHOOK_TIMEOUT_MS,
        policy: this.policy.withGrants(grants),
        resolver: this.resolver,
        owner: data.tenantId,
        allowHttp: this.config.WEBHOOK_ALLOW_HTTP,
        // Only the status counts: the answer's body is never read (an endless one cannot hold the slot).
        maxResponseBytes: 0,
        headers: {
          'Content-Type': 'application/json',
          'User-Agent': 'payorch-webhooks/1',
          'Payorch-Event-Id': event.id,
          'Payorch-Event-Type': event.type,
          'Payorch-Delivery-Id': loaded.id,
          'Payorch-Signature': webhookSignature(secret, body, timestamp),
        },
        body,
      });
      status = response.status;
      if (status < 200 || status > 299) error = `HTTP ${status}`;
    } catch (e) {
      // The tenant sees only a generic reason (no port-scan oracle); the detail stays in our log.
      error = e instanceof EgressError ? e.publicReason : 'delivery failed';
      this.logger.warn({ deliveryId: data.deliveryId, tenantId: data.tenantId, reason: (e as Error).message }, 'webhook delivery not completed');
    } finally {
      if (held) await this.releaseSlot(slot, holder!);
    }
    if (error === null) {
      await this.record(data, { status: 'DELIVERED', attempts, lastStatusCode: status, lastError: null, nextAttemptAt: null, deliveredAt: new Date() });
      return { kind: 'delivered', status: status! };
    }
    const lastError = error.slice(0, 500);
    if (attempts >= this.config.WEBHOOK_ATTEMPTS) {
      const disabled = await this.db.withTenant(data.tenantId, async (tx) => {
        await tx.webhookDelivery.update({
          where: { id: data.deliveryId },
          data: { status: 'FAILED', attempts, lastStatusCode: status, lastError, nextAttemptAt: null },
        });
        return this.disableIfFailing(tx, data, loaded, attempts);
      });
      this.logger.warn({ deliveryId: data.deliveryId, tenantId: data.tenantId, attempts }, 'webhook delivery failed for good');
      if (disabled) {
        this.logger.warn(
          { endpointId: loaded.endpointId, tenantId: data.tenantId, failingSince: loaded.createdAt.toISOString() },
          'webhook endpoint disabled: nothing delivered to it since its failed delivery was created',
        );
      }
      return { kind: 'failed', attempts, error: lastError };
    }
    const at = new Date(Date.now() + retryDelayMs(attempts, this.config.WEBHOOK_BACKOFF_BASE_MS, this.config.WEBHOOK_BACKOFF_MAX_MS));
    await this.record(data, { status: 'RETRYING', attempts, lastStatusCode: status, lastError, nextAttemptAt: at });
    return { kind: 'retry', at, attempts, error: lastError };
  }

  /**
   * Enqueues fan-out for events that a matching endpoint has no delivery for yet, by commit order
   * (`DomainEvent.seq`, numbered here first, so this also numbers events whose producer could not):
   * a scan starts after a seq that every event of the last SWEEP_OVERLAP_MS or more has been scanned
   * past, so an event committed late is still found (its seq is new, whatever its createdAt) and a
   * fan-out job that failed is retried. The first sweep (no position) looks back
   * WEBHOOK_SWEEP_LOOKBACK_MS by createdAt.
   */
  async sweep(
    queue: Queue,
    redis: { get(key: string): Promise<string | null>; set(key: string, value: string): Promise<unknown> },
  ): Promise<{ enqueued: number }> {
    const key = `${this.config.REDIS_KEY_PREFIX}:webhooks:sweep-position`;
    // Every event with a seq up to `high` is visible to the scan below.
    const high = await this.db.sequenceEvents();
    const [{ now }] = await this.db.prisma.$queryRaw<[{ now: Date }]>`SELECT now() AS now`;
    const stored = parseSweepPosition(await redis.get(key));
    const from = stored?.from ?? 0n;
    const since = stored ? stored.since : new Date(now.getTime() - this.config.WEBHOOK_SWEEP_LOOKBACK_MS);
    const rows = await this.db.prisma.$queryRaw<{ id: string; tenantId: string; seq: bigint }[]>`
      SELECT * FROM payorch_events_pending_fanout(${from}::bigint, ${since}::timestamptz, ${SWEEP_BATCH}::int)`;
    for (const row of rows) {
      const existing = await queue.getJob(row.id);
      if (existing && (await existing.isFailed())) await existing.retry();
      else if (!existing || (await existing.isCompleted())) {
        if (existing) await existing.remove();
        await queue.add(
          'webhook.fanout',
          { tenantId: row.tenantId, eventId: row.id },
          { jobId: row.id, attempts: 5, backoff: { type: 'exponential', delay: 1000 }, removeOnComplete: { count: 1000 } },
        );
      }
    }
    // Scanned: everything up to the last row of a full batch, else everything up to `high`.
    const last = rows.at(-1)?.seq ?? 0n;
    const reached = rows.length < SWEEP_BATCH && high > last ? high : last;
    const scanned = stored && stored.scanned > reached ? stored.scanned : reached;
    const position: SweepPosition =
      stored === null
        ? { from, since, scanned, mark: scanned, markAt: now.getTime() }
        : now.getTime() - stored.markAt >= SWEEP_OVERLAP_MS
          ? // The mark is old enough: later scans start there, and a newer mark starts aging.
            { from: stored.mark, since: null, scanned, mark: scanned, markAt: now.getTime() }
          : { ...stored, scanned };
    await redis.set(key, formatSweepPosition(position));
    return { enqueued: rows.length };
  }

  /**
   * At least once, whatever Redis lost: every delivery PENDING or RETRYING whose due time (nextAttemptAt, or createdAt
   * without one) is more than WEBHOOK_REQUEUE_AFTER_MS past is made sure to have its `webhook.deliver` job, under the
   * job id the fan-out gives it (the delivery id), across tenants (SECURITY DEFINER payorch_overdue_webhook_deliveries,
   * keyset pages over a partial index of the unfinished deliveries). Its job is gone when Redis lost it (flush,
   * failover, restart without persistence), or failed (a database error that is no outage on its one attempt, a stall
   * past its limit), and nothing else would ever run it: the delivery log's redeliver answers 409 for a pending one.
   * A job that still exists and will run (waiting, running, delayed for its retry or deferred for a slot) is left
   * alone: BullMQ ignores an add whose id exists, and the state is checked first anyway. Queuing one again is harmless:
   * the attempt reads the delivery first (one already delivered or failed is skipped), and there is one job id per
   * delivery. Only enqueues; the delivery's columns stay the attempt's to write.
   */
  async requeueOverdue(queue: Queue): Promise<RequeueResult> {
    const result: RequeueResult = { overdue: 0, live: 0, requeued: { missing: 0, failed: 0, completed: 0, orphaned: 0 } };
    const requeuedIds: string[] = [];
    const olderThan = `${this.config.WEBHOOK_REQUEUE_AFTER_MS} milliseconds`;
    // Keyset pages over the partial index (migration 20261206144726_added_overdue_webhook_deliveries_scan).
    let after = { dueAt: '-infinity', id: NIL_UUID };
    for (;;) {
      const rows = await this.db.prisma.$queryRaw<Array<{ id: string; tenantId: string; dueAt: Date }>>`
        SELECT "id", "tenantId", "dueAt"
        FROM payorch_overdue_webhook_deliveries(${olderThan}::interval, ${after.dueAt}::timestamptz, ${after.id}::uuid, ${OVERDUE_PAGE}::int)`;
      result.overdue += rows.length;
      // One page's state checks at once (pipelined on the queue's connection).
      const settled = await Promise.allSettled(rows.map((row) => this.ensureDeliverJob(queue, { tenantId: row.tenantId, deliveryId: row.id })));
      let failure: { reason: unknown } | undefined;
      for (const [i, answer] of settled.entries()) {
        if (answer.status === 'rejected') {
          failure ??= { reason: answer.reason };
          continue;
        }
        const outcome = answer.value;
        if (outcome === 'live' || outcome === 'active') {
          result.live += 1;
          continue;
        }
        const { id, tenantId, dueAt } = rows[i]!;
        result.requeued[outcome] += 1;
        requeuedIds.push(id);
        this.metrics?.webhookRequeued.inc({ reason: outcome });
        this.logger.info({ deliveryId: id, tenantId, dueAt: dueAt.toISOString(), reason: outcome }, 'webhook delivery had no job left to run it; queued again');
      }
      // Redis not answering: what this page queued is counted and logged above; the next sweep goes on.
      if (failure) {
        this.logRequeued(result, requeuedIds);
        throw failure.reason;
      }
      const last = rows.at(-1);
      if (rows.length < OVERDUE_PAGE || last === undefined) break;
      after = { dueAt: last.dueAt.toISOString(), id: last.id };
    }
    this.logRequeued(result, requeuedIds);
    return result;
  }

  private logRequeued(result: RequeueResult, requeuedIds: string[]): void {
    if (requeuedIds.length === 0) return;
    this.logger.warn(
      { ...result, deliveryIds: requeuedIds.slice(0, LOGGED_IDS), more: Math.max(0, requeuedIds.length - LOGGED_IDS) },
      'webhook deliveries had lost their job and were queued again',
    );
  }

  /**
   * A redelivery's job (the gateway adds it under an id of its own, `<deliveryId>-r…`, since the delivery's job may
   * still be kept as completed or failed) hands the delivery to the delivery's own job (id = delivery id), which it
   * retries or adds; that job then makes the attempts. So a delivery has one job id, whoever queued it, and the
   * lost-delivery sweep, which looks only at that id, never adds a second job beside a redelivery still waiting for a
   * slot. `active`: the delivery's job is running now (it is finishing the delivery's previous round): the caller
   * tries again shortly.
   */
  handOver(data: JobData['webhook.deliver'], queue: Queue): Promise<DeliverJobOutcome> {
    return this.ensureDeliverJob(queue, data, true);
  }

  /**
   * Makes sure the delivery's own job (id = delivery id) exists and will run: leaves it, retries it, or adds it. The
   * sweep tells states apart by the job's hash and the sorted sets (completed, failed, delayed: O(log n) each); a job
   * in none of them that has not finished is waiting, running or prioritized, and is taken as live without searching
   * the wait and active lists (O(n) each, per delivery: a backlog of n waiting jobs would cost the sweep n² there).
   * `exact` (a redelivery's hand-over, rare) also tells a running job apart.
   */
  private async ensureDeliverJob(queue: Queue, data: JobData['webhook.deliver'], exact = false): Promise<DeliverJobOutcome> {
    const id = data.deliveryId;
    // A job can change state between the read and the move (another worker, the retention trim): read again, a few
    // times; one that keeps changing is taken as live (the next sweep looks again).
    for (let tries = 1; tries <= ENSURE_TRIES; tries++) {
      try {
        const job = await queue.getJob(id);
        if (!job) {
          await queue.add('webhook.deliver', data, deliverJobOptions(id));
          return 'missing';
        }
        const finished = (await job.isCompleted()) ? 'completed' : (await job.isFailed()) ? 'failed' : null;
        if (finished !== null) {
          // Same job, same data: back to waiting, as a first attempt.
          await job.retry(finished, { resetAttemptsMade: true, resetAttemptsStarted: true });
          return finished;
        }
        if (await job.isDelayed()) return 'live';
        let orphaned = job.finishedOn !== undefined;
        if (!orphaned && exact) {
          const state = await queue.getJobState(id);
          if (state === 'active') return 'active';
          orphaned = state === 'unknown';
        }
        if (!orphaned) return 'live';
        // A job hash in no state (Redis lost part of the queue): an add with its id would be ignored while it exists.
        if ((await queue.remove(id)) !== 1) continue;
        await queue.add('webhook.deliver', data, deliverJobOptions(id));
        return 'orphaned';
      } catch (error) {
        if (tries >= ENSURE_TRIES) throw error;
      }
    }
    return 'live';
  }

  /**
   * After a delivery failed for good: disables its endpoint when it has been failing for WEBHOOK_DISABLE_AFTER_MS, i.e.
   * the delivery is at least that old, and since it was created nothing was delivered to the endpoint and the
   * endpoint was not changed (a new URL or a re-enable gets a whole schedule of its own). Its pending deliveries
   * then end FAILED `endpoint disabled` without being sent, and fan-out makes no new ones; the tenant sees
   * `enabled: false` and an audit row `webhook.auto_disable`, and enables it again with PATCH.
   */
  private async disableIfFailing(
    tx: TransactionClient,
    data: JobData['webhook.deliver'],
    delivery: { createdAt: Date; endpointId: string; endpoint: { updatedAt: Date } },
    attempts: number,
  ): Promise<boolean> {
    const after = this.config.WEBHOOK_DISABLE_AFTER_MS;
    const since = delivery.createdAt;
    if (after === 0 || Date.now() - since.getTime() < after || delivery.endpoint.updatedAt > since) return false;
    const delivered = await tx.webhookDelivery.findFirst({
      where: { endpointId: delivery.endpointId, status: 'DELIVERED', deliveredAt: { gte: since } },
      select: { id: true },
    });
    if (delivered) return false;
    // Only as the endpoint was read: a change the tenant made meanwhile wins.
    const { count } = await tx.webhookEndpoint.updateMany({
      where: { id: delivery.endpointId, enabled: true, updatedAt: delivery.endpoint.updatedAt },
      data: { enabled: false },
    });
    if (count === 0) return false;
    await tx.auditLog.create({
      data: {
        tenantId: data.tenantId,
        actorType: 'system',
        actorId: AUTO_DISABLE_ACTOR,
        action: 'webhook.auto_disable',
        resourceType: 'webhook_endpoint',
        resourceId: delivery.endpointId,
        details: { deliveryId: data.deliveryId, attempts, failingSince: since.toISOString() },
      },
    });
    return true;
  }

  /**
   * A slot for this attempt (true), or the deferral when the endpoint's or the tenant's are all taken. Redis
   * unavailable: the attempt goes without one (the queue itself cannot take jobs then, so the limit has nothing to bound).
   */
  private async takeSlot(slot: SlotKey, holder: string): Promise<boolean | DeliveryStep> {
    try {
      const answer = await this.slots!.acquire(slot, holder);
      return answer.acquired ? true : { kind: 'deferred', slot, scope: answer.scope, delayMs: answer.delayMs };
    } catch (error) {
      this.logger.warn({ ...slot, err: (error as Error).message }, 'webhook delivery slot not taken (Redis); attempting without one');
      return false;
    }
  }

  /** Frees the attempt's slots and wakes the attempt whose turn it is; a lease that cannot be freed runs out by itself. */
  private async releaseSlot(slot: SlotKey, holder: string): Promise<void> {
    try {
      await this.slots!.release(slot, holder);
    } catch (error) {
      this.logger.warn({ ...slot, err: (error as Error).message }, 'webhook delivery slot not released (its lease runs out)');
    }
  }

  /**
   * Records a deferred attempt's job as waiting for its slots (after it was moved to delayed, so that a wake finds it
   * there). Not recorded (Redis): the job's own delay brings it back.
   */
  async waitForSlot(step: Extract<DeliveryStep, { kind: 'deferred' }>, holder: string): Promise<void> {
    try {
      await this.slots?.wait(step.slot, step.scope, holder);
    } catch (error) {
      this.logger.warn({ ...step.slot, err: (error as Error).message }, 'deferred webhook delivery not recorded as waiting (it comes back after its delay)');
    }
  }

  private async record(
    data: JobData['webhook.deliver'],
    values: {
      status: 'DELIVERED' | 'RETRYING' | 'FAILED';
      attempts: number;
      lastStatusCode?: number | null;
      lastError: string | null;
      nextAttemptAt: Date | null;
      deliveredAt?: Date;
    },
  ): Promise<void> {
    await this.db.withTenant(data.tenantId, (tx) =>
      tx.webhookDelivery.update({ where: { id: data.deliveryId }, data: { ...values, lastStatusCode: values.lastStatusCode ?? null } }),
    );
  }
}
