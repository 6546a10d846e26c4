import type { INestApplication } from '@nestjs/common';
import { Queue, QueueEvents } from 'bullmq';
import { Redis } from 'ioredis';
import request from 'supertest';

import type { WorkerConfig } from '@payorch/config';
import { QUEUES } from '@payorch/domain';
import { createLogger } from '@payorch/logging';
import { createTestDatabase, deleteRedisPrefix, type TestDatabase } from '@payorch/testing';

import { createWorkerApp } from '../bootstrap';
import { SystemProcessor } from './system.processor';
import { testQueueOptions, testWorkerConfig } from '../testing/worker-config.testing';

describe('settlement-worker queue wiring (real Redis)', () => {
  let testDb: TestDatabase;
  let config: WorkerConfig;
  let app: INestApplication;
  let queue: Queue;
  let events: QueueEvents;

  beforeAll(async () => {
    testDb = await createTestDatabase();
    config = testWorkerConfig(testDb.appUrl, 'worker', { WORKER_CONCURRENCY: '3' });
    app = await createWorkerApp(config, createLogger({ name: 'test', level: 'silent' }));
    await app.listen(0, '127.0.0.1');
    const opts = testQueueOptions(config);
    queue = new Queue(QUEUES.system, opts);
    events = new QueueEvents(QUEUES.system, opts);
    await events.waitUntilReady();
  }, 60_000);

  afterAll(async () => {
    await queue?.close();
    await events?.close();
    await app?.close();
    const redis = new Redis(config.REDIS_URL);
    await deleteRedisPrefix(redis, config.REDIS_KEY_PREFIX);
    await redis.quit();
    await testDb?.drop();
  });

  it('processes a system.ping job enqueued by a producer and returns its result', async () => {
    const job = await queue.add('system.ping', { requestedAt: new Date().toISOString(), requestId: 'req-1' });
    const result = await job.waitUntilFinished(events, 10_000);
    expect(result).toMatchObject({ pong: true, requestId: 'req-1' });
    expect(Date.parse(result.ranAt)).not.toBeNaN();
  });

  it('fails an unknown job name permanently instead of retrying it', async () => {
    const job = await queue.add('system.nope', {}, { attempts: 5 });
    await expect(job.waitUntilFinished(events, 10_000)).rejects.toThrow(/no handler for job "system.nope"/);
    const failed = await queue.getJob(job.id!);
    expect(failed?.attemptsMade).toBe(1);
  });

  it('takes its concurrency from config', () => {
    expect(app.get(SystemProcessor).worker.concurrency).toBe(3);
  });

  it('reports health and job metrics', async () => {
    const res = await request(app.getHttpServer()).get('/health');
    expect(res.status).toBe(200);
    expect(res.body.checks).toEqual({ database: 'ok', schema: 'ok', redis: 'ok', workers: 'ok', schedulers: 'ok' });
    const ready = await request(app.getHttpServer()).get('/health/ready');
    expect(ready.status).toBe(200);
    expect(ready.body).toMatchObject({
      status: 'ok',
      checks: { database: { ok: true }, schema: { ok: true }, redis: { ok: true }, workers: { ok: true, workers: 6 }, schedulers: { ok: true } },
    });
    expect((await request(app.getHttpServer()).get('/health/live')).status).toBe(200);
    const metrics = await request(app.getHttpServer()).get('/metrics');
    expect(metrics.text).toContain('payorch_jobs_total{queue="system",name="system.ping",outcome="completed",service="settlement-worker"} 1');
    expect(metrics.text).toContain('payorch_ready{check="schedulers",service="settlement-worker"} 1');
  });
});
