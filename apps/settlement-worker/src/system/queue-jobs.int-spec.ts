import type { INestApplication } from '@nestjs/common';
import { type Job, Queue, Worker } from 'bullmq';
import { Redis } from 'ioredis';
import { Registry } from 'prom-client';
import request from 'supertest';

import type { WorkerConfig } from '@payorch/config';
import { QUEUES } from '@payorch/domain';
import { createLogger } from '@payorch/logging';
import { bullPrefix } from '@payorch/redis';
import {
  createTestDatabase,
  deleteRedisPrefix,
  nextEvent,
  OwnedRedis,
  type TestDatabase,
  testRedisPrefix,
  testRedisUrl,
  waitFor,
  withTimeout,
} from '@payorch/testing';

import { createWorkerApp } from '../bootstrap';
import { bullConnection } from '../redis-connection';
import { testQueueOptions, testWorkerConfig } from '../testing/worker-config.testing';
import { QUEUE_JOB_STATES } from '../worker-metrics';
import { readQueueJobs, watchQueueJobs } from './queue-jobs';

/** A scrape waits this long for a read in flight (QUEUE_JOBS_WAIT_MS in the app). */
const WAIT_MS = 500;
const TTL_MS = 5_000;

/** The value of `payorch_queue_jobs{queue,state}` (or of another sample starting with `name{labels`) in Prometheus text. */
function sample(text: string, name: string, labels: string): number | undefined {
  const line = text.split('\n').find((l) => l.startsWith(`${name}{${labels}`));
  return line === undefined ? undefined : Number(line.slice(line.lastIndexOf(' ') + 1));
}
const jobs = (text: string, queue: string, state: string) => sample(text, 'payorch_queue_jobs', `queue="${queue}",state="${state}"`);

describe('payorch_queue_jobs: jobs per queue and state, read from Redis when /metrics is scraped', () => {
  const probe = new Redis(testRedisUrl());
  const prefix = testRedisPrefix('queue-jobs');
  const opened: Array<{ close(): Promise<void> }> = [];

  function queue(name: string): Queue {
    const q = new Queue(name, { connection: bullConnection(testRedisUrl()), prefix: bullPrefix(prefix) });
    opened.push(q);
    return q;
  }

  afterAll(async () => {
    for (const q of opened.reverse()) await q.close();
    await deleteRedisPrefix(probe, prefix);
    await probe.quit();
  });

  it('counts every state of every queue, a job that used up its attempts in `failed`', async () => {
    const webhooks = queue(QUEUES.webhooks);
    const system = queue(QUEUES.system);
    const worker = new Worker(
      QUEUES.webhooks,
      async () => {
        throw new Error('endpoint exploded');
      },
      { connection: bullConnection(testRedisUrl()), prefix: bullPrefix(prefix) },
    );
    opened.push(worker);
    const failed = nextEvent<[Job]>(worker, 'failed', { timeoutMs: 10_000, what: 'the job to fail' });
    await webhooks.add('webhook.deliver', { tenantId: 't', deliveryId: 'd' }, { attempts: 1 });
    await failed;
    await worker.close();
    await system.add('system.ping', { requestedAt: '', requestId: 'r' });
    await system.add('system.ping', { requestedAt: '', requestId: 'r' }, { delay: 3_600_000 });

    const registry = new Registry();
    watchQueueJobs(registry, () => readQueueJobs([webhooks, system]), { ttlMs: TTL_MS, waitMs: WAIT_MS });
    const text = await registry.metrics();
    expect(text).toContain('# TYPE payorch_queue_jobs gauge');
    const expected: Record<string, Partial<Record<string, number>>> = { webhooks: { failed: 1 }, system: { waiting: 1, delayed: 1 } };
    for (const [name, counts] of Object.entries(expected)) {
      for (const state of QUEUE_JOB_STATES) expect([name, state, jobs(text, name, state)]).toEqual([name, state, counts[state] ?? 0]);
    }
    expect(text).not.toContain('payorch_queue_jobs_read_failures_total{');
  });

  it('answers within the bound when Redis does not, keeps the last values and counts the failure', async () => {
    const redis = await new OwnedRedis().start();
    // Like the worker's `bull` connection: no per-request retry cap, so a command waits for Redis to come back.
    const settlement = new Queue(QUEUES.settlement, {
      connection: { host: '127.0.0.1', port: redis.port, maxRetriesPerRequest: null },
      prefix: bullPrefix(prefix),
    });
    settlement.on('error', () => undefined); // ECONNREFUSED while Redis is away
    let clock = 0;
    const registry = new Registry();
    watchQueueJobs(registry, () => readQueueJobs([settlement]), { ttlMs: TTL_MS, waitMs: WAIT_MS, now: () => clock });
    try {
      await settlement.add('settlement.sweep', {});
      expect(jobs(await registry.metrics(), QUEUES.settlement, 'waiting')).toBe(1);

      await redis.kill();
      clock = TTL_MS;
      let text = await withTimeout(registry.metrics(), { timeoutMs: WAIT_MS + 2_000, what: 'a scrape while Redis is away' });
      expect(jobs(text, QUEUES.settlement, 'waiting')).toBe(1);
      expect(sample(text, 'payorch_queue_jobs_read_failures_total', 'reason="timeout"')).toBe(1);
      // The same read is still waiting for Redis: no second one, the failure counted once.
      clock = 2 * TTL_MS;
      text = await withTimeout(registry.metrics(), { timeoutMs: WAIT_MS + 2_000, what: 'a second scrape while Redis is away' });
      expect(sample(text, 'payorch_queue_jobs_read_failures_total', 'reason="timeout"')).toBe(1);

      // Back, empty (a cache-only Redis restarted): the waiting read lands, the next one shows the loss.
      await redis.start();
      clock = 3 * TTL_MS;
      await waitFor(async () => jobs(await registry.metrics(), QUEUES.settlement, 'waiting') === 0, {
        timeoutMs: 15_000,
        what: 'the counts after Redis came back',
      });
    } finally {
      // Closing waits for the commands in flight: Redis has to be there.
      if (!redis.running) await redis.start();
      await settlement.close();
      await redis.stop();
    }
  }, 30_000);

  describe('in the worker', () => {
    let testDb: TestDatabase;
    let config: WorkerConfig;
    let app: INestApplication | undefined;

    beforeAll(async () => {
      testDb = await createTestDatabase();
      config = testWorkerConfig(testDb.appUrl, 'queue-jobs-app');
    }, 60_000);

    afterAll(async () => {
      await app?.close();
      await deleteRedisPrefix(probe, config.REDIS_KEY_PREFIX);
      await testDb?.drop();
    });

    it('reports every queue of QUEUES on /metrics, through the queues of the app', async () => {
      app = await createWorkerApp(config, createLogger({ name: 'test', level: 'silent' }));
      await app.init();
      // A job the system processor has no handler for fails at once (UnrecoverableError).
      const system = new Queue(QUEUES.system, testQueueOptions(config));
      opened.push(system);
      await system.add('system.unknown', {});
      await waitFor(async () => (await system.getFailedCount()) === 1, { what: 'the unknown job in the failed set' });

      const text = (await request(app.getHttpServer()).get('/metrics')).text;
      expect(jobs(text, QUEUES.system, 'failed')).toBe(1);
      for (const name of Object.values(QUEUES)) {
        for (const state of QUEUE_JOB_STATES) expect([name, state, typeof jobs(text, name, state)]).toEqual([name, state, 'number']);
      }
      expect(text).toContain('# TYPE payorch_queue_jobs_read_failures_total counter');
    });
  });
});
