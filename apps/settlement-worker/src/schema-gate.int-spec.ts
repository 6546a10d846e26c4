import type { INestApplication } from '@nestjs/common';
import { DiscoveryService } from '@nestjs/core';
import { Queue } from 'bullmq';
import { Client } from 'pg';
import { Redis } from 'ioredis';
import request from 'supertest';

import type { WorkerConfig } from '@payorch/config';
import { SCHEMA_MIGRATION } from '@payorch/db';
import { QUEUES } from '@payorch/domain';
import { createLogger } from '@payorch/logging';
import { createTestDatabase, deleteRedisPrefix, type TestDatabase, waitFor } from '@payorch/testing';

import { createWorkerApp } from './bootstrap';
import { testQueueOptions, testWorkerConfig } from './testing/worker-config.testing';
import { workerHosts } from './worker-hosts';

/**
 * A worker of a new build started before the migration step has applied its schema (a rolling update): it takes no job
 * and is not ready until the build's migration is applied, then takes the jobs that waited. Before, its BullMQ workers
 * started with the module and ran every job against the previous schema.
 */
describe('the worker waits for its schema', () => {
  let testDb: TestDatabase;
  let owner: Client;
  let config: WorkerConfig;
  let app: INestApplication | undefined;
  let queue: Queue;

  const workers = (nest: INestApplication) => workerHosts(nest.get(DiscoveryService));

  beforeAll(async () => {
    testDb = await createTestDatabase();
    owner = new Client({ connectionString: testDb.adminUrl });
    await owner.connect();
    config = testWorkerConfig(testDb.appUrl, 'schema-gate');
    queue = new Queue(QUEUES.system, testQueueOptions(config));
  }, 60_000);

  afterAll(async () => {
    await queue?.close();
    await app?.close();
    const redis = new Redis(config.REDIS_URL);
    await deleteRedisPrefix(redis, config.REDIS_KEY_PREFIX);
    await redis.quit();
    await owner?.end();
    await testDb?.drop();
  });

  it('takes no job and is not ready until the migration step has applied the build’s migration', async () => {
    // The build's newest migration as not yet applied, as the migration Job still running would leave it.
    await owner.query(`UPDATE "_prisma_migrations" SET "finished_at" = NULL WHERE "migration_name" = $1`, [SCHEMA_MIGRATION]);
    app = await createWorkerApp(config, createLogger({ name: 'test', level: 'silent' }));
    await app.listen(0, '127.0.0.1');
    const job = await queue.add('system.ping', { requestedAt: new Date().toISOString(), requestId: 'req-schema' });

    const ready = await request(app.getHttpServer()).get('/health/ready');
    expect(ready.status).toBe(503);
    expect(ready.body.checks.schema).toEqual({
      ok: false,
      reason: `the database schema is older than this build: migration ${SCHEMA_MIGRATION} is not applied yet (the migration step applies it)`,
    });
    expect(workers(app).filter((host) => host.worker.isRunning())).toEqual([]);
    expect(await job.getState()).toBe('waiting');

    await owner.query(`UPDATE "_prisma_migrations" SET "finished_at" = now() WHERE "migration_name" = $1`, [SCHEMA_MIGRATION]);
    await waitFor(async () => (await job.getState()) === 'completed', { what: 'the waiting job taken once the schema is applied' });
    expect(workers(app).every((host) => host.worker.isRunning())).toBe(true);
    const after = await request(app.getHttpServer()).get('/health/ready');
    expect([after.status, after.body.checks.schema]).toEqual([200, { ok: true, migration: SCHEMA_MIGRATION }]);
  });

  it('shuts down cleanly while still waiting (a rollout abandoned before its migration ran), having taken no job', async () => {
    await app?.close();
    await owner.query(`UPDATE "_prisma_migrations" SET "finished_at" = NULL WHERE "migration_name" = $1`, [SCHEMA_MIGRATION]);
    const waiting = await createWorkerApp(config, createLogger({ name: 'test', level: 'silent' }));
    app = waiting;
    await waiting.init();
    const job = await queue.add('system.ping', { requestedAt: new Date().toISOString(), requestId: 'req-abandoned' });
    await waiting.close();
    app = undefined;
    // Applied after the process ended: nothing of it may run now.
    await owner.query(`UPDATE "_prisma_migrations" SET "finished_at" = now() WHERE "migration_name" = $1`, [SCHEMA_MIGRATION]);
    expect(workers(waiting).filter((host) => host.worker.isRunning())).toEqual([]);
    expect(await job.getState()).toBe('waiting');
  });
});
