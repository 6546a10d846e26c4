import { Inject, Injectable } from '@nestjs/common';
import type { Queue } from 'bullmq';

import type { WorkerConfig } from '@payorch/config';
import type { Database } from '@payorch/db';
import type { JobData, SecretBox } from '@payorch/domain';
import { EgressError, EgressPolicy, guardedHttpRequest, type Resolver } from '@payorch/egress-guard';
import type { Logger } from '@payorch/logging';
import { webhookSecretAad, webhookSignature } from '@payorch/operations';

import { DATABASE, EGRESS_RESOLVER, LOGGER, WORKER_CONFIG } from '../tokens';
import { retryDelayMs } from './backoff';
import { WEBHOOK_SECRET_BOX } from './webhooks.tokens';

/** The outcome of one delivery attempt, for the processor (which reschedules the job on `retry`). */
export type DeliveryStep =
  | { kind: 'skipped'; reason: string }
  | { kind: 'delivered'; status: number }
  | { kind: 'retry'; at: Date; attempts: number; error: string }
  | { kind: 'failed'; attempts: number; error: string };

const SWEEP_BATCH = 500;
/** How long the sweep keeps re-scanning events it already scanned (a failed fan-out job is retried meanwhile). */
const SWEEP_OVERLAP_MS = 5 * 60_000;

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
 * withTenant; only the sweep's scan is cross-tenant (SECURITY DEFINER payorch_events_pending_fanout).
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
    @Inject(WEBHOOK_SECRET_BOX) private readonly secrets: SecretBox,
    @Inject(LOGGER) private readonly logger: Logger,
    @Inject(EGRESS_RESOLVER) private readonly resolver: Resolver,
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
    for (const d of pending) {
      await queue.add(
        'webhook.deliver',
        { tenantId: data.tenantId, deliveryId: d.id },
        { jobId: d.id, removeOnComplete: { count: 1000 }, removeOnFail: { count: 5000 } },
      );
    }
    return { deliveries: pending.length };
  }

  /** One attempt: POST the signed event; 2xx = delivered; anything else is recorded and retried or FAILED after the last attempt. */
  async attempt(data: JobData['webhook.deliver']): Promise<DeliveryStep> {
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
        maxResponseBytes: 1024,
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
    }
    if (error === null) {
      await this.record(data, { status: 'DELIVERED', attempts, lastStatusCode: status, lastError: null, nextAttemptAt: null, deliveredAt: new Date() });
      return { kind: 'delivered', status: status! };
    }
    const lastError = error.slice(0, 500);
    if (attempts >= this.config.WEBHOOK_ATTEMPTS) {
      await this.record(data, { status: 'FAILED', attempts, lastStatusCode: status, lastError, nextAttemptAt: null });
      this.logger.warn({ deliveryId: data.deliveryId, tenantId: data.tenantId, attempts }, 'webhook delivery failed for good');
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
