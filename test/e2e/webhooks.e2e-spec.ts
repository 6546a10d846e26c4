import { createHmac, timingSafeEqual } from 'node:crypto';
import { createServer, type IncomingHttpHeaders, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';

import type { INestApplication } from '@nestjs/common';
import { Redis } from 'ioredis';

import { createWorkerApp } from '../../apps/settlement-worker/src/bootstrap';
import { loadConfig, workerConfigSchema } from '@payorch/config';
import { publishEvent } from '@payorch/db';
import { SecretBox } from '@payorch/domain';
import { createLogger } from '@payorch/logging';
import { notifyCommitted, redisEventSink, webhooksChangedChannel } from '@payorch/operations';
import { bullPrefix } from '@payorch/redis';
import { waitFor } from '@payorch/testing';
import { JoinprotoTerminalSimulator } from '@payorch/testing/joinproto-sim';

import { GatewaySession, idem } from './support/gateway-session';
import { InProcessDispatcher } from './support/in-process-dispatcher';

/** The receiver recipe of docs/webhooks.md, written independently of the signer. */
function verifyPayorchSignature(secret: string, header: string | undefined, rawBody: string, toleranceSeconds = 300, now = Date.now()): boolean {
  if (!header) return false;
  const parts = Object.fromEntries(header.split(',').map((p) => p.split('=', 2) as [string, string]));
  const t = Number(parts.t);
  if (!Number.isInteger(t) || !parts.v1) return false;
  if (Math.abs(now / 1000 - t) > toleranceSeconds) return false;
  const expected = createHmac('sha256', secret).update(`${t}.${rawBody}`).digest();
  const given = Buffer.from(parts.v1, 'hex');
  return given.length === expected.length && timingSafeEqual(given, expected);
}

interface Received {
  path: string;
  headers: IncomingHttpHeaders;
  body: string;
}

describe('webhooks (gateway CRUD, worker fan-out + signed delivery with retries)', () => {
  const session = new GatewaySession();
  let dispatcher: InProcessDispatcher;
  let worker: INestApplication;
  let publisher: Redis;
  let receiver: Server;
  let baseUrl: string;
  const received: Received[] = [];
  /** Per path: how many times to answer 500 before 200 (Infinity = always). */
  const failFirst = new Map<string, number>();
  let auth: { Authorization: string };
  let authB: { Authorization: string };
  let tenantId: string;
  let tenantB: string;
  let terminalId: string;
  let sim: JoinprotoTerminalSimulator;

  beforeAll(async () => {
    session.dispatcherFactory = (appUrl) =>
      (dispatcher = new InProcessDispatcher(appUrl, (events) => redisEventSink(publisher, session.config.REDIS_KEY_PREFIX)(events)));
    await session.start({ WEBHOOK_ALLOW_HTTP: 'true' });
    publisher = new Redis(session.config.REDIS_URL);
    const a = await session.tenant();
    tenantId = a.tenantId;
    auth = { Authorization: `Bearer ${a.apiKey}` };
    const b = await session.tenant();
    tenantB = b.tenantId;
    authB = { Authorization: `Bearer ${b.apiKey}` };

    receiver = createServer((req, res) => {
      let body = '';
      req.setEncoding('utf8');
      req.on('data', (c: string) => (body += c));
      req.on('end', () => {
        const path = req.url ?? '/';
        received.push({ path, headers: req.headers, body });
        const left = failFirst.get(path) ?? 0;
        if (left > 0) {
          failFirst.set(path, left - 1);
          res.statusCode = 500;
          return res.end('boom');
        }
        res.statusCode = 204;
        res.end();
      });
    });
    await new Promise<void>((resolve) => receiver.listen(0, '127.0.0.1', resolve));
    baseUrl = `http://127.0.0.1:${(receiver.address() as AddressInfo).port}`;

    const config = loadConfig('settlement-worker', workerConfigSchema, {
      DATABASE_APP_URL: session.testDb.appUrl,
      REDIS_URL: session.config.REDIS_URL,
      REDIS_KEY_PREFIX: session.config.REDIS_KEY_PREFIX,
      LOG_LEVEL: 'silent',
      PAYORCH_MASTER_KEY: session.config.PAYORCH_MASTER_KEY,
      WEBHOOK_ALLOW_HTTP: 'true',
      EGRESS_ALLOW_CIDRS: '127.0.0.0/8',
      WEBHOOK_ATTEMPTS: '3',
      WEBHOOK_BACKOFF_BASE_MS: '150',
      WEBHOOK_BACKOFF_MAX_MS: '400',
      WEBHOOK_SWEEP_INTERVAL_MS: '600000',
      RECOVERY_INTERVAL_MS: '600000',
      SETTLEMENT_SYNC_INTERVAL_MS: '600000',
      WALLET_SWEEP_INTERVAL_MS: '600000',
    });
    worker = await createWorkerApp(config, createLogger({ name: 'test', level: 'silent' }));
    await worker.init();

    const storeId = (await session.http().post('/v1/stores').set(auth).set('Idempotency-Key', idem()).send({ name: 'S', timeZone: 'UTC' })).body.id;
    terminalId = (
      await session
        .http()
        .post('/v1/terminals')
        .set(auth)
        .set('Idempotency-Key', idem())
        .send({ name: 'T', storeId, protocol: 'joinproto', connection: { kind: 'tcp', host: '127.0.0.1', port: 1 } })
    ).body.id;
    sim = new JoinprotoTerminalSimulator({ cardTimeoutMs: 30 });
    dispatcher.route(terminalId, { port: (await sim.listen(0)).port });
  });

  afterAll(async () => {
    await worker.close();
    await dispatcher.close();
    await sim.close();
    await new Promise((resolve) => receiver.close(resolve));
    await publisher.quit();
    await session.stop();
  });

  const create = (body: object, headers = auth) => session.http().post('/v1/webhooks').set(headers).set('Idempotency-Key', idem()).send(body);
  const deliveries = (id: string, headers = auth) => session.http().get(`/v1/webhooks/${id}/deliveries`).set(headers);
  const receivedAt = (path: string) => received.filter((r) => r.path === path);
  let probeHook: string | undefined;
  /**
   * Sends an unrelated event through the live path (pub/sub → fan-out → signed delivery) and waits until
   * the receiver has it: what the worker would have delivered on its own before it has been handled by then.
   */
  async function probeDelivered(): Promise<void> {
    probeHook ??= (await create({ url: `${baseUrl}/probe`, eventTypes: ['agent.offline'] })).body.id as string;
    const event = await session.appDb.withTenant(tenantId, (tx) =>
      publishEvent(tx, tenantId, { type: 'agent.offline', subjectType: 'agent', subjectId: null, data: { probe: true } }),
    );
    await session.appDb.eventsSettled(); // numbered first, as onCommitted would be
    await notifyCommitted(publisher, session.config.REDIS_KEY_PREFIX, [event]);
    await waitFor(() => receivedAt('/probe').some((r) => r.headers['payorch-event-id'] === event.id), { what: 'the probe event delivered' });
  }

  it('validates the URL and the event types (this operator allows http and loopback; test/security has the strict defaults)', async () => {
    const plain = await create({ url: 'ftp://example.com/hook', eventTypes: ['*'] });
    expect(plain.status).toBe(400);
    expect(plain.body.error.details.issues).toEqual([{ field: 'url', message: 'must be an https URL' }]);
    const badType = await create({ url: 'https://example.com/hook', eventTypes: ['operation.exploded'] });
    expect(badType.status).toBe(400);
    expect(badType.body.error.details.issues[0].field).toBe('eventTypes.0');
    expect((await create({ url: 'https://user:pw@example.com/', eventTypes: ['*'] })).status).toBe(400);
    expect((await create({ url: 'http://localhost:9/hook', eventTypes: ['*'] })).status).toBe(201);
  });

  it("announces every change of a tenant's endpoints to the workers' fan-out listeners before answering (issue 19)", async () => {
    const listener = new Redis(session.config.REDIS_URL);
    const heard: string[] = [];
    try {
      listener.on('message', (_channel: string, message: string) => heard.push(message));
      await listener.subscribe(webhooksChangedChannel(session.config.REDIS_KEY_PREFIX));
      const created = await create({ url: 'http://localhost:9/announced', eventTypes: ['terminal.online'] });
      expect(created.status).toBe(201);
      await waitFor(() => heard.length === 1 || undefined, { timeoutMs: 2_000, intervalMs: 10, what: 'the create announced' });
      const path = `/v1/webhooks/${created.body.id}`;
      expect((await session.http().patch(path).set(auth).set('Idempotency-Key', idem()).send({ enabled: false })).status).toBe(200);
      expect((await session.http().delete(path).set(auth).set('Idempotency-Key', idem())).status).toBe(204);
      await waitFor(() => heard.length === 3 || undefined, { timeoutMs: 2_000, intervalMs: 10, what: 'the update and the delete announced' });
      expect(heard).toEqual([tenantId, tenantId, tenantId]);
    } finally {
      listener.disconnect();
    }
  });

  it('shows the secret once and stores it only sealed (SecretBox, AAD bound to tenant + endpoint)', async () => {
    const res = await create({ url: 'https://example.com/hook', eventTypes: ['operation.completed'], description: 'pos' });
    expect(res.status).toBe(201);
    expect(res.body.secret).toMatch(/^whsec_[A-Za-z0-9_-]{43}$/);
    const got = await session.http().get(`/v1/webhooks/${res.body.id}`).set(auth);
    expect(got.status).toBe(200);
    expect(got.body).not.toHaveProperty('secret');
    expect(JSON.stringify((await session.http().get('/v1/webhooks').set(auth)).body)).not.toContain(res.body.secret);
    const row = await session.owner.webhookEndpoint.findUniqueOrThrow({ where: { id: res.body.id } });
    expect(row.secretEncrypted).not.toContain(res.body.secret);
    expect(row.secretEncrypted).not.toContain(res.body.secret.slice(6));
    const box = SecretBox.fromConfig(session.config.PAYORCH_MASTER_KEY);
    expect(box.decrypt(row.secretEncrypted, `webhook-endpoint:${tenantId}:${res.body.id}`)).toBe(res.body.secret);
    expect(() => box.decrypt(row.secretEncrypted, `webhook-endpoint:${tenantB}:${res.body.id}`)).toThrow();

    const rotated = await session.http().post(`/v1/webhooks/${res.body.id}/rotate-secret`).set(auth).set('Idempotency-Key', idem()).send();
    expect(rotated.status).toBe(200);
    expect(rotated.body.secret).toMatch(/^whsec_/);
    expect(rotated.body.secret).not.toBe(res.body.secret);
    const audits = await session.owner.auditLog.findMany({ where: { resourceId: res.body.id }, orderBy: { createdAt: 'asc' } });
    expect(audits.map((a) => a.action)).toEqual(['webhook.create', 'webhook.rotate_secret']);
    expect(JSON.stringify(audits)).not.toContain('whsec_');
    // Tests dial loopback only: this public endpoint must not receive the operations paid later in this file.
    expect((await session.http().patch(`/v1/webhooks/${res.body.id}`).set(auth).set('Idempotency-Key', idem()).send({ enabled: false })).status).toBe(200);
  });

  it('delivers a signed operation event; a 500 is retried with backoff, then delivered; the receiver verifies the signature', async () => {
    const hook = await create({ url: `${baseUrl}/retry`, eventTypes: ['operation.completed'] });
    failFirst.set('/retry', 1);
    const paid = await session
      .http()
      .post(`/v1/terminals/${terminalId}/operations?wait=5000`)
      .set(auth)
      .set('Idempotency-Key', idem())
      .send({ type: 'purchase', amount: 1500, currency: 'RUB' });
    expect(paid.body.state).toBe('approved');

    const [first, second] = await waitFor(async () => (receivedAt('/retry').length >= 2 ? receivedAt('/retry') : undefined), {
      intervalMs: 25,
      what: 'a retried delivery',
    });
    for (const r of [first!, second!]) {
      expect(verifyPayorchSignature(hook.body.secret, r.headers['payorch-signature'] as string, r.body)).toBe(true);
      expect(verifyPayorchSignature('whsec_wrong', r.headers['payorch-signature'] as string, r.body)).toBe(false);
      expect(verifyPayorchSignature(hook.body.secret, r.headers['payorch-signature'] as string, r.body, 300, Date.now() + 301_000)).toBe(false);
    }
    const body = JSON.parse(second!.body);
    expect(Object.keys(body).sort()).toEqual(['createdAt', 'data', 'id', 'tenantId', 'type']);
    expect(body).toMatchObject({ type: 'operation.completed', tenantId, data: { operationId: paid.body.id, state: 'approved', amount: 1500 } });
    expect(second!.headers['payorch-event-id']).toBe(body.id);
    expect(second!.headers['content-type']).toBe('application/json');

    const log = await waitFor(
      async () => {
        const res = await deliveries(hook.body.id);
        return res.body.data[0]?.status === 'delivered' ? res.body : undefined;
      },
      { intervalMs: 25, what: 'the delivery log to say delivered' },
    );
    expect(log.data).toHaveLength(1);
    expect(log.data[0]).toMatchObject({
      eventId: body.id,
      eventType: 'operation.completed',
      attempts: 2,
      lastStatusCode: 204,
      status: 'delivered',
      nextAttemptAt: null,
    });
  });

  it('marks a delivery FAILED after the last attempt, and redelivers it on request', async () => {
    const hook = await create({ url: `${baseUrl}/down`, eventTypes: ['*'] });
    failFirst.set('/down', Infinity);
    const event = await session.appDb.withTenant(tenantId, (tx) =>
      publishEvent(tx, tenantId, { type: 'terminal.online', subjectType: 'terminal', subjectId: terminalId, data: { terminalId } }),
    );
    await session.appDb.eventsSettled(); // numbered first, as onCommitted would be
    await notifyCommitted(publisher, session.config.REDIS_KEY_PREFIX, [event]);
    const failed = await waitFor(
      async () => {
        const res = await deliveries(hook.body.id);
        const d = res.body.data.find((x: { eventId: string }) => x.eventId === event.id);
        return d?.status === 'failed' ? d : undefined;
      },
      { intervalMs: 25, what: 'the delivery to fail' },
    );
    expect(failed).toMatchObject({ attempts: 3, lastStatusCode: 500, lastError: 'HTTP 500', nextAttemptAt: null });
    expect(receivedAt('/down').filter((r) => r.headers['payorch-event-id'] === event.id)).toHaveLength(3);

    failFirst.set('/down', 0);
    const again = await session.http().post(`/v1/webhooks/${hook.body.id}/deliveries/${failed.id}/redeliver`).set(auth).set('Idempotency-Key', idem()).send();
    expect(again.status).toBe(202);
    expect(again.body).toMatchObject({ id: failed.id, status: 'pending', attempts: 0 });
    const delivered = await waitFor(
      async () => {
        const d = (await deliveries(hook.body.id)).body.data.find((x: { id: string }) => x.id === failed.id);
        return d?.status === 'delivered' ? d : undefined;
      },
      { intervalMs: 25, what: 'the redelivery' },
    );
    expect(delivered).toMatchObject({ attempts: 1, lastStatusCode: 204 });
    const twice = await session.http().post(`/v1/webhooks/${hook.body.id}/deliveries/${failed.id}/redeliver`).set(auth).set('Idempotency-Key', idem()).send();
    expect(twice.status).toBe(202);
  });

  it('the sweep fans out an event whose producer never published it to Redis', async () => {
    const hook = await create({ url: `${baseUrl}/swept`, eventTypes: ['settlement.completed'] });
    const event = await session.appDb.withTenant(tenantId, (tx) =>
      publishEvent(tx, tenantId, { type: 'settlement.completed', subjectType: 'settlement', subjectId: null, data: { total: 1 } }),
    );
    // A later event that did go through pub/sub arrives; this one, never published, has no delivery.
    await probeDelivered();
    expect(receivedAt('/swept')).toHaveLength(0);
    expect(await session.owner.webhookDelivery.count({ where: { endpointId: hook.body.id } })).toBe(0);
    const { Queue } = await import('bullmq');
    const queue = new Queue('webhooks', { connection: { url: session.config.REDIS_URL }, prefix: bullPrefix(session.config.REDIS_KEY_PREFIX) });
    await queue.add('webhook.sweep', {});
    await waitFor(async () => (receivedAt('/swept').length === 1 ? true : undefined), { intervalMs: 25, what: 'the swept delivery' });
    expect(JSON.parse(receivedAt('/swept')[0]!.body)).toMatchObject({ id: event.id, type: 'settlement.completed' });
    // Sweeping again finds the event already fanned out: once the sweep has run and a later event has been delivered, still one delivery.
    const again = await queue.add('webhook.sweep', {});
    await waitFor(() => again.isCompleted(), { intervalMs: 25, what: 'the second sweep' });
    await probeDelivered();
    expect(receivedAt('/swept')).toHaveLength(1);
    expect((await deliveries(hook.body.id)).body.data).toHaveLength(1);
    await queue.close();
  });

  it('the sweep fans out an event whose transaction committed long after it started (commit order, not createdAt)', async () => {
    const hook = await create({ url: `${baseUrl}/late`, eventTypes: ['settlement.failed'] });
    // The endpoint has existed for an hour; the event's transaction started 10 minutes ago (createdAt = its start).
    await session.owner.webhookEndpoint.update({ where: { id: hook.body.id }, data: { createdAt: new Date(Date.now() - 60 * 60_000) } });
    let commit!: () => void;
    const gate = new Promise<void>((resolve) => (commit = resolve));
    let insertedLate!: () => void;
    const inserted = new Promise<void>((resolve) => (insertedLate = resolve));
    const late = session.appDb.withTenant(tenantId, async (tx) => {
      const row = await tx.domainEvent.create({
        data: {
          tenantId,
          type: 'settlement.failed',
          subjectType: 'settlement',
          subjectId: null,
          data: { late: true },
          createdAt: new Date(Date.now() - 10 * 60_000),
        },
      });
      insertedLate();
      await gate;
      return row;
    });
    await inserted;
    const { Queue } = await import('bullmq');
    const queue = new Queue('webhooks', { connection: { url: session.config.REDIS_URL }, prefix: bullPrefix(session.config.REDIS_KEY_PREFIX) });
    const sweep = async () => {
      const job = await queue.add('webhook.sweep', {});
      await waitFor(async () => ((await job.isCompleted()) ? true : undefined), { intervalMs: 25, what: 'the sweep' });
    };
    // A sweep passes while the event is not committed yet; the producer never publishes it to Redis.
    await sweep();
    commit();
    const event = await late;
    await sweep();
    await waitFor(async () => (receivedAt('/late').length === 1 ? true : undefined), { intervalMs: 25, what: 'the late event delivered' });
    expect(JSON.parse(receivedAt('/late')[0]!.body)).toMatchObject({ id: event.id, type: 'settlement.failed' });
    await queue.close();
  });

  it("should not read, change or see deliveries of a webhook endpoint of another tenant; B gets none of A's events", async () => {
    const hookA = await create({ url: `${baseUrl}/a-only`, eventTypes: ['*'] });
    const hookB = await create({ url: `${baseUrl}/b-only`, eventTypes: ['*'] }, authB);
    expect(hookB.status).toBe(201);
    for (const res of [
      await session.http().get(`/v1/webhooks/${hookA.body.id}`).set(authB),
      await session.http().patch(`/v1/webhooks/${hookA.body.id}`).set(authB).set('Idempotency-Key', idem()).send({ enabled: false }),
      await session.http().post(`/v1/webhooks/${hookA.body.id}/rotate-secret`).set(authB).set('Idempotency-Key', idem()).send(),
      await deliveries(hookA.body.id, authB),
      await session.http().delete(`/v1/webhooks/${hookA.body.id}`).set(authB).set('Idempotency-Key', idem()),
    ]) {
      expect(res.status).toBe(404);
      expect(res.body.error.code).toBe('NOT_FOUND');
    }
    expect((await session.http().get('/v1/webhooks').set(authB)).body.data.map((w: { id: string }) => w.id)).toEqual([hookB.body.id]);
    // RLS, not a WHERE clause: under B's tenant the row does not exist.
    expect(await session.appDb.withTenant(tenantB, (tx) => tx.webhookEndpoint.findUnique({ where: { id: hookA.body.id } }))).toBeNull();

    const event = await session.appDb.withTenant(tenantId, (tx) =>
      publishEvent(tx, tenantId, { type: 'agent.online', subjectType: 'agent', subjectId: null, data: { marker: 'A' } }),
    );
    await session.appDb.eventsSettled(); // numbered first, as onCommitted would be
    await notifyCommitted(publisher, session.config.REDIS_KEY_PREFIX, [event]);
    await waitFor(async () => (receivedAt('/a-only').some((r) => r.headers['payorch-event-id'] === event.id) ? true : undefined), {
      intervalMs: 25,
      what: "A's delivery",
    });
    // A's delivery means the event's fan-out is done: it made no delivery for B's endpoint, so none can be sent.
    expect(await session.owner.webhookDelivery.count({ where: { eventId: event.id, endpointId: hookA.body.id } })).toBe(1);
    expect(await session.owner.webhookDelivery.count({ where: { endpointId: hookB.body.id } })).toBe(0);
    expect(receivedAt('/b-only')).toHaveLength(0);
    expect((await session.http().get(`/v1/webhooks/${hookA.body.id}`).set(auth)).body.enabled).toBe(true);
  });
});
