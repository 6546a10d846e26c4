import { randomUUID } from 'node:crypto';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';

import type { INestApplication } from '@nestjs/common';
import { Queue } from 'bullmq';
import { Redis } from 'ioredis';

import type { WorkerConfig } from '@payorch/config';
import { createPrismaClient, Database, type DomainEventType, type PrismaClient, publishEvent } from '@payorch/db';
import { QUEUES, SecretBox } from '@payorch/domain';
import { createLogger } from '@payorch/logging';
import { webhookSecretAad } from '@payorch/operations';
import { createTestDatabase, deleteRedisPrefix, type TestDatabase, waitFor } from '@payorch/testing';

import { createWorkerApp } from '../bootstrap';
import { testQueueOptions, testWorkerConfig } from '../testing/worker-config.testing';
import { WebhookDeliveryService } from './webhook-delivery.service';

/** A loopback receiver that counts the requests it holds open, per path and in all (and the most of each at once). */
class Receiver {
  readonly server: Server;
  readonly received: string[] = [];
  private readonly open = new Map<string, number>();
  readonly most = new Map<string, number>();
  openNow = 0;
  mostAtOnce = 0;

  constructor(answer: (req: IncomingMessage, res: ServerResponse) => void) {
    this.server = createServer((req, res) => {
      const path = req.url ?? '/';
      this.received.push(path);
      this.open.set(path, (this.open.get(path) ?? 0) + 1);
      this.most.set(path, Math.max(this.most.get(path) ?? 0, this.open.get(path)!));
      this.mostAtOnce = Math.max(this.mostAtOnce, ++this.openNow);
      res.on('close', () => {
        this.open.set(path, this.open.get(path)! - 1);
        this.openNow--;
      });
      res.on('error', () => undefined);
      req.resume();
      answer(req, res);
    });
  }

  async listen(): Promise<string> {
    await new Promise<void>((resolve) => this.server.listen(0, '127.0.0.1', resolve));
    return `http://127.0.0.1:${(this.server.address() as AddressInfo).port}`;
  }

  close(): Promise<void> {
    this.server.closeAllConnections();
    return new Promise((resolve) => this.server.close(() => resolve()));
  }
}

/**
 * Hostile webhook receivers against the whole worker (real PostgreSQL, Redis, BullMQ; receivers on 127.0.0.1, which
 * only the operator's EGRESS_ALLOW_CIDRS opens): a receiver that never answers holds at most its endpoint's and its
 * tenant's slots while other tenants' deliveries go on; an answer's body is never read; an endpoint failing for the
 * whole retry schedule is disabled; a delivery of a type its endpoint no longer takes is not sent.
 */
describe('webhook delivery against hostile receivers (worker)', () => {
  let testDb: TestDatabase;
  let owner: PrismaClient;
  let db: Database;
  let config: WorkerConfig;
  let box: SecretBox;
  let app: INestApplication;
  let queue: Queue;

  beforeAll(async () => {
    testDb = await createTestDatabase();
    owner = createPrismaClient(testDb.adminUrl, { max: 2 });
    db = Database.connect(testDb.appUrl, 2);
    config = testWorkerConfig(testDb.appUrl, 'webhook-receivers', {
      EGRESS_ALLOW_CIDRS: '127.0.0.0/8',
      WEBHOOK_ALLOW_HTTP: 'true',
      WEBHOOK_CONCURRENCY: '4',
      WEBHOOK_TENANT_CONCURRENCY: '2',
      WEBHOOK_ENDPOINT_CONCURRENCY: '1',
      // A receiver that never answers holds its attempt for the whole test.
      WEBHOOK_TIMEOUT_MS: '60000',
      WEBHOOK_SWEEP_INTERVAL_MS: '3600000',
      RECOVERY_INTERVAL_MS: '3600000',
      SETTLEMENT_SYNC_INTERVAL_MS: '3600000',
      WALLET_SWEEP_INTERVAL_MS: '3600000',
    });
    box = SecretBox.fromConfig(config.PAYORCH_MASTER_KEY);
    app = await createWorkerApp(config, createLogger({ name: 'test', level: 'silent' }));
    await app.init();
    queue = new Queue(QUEUES.webhooks, testQueueOptions(config));
  }, 60_000);

  afterAll(async () => {
    await queue?.close();
    await app?.close();
    const redis = new Redis(config.REDIS_URL);
    await deleteRedisPrefix(redis, config.REDIS_KEY_PREFIX);
    await redis.quit();
    await db?.close();
    await owner?.$disconnect();
    await testDb?.drop();
  });

  const tenant = async () => (await owner.tenant.create({ data: { name: `T ${randomUUID()}` } })).id;

  async function endpoint(tenantId: string, url: string, eventTypes = ['*']): Promise<string> {
    const id = randomUUID();
    await owner.webhookEndpoint.create({
      data: { id, tenantId, url, eventTypes, enabled: true, secretEncrypted: box.encrypt(`whsec_${id}`, webhookSecretAad(tenantId, id)) },
    });
    return id;
  }

  /** An event of the tenant, fanned out by the worker as the pub/sub listener would have it. */
  async function event(tenantId: string, type: DomainEventType = 'terminal.online'): Promise<string> {
    const published = await db.withTenant(tenantId, (tx) => publishEvent(tx, tenantId, { type, subjectType: 'terminal', subjectId: null, data: {} }));
    await queue.add('webhook.fanout', { tenantId, eventId: published.id }, { jobId: published.id });
    return published.id;
  }

  /** A delivery row of a new event to the endpoint, without a job (the test makes the attempt). */
  async function delivery(tenantId: string, endpointId: string, fields: { type?: DomainEventType; attempts?: number; createdAt?: Date } = {}): Promise<string> {
    const published = await db.withTenant(tenantId, (tx) =>
      publishEvent(tx, tenantId, { type: fields.type ?? 'terminal.online', subjectType: 'terminal', subjectId: null, data: {} }),
    );
    const row = await owner.webhookDelivery.create({
      data: { tenantId, endpointId, eventId: published.id, status: 'PENDING', attempts: fields.attempts ?? 0, createdAt: fields.createdAt },
    });
    return row.id;
  }

  it("a receiver that never answers holds at most its endpoint's slots, a tenant's receivers at most its tenant's; another tenant is delivered meanwhile", async () => {
    const hanging = new Receiver(() => undefined);
    const fast = new Receiver((_req, res) => res.writeHead(204).end());
    const [hangingUrl, fastUrl] = [await hanging.listen(), await fast.listen()];
    const a = await tenant();
    const b = await tenant();
    try {
      const aEndpoints = [await endpoint(a, `${hangingUrl}/a1`), await endpoint(a, `${hangingUrl}/a2`), await endpoint(a, `${hangingUrl}/a3`)];
      for (let i = 0; i < 4; i++) await event(a);
      // 12 deliveries of A, 4 worker slots: A takes its tenant's 2 (one per endpoint); the rest wait, deferred.
      await waitFor(async () => hanging.openNow >= 2 && (await queue.getDelayedCount()) >= 1, { what: "A's receivers holding its slots" });

      const bEndpoint = await endpoint(b, `${fastUrl}/b`);
      const bEvent = await event(b);
      // Before, A's 12 attempts took all 4 slots of the worker for WEBHOOK_TIMEOUT_MS (here 60 s) each: B waited.
      const delivered = await waitFor(
        async () => (await owner.webhookDelivery.findFirst({ where: { endpointId: bEndpoint, eventId: bEvent, status: 'DELIVERED' } })) ?? undefined,
        { what: "B's delivery while A's receivers hang" },
      );
      expect(delivered.attempts).toBe(1);
      expect(fast.received).toEqual(['/b']);

      expect(hanging.mostAtOnce).toBe(2);
      expect(Math.max(...hanging.most.values())).toBe(1);
      // Waiting for a slot is not an attempt: none of A's deliveries has used one yet (two are still in flight).
      const aRows = await owner.webhookDelivery.findMany({ where: { endpointId: { in: aEndpoints } } });
      expect(aRows).toHaveLength(12);
      expect(aRows.map((r) => r.attempts)).toEqual(Array(12).fill(0));
    } finally {
      // A's deliveries end FAILED `endpoint disabled` without being sent; the two in flight fail when their sockets close.
      await owner.webhookEndpoint.updateMany({ where: { tenantId: a }, data: { enabled: false } });
      await hanging.close();
      await fast.close();
    }
  }, 30_000);

  it('takes the status of the answer and never reads its body: 200 and an endless body is delivered at once', async () => {
    const endless = new Receiver((_req, res) => {
      res.writeHead(200, { 'content-type': 'application/octet-stream' });
      const chunk = Buffer.alloc(64 * 1024, 0x61);
      const pump = () => {
        while (!res.destroyed && res.write(chunk));
        if (!res.destroyed) res.once('drain', pump);
      };
      pump();
    });
    const url = await endless.listen();
    const t = await tenant();
    try {
      const id = await endpoint(t, `${url}/endless`);
      const eventId = await event(t);
      // Before, the body was read (and dropped) until WEBHOOK_TIMEOUT_MS, and the attempt failed `no HTTP response`.
      const row = await waitFor(async () => (await owner.webhookDelivery.findFirst({ where: { endpointId: id, eventId, status: 'DELIVERED' } })) ?? undefined, {
        what: 'the delivery to an endless body',
      });
      expect(row).toMatchObject({ attempts: 1, lastStatusCode: 200, lastError: null });
      await waitFor(() => endless.openNow === 0, { what: 'the connection closed by the worker' });
    } finally {
      await endless.close();
    }
  }, 30_000);

  it('does not send a delivery of an event type its endpoint no longer takes (changed after the fan-out)', async () => {
    const receiver = new Receiver((_req, res) => res.writeHead(204).end());
    const url = await receiver.listen();
    const t = await tenant();
    try {
      const id = await endpoint(t, `${url}/narrowed`, ['operation.completed', 'terminal.online']);
      const deliveryId = await delivery(t, id, { type: 'terminal.online' });
      await owner.webhookEndpoint.update({ where: { id }, data: { eventTypes: ['operation.completed'] } });
      const step = await app.get(WebhookDeliveryService).attempt({ tenantId: t, deliveryId });
      expect(step).toEqual({ kind: 'failed', attempts: 0, error: 'endpoint no longer subscribes to this event type' });
      expect(await owner.webhookDelivery.findUniqueOrThrow({ where: { id: deliveryId } })).toMatchObject({
        status: 'FAILED',
        lastError: 'endpoint no longer subscribes to this event type',
      });
      expect(receiver.received).toEqual([]);
    } finally {
      await receiver.close();
    }
  });

  describe('an endpoint failing for WEBHOOK_DISABLE_AFTER_MS (default 1 day) is disabled', () => {
    let failing: Receiver;
    let url: string;
    const service = () => app.get(WebhookDeliveryService);
    const DAY = 24 * 60 * 60_000;

    beforeAll(async () => {
      failing = new Receiver((_req, res) => res.writeHead(503).end());
      url = await failing.listen();
    });
    afterAll(() => failing.close());

    /** An endpoint last changed 3 days ago, with a delivery created 2 days ago at its last attempt, and another pending. */
    async function failingEndpoint() {
      const t = await tenant();
      const id = await endpoint(t, `${url}/failing`);
      await owner.$executeRaw`UPDATE "WebhookEndpoint" SET "createdAt" = now() - interval '3 days', "updatedAt" = now() - interval '3 days' WHERE "id" = ${id}::uuid`;
      const last = await delivery(t, id, { attempts: config.WEBHOOK_ATTEMPTS - 1, createdAt: new Date(Date.now() - 2 * DAY) });
      const pending = await delivery(t, id);
      return { tenantId: t, id, last, pending };
    }

    it('when a delivery fails for good and nothing was delivered to the endpoint since it was created: enabled false, an audit row, no more sending', async () => {
      const { tenantId, id, last, pending } = await failingEndpoint();
      const before = failing.received.length;
      expect(await service().attempt({ tenantId, deliveryId: last })).toMatchObject({ kind: 'failed', attempts: config.WEBHOOK_ATTEMPTS, error: 'HTTP 503' });
      expect(failing.received.length).toBe(before + 1);
      expect(await owner.webhookEndpoint.findUniqueOrThrow({ where: { id } })).toMatchObject({ enabled: false });
      const audit = await owner.auditLog.findMany({ where: { tenantId, resourceId: id } });
      expect(audit).toEqual([
        expect.objectContaining({
          action: 'webhook.auto_disable',
          actorType: 'system',
          resourceType: 'webhook_endpoint',
          details: expect.objectContaining({ deliveryId: last, attempts: config.WEBHOOK_ATTEMPTS }),
        }),
      ]);
      // Its other deliveries end without being sent.
      expect(await service().attempt({ tenantId, deliveryId: pending })).toEqual({ kind: 'failed', attempts: 0, error: 'endpoint disabled' });
      expect(failing.received.length).toBe(before + 1);
    });

    it('not when something was delivered to it since, nor when it was changed since, nor when the failed delivery is younger', async () => {
      const delivered = await failingEndpoint();
      const ok = await delivery(delivered.tenantId, delivered.id);
      await owner.webhookDelivery.update({ where: { id: ok }, data: { status: 'DELIVERED', deliveredAt: new Date(Date.now() - DAY) } });
      const changed = await failingEndpoint();
      await owner.$executeRaw`UPDATE "WebhookEndpoint" SET "updatedAt" = now() - interval '1 day' WHERE "id" = ${changed.id}::uuid`;
      const young = await failingEndpoint();
      await owner.webhookDelivery.update({ where: { id: young.last }, data: { createdAt: new Date(Date.now() - DAY / 2) } });
      for (const { tenantId, id, last } of [delivered, changed, young]) {
        expect(await service().attempt({ tenantId, deliveryId: last })).toMatchObject({ kind: 'failed', error: 'HTTP 503' });
        expect(await owner.webhookEndpoint.findUniqueOrThrow({ where: { id } })).toMatchObject({ enabled: true });
        expect(await owner.auditLog.count({ where: { tenantId } })).toBe(0);
      }
    });
  });
});
