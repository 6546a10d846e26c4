import { randomUUID } from 'node:crypto';
import { createServer, type IncomingHttpHeaders, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';

import type { INestApplication } from '@nestjs/common';
import { Queue, QueueEvents } from 'bullmq';
import { Redis } from 'ioredis';
import pg from 'pg';

import type { WorkerConfig } from '@payorch/config';
import { createPrismaClient, Database, type PrismaClient, publishEvent } from '@payorch/db';
import { QUEUES, SecretBox } from '@payorch/domain';
import { createLogger } from '@payorch/logging';
import { webhookSecretAad } from '@payorch/operations';
import { createTestDatabase, deleteRedisPrefix, explainPrepared, type TestDatabase, waitFor, widestRead } from '@payorch/testing';

import { createWorkerApp } from '../bootstrap';
import { SchedulerReconciler } from '../schedules/scheduler-reconciler.service';
import { testQueueOptions, testWorkerConfig } from '../testing/worker-config.testing';
import { METRICS } from '../tokens';
import type { WorkerMetrics } from '../worker-metrics';
import { type RequeueResult, WebhookDeliveryService } from './webhook-delivery.service';
import { WEBHOOK_SWEEP_SCHEDULER_ID } from './webhooks.tokens';

/** What a loopback receiver got: one entry per POST. */
interface Received {
  path: string;
  deliveryId: string;
  eventId: string;
}

function header(headers: IncomingHttpHeaders, name: string): string {
  const value = headers[name];
  return Array.isArray(value) ? value.join(',') : (value ?? '');
}

const NONE_REQUEUED = { missing: 0, failed: 0, completed: 0, orphaned: 0 };

/**
 * At least once, whatever Redis lost (docs/webhooks.md, "A delivery whose job was lost"): a delivery PENDING or RETRYING
 * past its due time by WEBHOOK_REQUEUE_AFTER_MS whose `webhook.deliver` job is gone (Redis flushed, failed over) or
 * failed is queued again by the webhook sweep under its own job id and delivered to a receiver on 127.0.0.1; a
 * delivery whose job still exists is never queued twice. Real worker, PostgreSQL, Redis and BullMQ. Before, such a
 * delivery stayed pending for good (the sweep only looked for events without deliveries, and redeliver answers 409).
 */
describe('webhook sweep: a delivery whose job is lost is queued again (worker, real Redis and PostgreSQL)', () => {
  let testDb: TestDatabase;
  let owner: PrismaClient;
  let db: Database;
  let config: WorkerConfig;
  let box: SecretBox;
  let app: INestApplication;
  let queue: Queue;
  let events: QueueEvents;
  let redis: Redis;
  let server: Server;
  let baseUrl: string;
  let tenantId: string;
  const received: Received[] = [];

  beforeAll(async () => {
    server = createServer((req, res) => {
      received.push({ path: req.url ?? '/', deliveryId: header(req.headers, 'payorch-delivery-id'), eventId: header(req.headers, 'payorch-event-id') });
      req.resume();
      res.writeHead(req.url?.startsWith('/failing/') ? 503 : 204).end();
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    baseUrl = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;

    testDb = await createTestDatabase();
    owner = createPrismaClient(testDb.adminUrl, { max: 2 });
    db = Database.connect(testDb.appUrl, 2);
    config = testWorkerConfig(testDb.appUrl, 'webhook-lost', {
      EGRESS_ALLOW_CIDRS: '127.0.0.0/8',
      WEBHOOK_ALLOW_HTTP: 'true',
      // Only the sweeps a test runs (and the one a scheduler runs when it is created) look for lost deliveries.
      WEBHOOK_SWEEP_INTERVAL_MS: '3600000',
      RECOVERY_INTERVAL_MS: '3600000',
      SETTLEMENT_SYNC_INTERVAL_MS: '3600000',
      SETTLEMENT_SWEEP_INTERVAL_MS: '3600000',
      WALLET_SWEEP_INTERVAL_MS: '3600000',
      SCHEDULE_RECONCILE_INTERVAL_MS: '3600000',
    });
    box = SecretBox.fromConfig(config.PAYORCH_MASTER_KEY);
    app = await createWorkerApp(config, createLogger({ name: 'test', level: 'silent' }));
    await app.init();
    queue = new Queue(QUEUES.webhooks, testQueueOptions(config));
    events = new QueueEvents(QUEUES.webhooks, testQueueOptions(config));
    await events.waitUntilReady();
    redis = new Redis(config.REDIS_URL);
    // The sweep the scheduler runs at start-up has found nothing before a test makes a delivery overdue.
    await waitFor(async () => (await queue.getJobs(['completed'])).some((j) => j.name === 'webhook.sweep'), { what: 'the start-up sweep' });
  }, 60_000);

  afterAll(async () => {
    await events?.close();
    await queue?.close();
    await app?.close();
    if (redis) {
      await deleteRedisPrefix(redis, config.REDIS_KEY_PREFIX);
      await redis.quit();
    }
    await db?.close();
    await owner?.$disconnect();
    await testDb?.drop();
    server?.closeAllConnections();
    await new Promise((resolve) => server?.close(resolve));
  });

  // A tenant per test: the events sweep of one test's sweeps does not fan another test's events out to its endpoints.
  beforeEach(async () => {
    tenantId = (await owner.tenant.create({ data: { name: `T ${randomUUID()}` } })).id;
  });

  async function endpoint(path: string): Promise<string> {
    const id = randomUUID();
    await owner.webhookEndpoint.create({
      data: {
        id,
        tenantId,
        url: `${baseUrl}${path}`,
        eventTypes: ['*'],
        enabled: true,
        secretEncrypted: box.encrypt(`whsec_${id}`, webhookSecretAad(tenantId, id)),
      },
    });
    return id;
  }

  async function event(): Promise<string> {
    const published = await db.withTenant(tenantId, (tx) =>
      publishEvent(tx, tenantId, { type: 'terminal.online', subjectType: 'terminal', subjectId: null, data: {} }),
    );
    return published.id;
  }

  /** A delivery row as the fan-out leaves it (PENDING, due now), without its job: the fan-out's add was lost. */
  async function pendingDelivery(endpointId: string): Promise<{ id: string; eventId: string }> {
    const eventId = await event();
    const row = await owner.webhookDelivery.create({ data: { tenantId, endpointId, eventId, status: 'PENDING', nextAttemptAt: new Date() } });
    return { id: row.id, eventId };
  }

  /** Due an hour ago: what the sweep looks for (WEBHOOK_REQUEUE_AFTER_MS, 10 min by default). */
  const overdue = (deliveryId: string) =>
    owner.$executeRaw`UPDATE "WebhookDelivery" SET "nextAttemptAt" = now() - interval '1 hour' WHERE "id" = ${deliveryId}::uuid`;

  /** A `webhook.sweep` job run by the worker, as its scheduler runs it; its result (the lost-delivery part). */
  async function sweep(): Promise<RequeueResult> {
    const job = await queue.add('webhook.sweep', {});
    const result = (await job.waitUntilFinished(events, 20_000)) as { enqueued: number; overdue: RequeueResult };
    return result.overdue;
  }

  const deliveredRow = (id: string) =>
    waitFor(async () => (await owner.webhookDelivery.findFirst({ where: { id, status: 'DELIVERED' } })) ?? undefined, { what: `delivery ${id} delivered` });

  const postsOf = (deliveryId: string) => received.filter((r) => r.deliveryId === deliveryId);

  const requeuedCount = async (reason: string) =>
    (await app.get<WorkerMetrics>(METRICS).webhookRequeued.get()).values.find((v) => v.labels.reason === reason)?.value ?? 0;

  it('a due delivery without a job in Redis is queued again under its own id and delivered once', async () => {
    const endpointId = await endpoint('/lost');
    const { id, eventId } = await pendingDelivery(endpointId);
    expect(await queue.getJob(id)).toBeUndefined();
    const counted = await requeuedCount('missing');

    // Due, but not yet past the grace: left alone (its job may still be on its way).
    const early = await sweep();
    await overdue(id);
    const swept = await sweep();

    expect(await deliveredRow(id)).toMatchObject({ attempts: 1, lastStatusCode: 204 });
    expect(postsOf(id)).toEqual([{ path: '/lost', deliveryId: id, eventId }]);
    expect(early).toEqual({ overdue: 0, live: 0, requeued: NONE_REQUEUED });
    expect(swept).toEqual({ overdue: 1, live: 0, requeued: { ...NONE_REQUEUED, missing: 1 } });
    // The fan-out's job id (the delivery id), so any later add of the same delivery is one job.
    expect(await queue.getJob(id)).toMatchObject({ name: 'webhook.deliver', data: { tenantId, deliveryId: id } });
    expect(await requeuedCount('missing')).toBe(counted + 1);
    expect(await sweep()).toEqual({ overdue: 0, live: 0, requeued: NONE_REQUEUED });
  }, 30_000);

  it('a delivery whose job is still there (delayed, as a slot deferral leaves it) is not queued twice: one POST', async () => {
    const endpointId = await endpoint('/deferred');
    const { id } = await pendingDelivery(endpointId);
    // As the processor leaves a deferred attempt: the same job, delayed, the delivery unchanged (due, no attempt).
    await queue.add(
      'webhook.deliver',
      { tenantId, deliveryId: id },
      { jobId: id, delay: 3_600_000, removeOnComplete: { count: 1000 }, removeOnFail: { count: 5000 } },
    );
    await overdue(id);

    expect(await sweep()).toEqual({ overdue: 1, live: 1, requeued: NONE_REQUEUED });
    expect(await sweep()).toEqual({ overdue: 1, live: 1, requeued: NONE_REQUEUED });
    const jobs = (await queue.getJobs(['waiting', 'delayed', 'active', 'prioritized'])).filter((j) => j.data.deliveryId === id);
    expect(jobs.map((j) => j.id)).toEqual([id]);
    expect(await queue.getJobState(id)).toBe('delayed');
    expect(postsOf(id)).toEqual([]);

    await (await queue.getJob(id))!.promote();
    expect(await deliveredRow(id)).toMatchObject({ attempts: 1 });
    expect(postsOf(id)).toHaveLength(1);
    expect(await sweep()).toEqual({ overdue: 0, live: 0, requeued: NONE_REQUEUED });
    expect(postsOf(id)).toHaveLength(1);
  }, 30_000);

  it('a delivery whose job failed (a database error that is no outage, on its one attempt) is retried by the sweep', async () => {
    const endpointId = await endpoint('/failed-job');
    const eventId = await event();
    // Recording the attempt's outcome fails (a bug or a constraint, not an outage): the job's one attempt fails.
    await owner.$executeRawUnsafe(`CREATE FUNCTION test_refuse_delivery_update() RETURNS trigger LANGUAGE plpgsql AS $$
      BEGIN RAISE EXCEPTION 'refused by the test'; END $$`);
    await owner.$executeRawUnsafe(`CREATE TRIGGER test_refuse_delivery_update BEFORE UPDATE ON "WebhookDelivery"
      FOR EACH ROW WHEN (OLD."endpointId" = '${endpointId}'::uuid) EXECUTE FUNCTION test_refuse_delivery_update()`);
    let id: string;
    try {
      await queue.add('webhook.fanout', { tenantId, eventId }, { jobId: eventId });
      id = (await waitFor(() => owner.webhookDelivery.findFirst({ where: { endpointId, eventId } }), { what: 'the fan-out' })).id;
      await waitFor(async () => (await queue.getJobState(id)) === 'failed', { what: 'the delivery job failed' });
    } finally {
      await owner.$executeRawUnsafe('DROP TRIGGER test_refuse_delivery_update ON "WebhookDelivery"');
      await owner.$executeRawUnsafe('DROP FUNCTION test_refuse_delivery_update()');
    }
    // Sent, but not recorded: still PENDING with no attempt, and its job will never run again by itself.
    expect(await owner.webhookDelivery.findUniqueOrThrow({ where: { id } })).toMatchObject({ status: 'PENDING', attempts: 0 });
    expect(postsOf(id)).toHaveLength(1);
    await overdue(id);

    const swept = await sweep();
    expect(await deliveredRow(id)).toMatchObject({ attempts: 1, lastStatusCode: 204 });
    // At least once: sent again, with the same event id for the receiver to deduplicate.
    expect(postsOf(id).map((r) => r.eventId)).toEqual([eventId, eventId]);
    expect(swept).toEqual({ overdue: 1, live: 0, requeued: { ...NONE_REQUEUED, failed: 1 } });
    expect(await queue.getJobState(id)).toBe('completed');
  }, 30_000);

  it("a redelivery's job hands over to the delivery's own job: one job per delivery, so a sweep meanwhile adds no second schedule", async () => {
    const endpointId = await endpoint('/failing/redelivered');
    const { id } = await pendingDelivery(endpointId);
    // Its last attempt fails: FAILED, its job completed (and kept).
    await owner.webhookDelivery.update({ where: { id }, data: { attempts: config.WEBHOOK_ATTEMPTS - 1 } });
    await queue.add('webhook.deliver', { tenantId, deliveryId: id }, { jobId: id, removeOnComplete: { count: 1000 }, removeOnFail: { count: 5000 } });
    await waitFor(async () => (await queue.getJobState(id)) === 'completed', { what: 'the last attempt' });
    expect(await owner.webhookDelivery.findUniqueOrThrow({ where: { id } })).toMatchObject({ status: 'FAILED' });

    // POST …/redeliver, as the gateway does it: the row pending again, and a job under an id of its own, which waits
    // (here: delayed, as a slot deferral leaves it) past the grace. The sweep sees only the delivery's own job,
    // completed, and retries it: its attempt fails, and it waits for its retry (30 s).
    await owner.webhookDelivery.update({ where: { id }, data: { status: 'PENDING', attempts: 0, nextAttemptAt: new Date(), lastError: null } });
    const redeliveryId = `${id}-r0-${Date.now()}`;
    const redelivery = await queue.add(
      'webhook.deliver',
      { tenantId, deliveryId: id },
      { jobId: redeliveryId, delay: 3_600_000, removeOnComplete: { count: 1000 }, removeOnFail: { count: 1000 } },
    );
    await overdue(id);
    const swept = await sweep();
    await waitFor(
      async () => (await owner.webhookDelivery.findFirst({ where: { id, status: 'RETRYING', attempts: 1 } })) && (await queue.getJobState(id)) === 'delayed',
      {
        what: "the retried job's attempt and its retry scheduled",
      },
    );
    expect(postsOf(id)).toHaveLength(2);

    // The redelivery's job runs at last: it hands over to the delivery's job, which is already scheduled.
    await redelivery.promote();
    const ran = await waitFor(
      async () => {
        const job = await queue.getJob(redeliveryId);
        const state = await queue.getJobState(redeliveryId);
        return state === 'completed' || (state === 'delayed' && (job?.attemptsStarted ?? 0) > 0)
          ? { state, returnvalue: job?.returnvalue as unknown }
          : undefined;
      },
      { what: "the redelivery's job run" },
    );
    // Before, it made attempts of its own beside the retried job: a second schedule, the receiver called twice as often.
    expect(postsOf(id)).toHaveLength(2);
    expect(await owner.webhookDelivery.findUniqueOrThrow({ where: { id } })).toMatchObject({ status: 'RETRYING', attempts: 1 });
    expect(ran).toEqual({ state: 'completed', returnvalue: { handedOver: id, outcome: 'live' } });
    const live = (await queue.getJobs(['waiting', 'delayed', 'active', 'prioritized'])).filter((j) => j.data.deliveryId === id);
    expect(live.map((j) => j.id)).toEqual([id]);
    expect(swept).toEqual({ overdue: 1, live: 0, requeued: { ...NONE_REQUEUED, completed: 1 } });
    // Not sent again here: the endpoint is paused (its delivery ends FAILED at its next attempt).
    await owner.webhookEndpoint.update({ where: { id: endpointId }, data: { enabled: false } });
  }, 30_000);

  it('reads a bounded number of rows among 20,000 finished deliveries (generic plan of the cross-tenant scan)', async () => {
    const endpointId = await endpoint('/bulk');
    await owner.$executeRawUnsafe(
      `WITH e AS (
         INSERT INTO "DomainEvent" ("id", "tenantId", "type", "subjectType", "data", "createdAt")
         SELECT gen_random_uuid(), $1::uuid, 'terminal.online', 'terminal', '{}', now() - n * interval '1 minute' FROM generate_series(1, 20003) n
         RETURNING "id", "createdAt")
       INSERT INTO "WebhookDelivery" ("id", "tenantId", "endpointId", "eventId", "status", "attempts", "nextAttemptAt", "deliveredAt", "createdAt", "updatedAt")
       SELECT gen_random_uuid(), $1::uuid, $2::uuid, e."id", 'DELIVERED', 1, NULL, e."createdAt", e."createdAt", e."createdAt" FROM e`,
      tenantId,
      endpointId,
    );
    // Three of them pending again, long overdue.
    await owner.$executeRawUnsafe(
      `UPDATE "WebhookDelivery" SET "status" = 'PENDING', "deliveredAt" = NULL, "nextAttemptAt" = now() - interval '1 hour'
       WHERE "id" IN (SELECT "id" FROM "WebhookDelivery" WHERE "endpointId" = $1::uuid LIMIT 3)`,
      endpointId,
    );
    await owner.$executeRawUnsafe('ANALYZE "WebhookDelivery"');

    // The function's own statement, prepared with its parameters as $1..$4 and planned generically (as a
    // long-lived connection keeps it), run by the function's owner: what the SECURITY DEFINER function runs.
    const client = new pg.Client({ connectionString: testDb.adminUrl });
    await client.connect();
    try {
      const [fn] = (await client.query<{ src: string }>(`SELECT prosrc AS src FROM pg_proc WHERE proname = 'payorch_overdue_webhook_deliveries'`)).rows;
      const text = ['p_older_than', 'p_after_due', 'p_after_id', 'p_limit'].reduce((sql, name, i) => sql.replaceAll(name, `$${i + 1}`), fn!.src);
      await client.query('SET plan_cache_mode = force_generic_plan');
      await client.query(`PREPARE overdue(interval, timestamptz, uuid, int) AS ${text}`);
      const plan = await explainPrepared(
        client,
        'overdue',
        { text, values: ['10 minutes', '-infinity', '00000000-0000-0000-0000-000000000000', 500] },
        tenantId,
      );
      expect(widestRead(plan).rows).toBeLessThanOrEqual(10);
      expect(JSON.stringify(plan)).toContain('WebhookDelivery_unfinished_by_due_idx');
    } finally {
      await client.end();
    }
    // The app's role reads them only through the function (RLS would show it one tenant at a time).
    const rows = await db.prisma.$queryRaw<Array<{ id: string }>>`
      SELECT "id" FROM payorch_overdue_webhook_deliveries('10 minutes'::interval, '-infinity'::timestamptz, '00000000-0000-0000-0000-000000000000'::uuid, 500)`;
    expect(rows).toHaveLength(3);
    // Not sent: the other tests' sweeps must not find them.
    await owner.webhookDelivery.updateMany({ where: { endpointId, status: 'PENDING' }, data: { status: 'FAILED', nextAttemptAt: null } });
  }, 60_000);

  it("Redis loses the queue's keys between the fan-out and the delivery: the re-created sweep queues the delivery again", async () => {
    const endpointId = await endpoint('/flushed');
    const eventId = await event();
    // The fan-out made the delivery and its job; no worker has taken the job yet (the queue is paused).
    await queue.pause();
    const { deliveries } = await app.get(WebhookDeliveryService).fanout({ tenantId, eventId }, queue);
    expect(deliveries).toBe(1);
    const { id } = await owner.webhookDelivery.findFirstOrThrow({ where: { endpointId, eventId } });
    expect(await queue.getJobState(id)).toBe('waiting');

    // Redis loses everything of this worker (a flush of the test's own prefix; a failover to an empty replica).
    await deleteRedisPrefix(redis, config.REDIS_KEY_PREFIX);
    expect(await queue.getJob(id)).toBeUndefined();
    expect(await queue.getJobScheduler(WEBHOOK_SWEEP_SCHEDULER_ID)).toBeUndefined();
    // Time passes (the grace); then what the worker does once Redis is back: its schedulers are re-created (on the
    // reconnect, or at the next tick) and the sweep's runs at once.
    await overdue(id);
    expect(await app.get(SchedulerReconciler).reconcile()).toMatchObject({ recreated: expect.arrayContaining([WEBHOOK_SWEEP_SCHEDULER_ID]) });

    expect(await deliveredRow(id)).toMatchObject({ attempts: 1, lastStatusCode: 204 });
    expect(postsOf(id)).toEqual([{ path: '/flushed', deliveryId: id, eventId }]);
    const swept = await waitFor(async () => (await queue.getJobs(['completed'])).find((j) => j.name === 'webhook.sweep'), { what: 'the sweep job completed' });
    expect((swept.returnvalue as { overdue: RequeueResult }).overdue).toEqual({ overdue: 1, live: 0, requeued: { ...NONE_REQUEUED, missing: 1 } });
  }, 30_000);
});
