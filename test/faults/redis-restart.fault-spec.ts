import { randomBytes } from 'node:crypto';
import type { AddressInfo } from 'node:net';

import type { INestApplication } from '@nestjs/common';
import { Queue } from 'bullmq';
import { Redis } from 'ioredis';

import { busKeys, RedisTerminalCommandDispatcher } from '@payorch/command-bus';
import { connectorConfigSchema, loadConfig, workerConfigSchema } from '@payorch/config';
import { createPrismaClient, type PrismaClient } from '@payorch/db';
import { QUEUES } from '@payorch/domain';
import { createLogger } from '@payorch/logging';
import { bullPrefix } from '@payorch/redis';
import { schedulerIdOf } from '@payorch/settlement';
import { createTestDatabase, OwnedRedis, type TestDatabase, waitFor } from '@payorch/testing';

import { createConnectorApp } from '../../apps/device-connector/src/bootstrap';
import { createWorkerApp } from '../../apps/settlement-worker/src/bootstrap';
import { ownSchedulers } from '../../apps/settlement-worker/src/schedules/own-schedulers';

const silent = createLogger({ name: 'test', level: 'silent' });
const PREFIX = 'fault';
const AGENT = '33333333-3333-4333-8333-333333333333';

const ready = async (url: string) => {
  const res = await fetch(`${url}/health/ready`);
  return { status: res.status, body: (await res.json()) as { status: string; checks: Record<string, { ok: boolean; reason?: string }> } };
};

/**
 * Issue 15: Redis (cache and bus, no persistence) is SIGKILLed and restarted empty under a running
 * connector and worker. Nothing is restarted but Redis: the apps must report it and heal themselves.
 */
describe('Redis restart (owned redis-server, SIGKILL, empty on restart)', () => {
  jest.setTimeout(60_000);
  const server = new OwnedRedis();
  let testDb: TestDatabase;
  let owner: PrismaClient;
  let worker: INestApplication;
  let connector: INestApplication;
  let workerUrl: string;
  let connectorUrl: string;
  let probe: Redis;
  let dispatcherRedis: Redis;
  let dispatcher: RedisTerminalCommandDispatcher;
  let scheduleId: string;
  const measured: Record<string, number> = {};

  beforeAll(async () => {
    await server.start();
    testDb = await createTestDatabase();
    owner = createPrismaClient(testDb.adminUrl, { max: 2 });
    const tenantId = (await owner.tenant.create({ data: { name: 'Fault' } })).id;
    const storeId = (await owner.store.create({ data: { tenantId, name: 'Berlin', timeZone: 'Europe/Berlin' } })).id;
    scheduleId = (await owner.settlementSchedule.create({ data: { tenantId, storeId, localTime: '23:30' } })).id;
    const common = {
      DATABASE_APP_URL: testDb.appUrl,
      REDIS_URL: server.url,
      REDIS_KEY_PREFIX: PREFIX,
      LOG_LEVEL: 'silent',
      PAYORCH_MASTER_KEY: `k1:${randomBytes(32).toString('base64')}`,
    };
    // The periodic reconcile is set far out: what brings the schedulers back here is the reconnect.
    worker = await createWorkerApp(loadConfig('settlement-worker', workerConfigSchema, { ...common, SCHEDULE_RECONCILE_INTERVAL_MS: '600000' }), silent);
    await worker.listen(0, '127.0.0.1');
    workerUrl = `http://127.0.0.1:${(worker.getHttpServer().address() as AddressInfo).port}`;
    connector = await createConnectorApp(loadConfig('device-connector', connectorConfigSchema, { ...common, CONNECTOR_INSTANCE_ID: 'c1' }), silent, {
      driverFactory: null,
      operationHandler: null,
    });
    await connector.listen(0, '127.0.0.1');
    connectorUrl = `http://127.0.0.1:${(connector.getHttpServer().address() as AddressInfo).port}`;
    probe = new Redis(server.url, { maxRetriesPerRequest: 1, retryStrategy: () => 50 });
    probe.on('error', () => undefined);
    dispatcherRedis = new Redis(server.url, { maxRetriesPerRequest: 1 });
    dispatcherRedis.on('error', () => undefined);
    dispatcher = new RedisTerminalCommandDispatcher({ redis: dispatcherRedis, prefix: PREFIX, resolveAgent: async () => ({ agentId: AGENT }), blockMs: 200 });
  });

  afterAll(async () => {
    await dispatcher?.close();
    probe?.disconnect();
    dispatcherRedis?.disconnect();
    await connector?.close();
    await worker?.close();
    await server.stop();
    await owner?.$disconnect();
    await testDb?.drop();
    process.stdout.write(`redis-restart measured (ms from redis-server accepting again): ${JSON.stringify(measured)}\n`);
  });

  /** A command the connector itself answers: its router replies "not connected to this instance". */
  const roundTrip = async () => {
    await probe.set(busKeys(PREFIX).agentOwner(AGENT), 'c1', 'PX', 30_000);
    const reply = await dispatcher.dispatch(
      { kind: 'terminal.refresh_info', tenantId: '11111111-1111-4111-8111-111111111111', terminalId: '22222222-2222-4222-8222-222222222222' },
      { timeoutMs: 2000 },
    );
    return reply.ok === false && reply.code === 'TERMINAL_OFFLINE' && /this connector instance/.test(reply.message ?? '') ? reply : undefined;
  };

  it('is ready before the fault, with every worker scheduler in place', async () => {
    expect((await ready(connectorUrl)).status).toBe(200);
    await waitFor(async () => (await ready(workerUrl)).status === 200, { timeoutMs: 10_000, intervalMs: 50, what: 'worker ready', ignoreErrors: true });
    expect(await roundTrip()).toBeDefined();
    const queue = new Queue(QUEUES.settlement, { connection: { url: server.url }, prefix: bullPrefix(PREFIX) });
    expect(await queue.getJobScheduler(schedulerIdOf(scheduleId))).toMatchObject({ pattern: '30 23 * * *', tz: 'Europe/Berlin' });
    await queue.close();
  });

  it('reports not ready with a reason while Redis is down, and recovers by itself when it is back', async () => {
    await server.kill();
    const down = await waitFor(
      async () => {
        const r = await ready(connectorUrl);
        return r.status === 503 ? r : undefined;
      },
      { timeoutMs: 10_000, intervalMs: 50, what: 'connector 503', ignoreErrors: true },
    );
    expect(down.body.status).toBe('not_ready');
    expect(down.body.checks.redis).toMatchObject({ ok: false, reason: expect.stringMatching(/redis connection|timed out|ECONNREFUSED|closed/i) });
    const workerDown = await waitFor(
      async () => {
        const r = await ready(workerUrl);
        return r.status === 503 ? r : undefined;
      },
      { timeoutMs: 10_000, intervalMs: 50, what: 'worker 503', ignoreErrors: true },
    );
    expect(workerDown.body.checks.redis).toMatchObject({ ok: false, reason: expect.any(String) });
    expect(workerDown.body.checks.database).toEqual({ ok: true });
    expect(await (await fetch(`${connectorUrl}/health/live`)).status).toBe(200);
    expect(await (await fetch(`${workerUrl}/health/live`)).status).toBe(200);

    await server.start();
    const back = Date.now();
    expect(await probe.exists(busKeys(PREFIX).requests('c1'))).toBe(0); // Redis came back empty

    // The command bus: a command dispatched once Redis answers is executed and answered within 5 s.
    await waitFor(roundTrip, { timeoutMs: 5000, intervalMs: 50, what: 'command answered by the connector', ignoreErrors: true });
    measured.commandBus = Date.now() - back;
    expect(measured.commandBus).toBeLessThan(5000);
    await waitFor(async () => (await ready(connectorUrl)).status === 200, { timeoutMs: 10_000, intervalMs: 50, what: 'connector ready', ignoreErrors: true });
    measured.connectorReady = Date.now() - back;

    // The worker: its schedulers are back (reconnect-triggered reconcile), without a worker restart.
    const queue = new Queue(QUEUES.settlement, { connection: { url: server.url }, prefix: bullPrefix(PREFIX) });
    await waitFor(() => queue.getJobScheduler(schedulerIdOf(scheduleId)), {
      timeoutMs: 10_000,
      intervalMs: 50,
      what: 'settlement schedule reconciled from PostgreSQL',
      ignoreErrors: true,
    });
    measured.schedulersReconciled = Date.now() - back;
    const queues = new Map<string, Queue>();
    for (const s of ownSchedulers(
      loadConfig('settlement-worker', workerConfigSchema, {
        DATABASE_APP_URL: testDb.appUrl,
        REDIS_URL: server.url,
        PAYORCH_MASTER_KEY: `k1:${randomBytes(32).toString('base64')}`,
      }),
    )) {
      if (!queues.has(s.queue)) queues.set(s.queue, new Queue(s.queue, { connection: { url: server.url }, prefix: bullPrefix(PREFIX) }));
      await waitFor(() => queues.get(s.queue)!.getJobScheduler(s.id), { timeoutMs: 10_000, intervalMs: 50, what: `scheduler ${s.id}`, ignoreErrors: true });
    }
    await waitFor(async () => (await ready(workerUrl)).status === 200, { timeoutMs: 10_000, intervalMs: 50, what: 'worker ready', ignoreErrors: true });
    measured.workerReady = Date.now() - back;
    const metrics = await (await fetch(`${workerUrl}/metrics`)).text();
    expect(metrics).toContain('payorch_ready{check="redis",service="settlement-worker"} 1');
    const connectorMetrics = await (await fetch(`${connectorUrl}/metrics`)).text();
    expect(connectorMetrics).toMatch(/payorch_command_bus_lag\{service="device-connector"\} 0/);
    await queue.close();
    for (const q of queues.values()) await q.close();
  });
});
