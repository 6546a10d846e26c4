import { execFile } from 'node:child_process';
import { promisify } from 'node:util';

import { type Job, Queue, Worker } from 'bullmq';
import { Redis } from 'ioredis';

import { QUEUES } from '@payorch/domain';
import { bullPrefix } from '@payorch/redis';
import { deleteRedisPrefix, freePort, nextEvent, REPO_ROOT, testRedisPrefix, testRedisUrl, tsEntryArgs } from '@payorch/testing';

import { FailedJobs } from './failed-jobs';

const run = promisify(execFile);

describe(FailedJobs.name, () => {
  const redis = new Redis(testRedisUrl());
  const prefix = testRedisPrefix('failed-jobs');
  const connection = { url: testRedisUrl(), maxRetriesPerRequest: null };
  let sut: FailedJobs;
  let queue: Queue;
  let worker: Worker;
  /** Job names the worker fails (one attempt each), until the cause is "fixed". */
  const broken = new Set<string>();

  /** Adds a job of `name` that fails on its one attempt, and waits until it sits in the failed set. */
  async function failedJob(name: string, data: object): Promise<Job> {
    broken.add(name);
    const failed = nextEvent<[Job]>(worker, 'failed', { what: `${name} to fail` });
    const job = await queue.add(name, data, { attempts: 1 });
    const [failedOne] = await failed;
    expect(failedOne.id).toBe(job.id);
    return job;
  }

  /** The CLI as an operator runs it, on this test's keys (`env` on top: undefined unsets); the exit code is in `code`. */
  async function cli(args: string[], env: Record<string, string | undefined> = {}) {
    const merged = { ...process.env, REDIS_URL: testRedisUrl(), REDIS_KEY_PREFIX: prefix, ...env };
    const clean = Object.fromEntries(Object.entries(merged).filter(([, v]) => v !== undefined)) as NodeJS.ProcessEnv;
    try {
      const { stdout, stderr } = await run(process.execPath, tsEntryArgs('apps/api-gateway/src/admin/cli.ts', ...args), { cwd: REPO_ROOT, env: clean });
      return { code: 0, stdout, stderr };
    } catch (error) {
      const { code, stdout, stderr } = error as { code: number; stdout: string; stderr: string };
      return { code, stdout, stderr };
    }
  }

  beforeAll(() => {
    sut = new FailedJobs(redis, prefix);
    queue = new Queue(QUEUES.webhooks, { connection, prefix: bullPrefix(prefix) });
    worker = new Worker(
      QUEUES.webhooks,
      async (job) => {
        if (broken.has(job.name)) throw new Error(`${job.name}: endpoint down`);
        return 'done';
      },
      { connection, prefix: bullPrefix(prefix) },
    );
  });

  afterEach(async () => {
    broken.clear();
    await queue.obliterate({ force: true });
  });

  afterAll(async () => {
    await worker.close();
    await queue.close();
    await sut.close();
    await deleteRedisPrefix(redis, prefix);
    await redis.quit();
  });

  it('lists the newest failed jobs with why they failed and their tenant, no other job data', async () => {
    const first = await failedJob('webhook.deliver', { tenantId: 'tenant-a', deliveryId: 'delivery-secret-ref' });
    const second = await failedJob('webhook.sweep', {});

    const all = await sut.list(QUEUES.webhooks, 20);
    expect(all).toEqual({
      queue: QUEUES.webhooks,
      failed: 2,
      jobs: [
        { id: second.id, name: 'webhook.sweep', failedReason: 'webhook.sweep: endpoint down', attemptsMade: 1, finishedOn: expect.any(String) },
        {
          id: first.id,
          name: 'webhook.deliver',
          failedReason: 'webhook.deliver: endpoint down',
          attemptsMade: 1,
          finishedOn: expect.any(String),
          tenantId: 'tenant-a',
        },
      ],
    });
    expect(new Date(all.jobs[0]!.finishedOn!).toISOString()).toBe(all.jobs[0]!.finishedOn);
    expect(JSON.stringify(all)).not.toContain('delivery-secret-ref');
    // --limit: the newest only, the total still said.
    expect(await sut.list(QUEUES.webhooks, 1)).toMatchObject({ failed: 2, jobs: [{ id: second.id }] });
  });

  it('retries one failed job: it runs again and completes, its attempts counted afresh', async () => {
    const job = await failedJob('webhook.deliver', { tenantId: 't', deliveryId: 'd' });
    broken.clear();
    const completed = nextEvent<[Job]>(worker, 'completed', { what: 'the retried job to complete' });

    expect(await sut.retry(QUEUES.webhooks, job.id!)).toEqual({ queue: QUEUES.webhooks, retried: 1 });
    const [done] = await completed;
    expect(done.id).toBe(job.id);
    expect(done.attemptsMade).toBe(1);
    expect(await queue.getJobState(job.id!)).toBe('completed');
    expect(await sut.list(QUEUES.webhooks, 20)).toEqual({ queue: QUEUES.webhooks, failed: 0, jobs: [] });

    // Not failed (any more), or not there: an error, nothing moved.
    await expect(sut.retry(QUEUES.webhooks, job.id!)).rejects.toMatchObject({ code: 'CONFLICT', message: expect.stringContaining('is completed, not failed') });
    await expect(sut.retry(QUEUES.webhooks, 'no-such-job')).rejects.toMatchObject({ code: 'NOT_FOUND' });
  });

  it('retries every failed job of the queue, counts them, and they all complete', async () => {
    const jobs = [await failedJob('webhook.deliver', { tenantId: 't', deliveryId: '1' }), await failedJob('webhook.fanout', { tenantId: 't', eventId: '2' })];
    broken.clear();
    const completed = new Set<string>();
    const allDone = new Promise<void>((resolve) => {
      const onCompleted = (job: Job) => {
        completed.add(job.id!);
        if (completed.size === jobs.length) {
          worker.off('completed', onCompleted);
          resolve();
        }
      };
      worker.on('completed', onCompleted);
    });

    expect(await sut.retryAll(QUEUES.webhooks)).toEqual({ queue: QUEUES.webhooks, retried: 2 });
    await allDone;
    expect([...completed].sort()).toEqual(jobs.map((j) => j.id).sort());
    expect(await queue.getFailedCount()).toBe(0);
    expect(await sut.retryAll(QUEUES.webhooks)).toEqual({ queue: QUEUES.webhooks, retried: 0 });
  });

  describe('the CLI (npm run admin -- jobs …)', () => {
    it('lists and retries on the keys of REDIS_URL and REDIS_KEY_PREFIX, printing JSON', async () => {
      const job = await failedJob('webhook.deliver', { tenantId: 'tenant-a', deliveryId: 'd' });
      const listed = await cli(['jobs', 'failed', '--queue', QUEUES.webhooks]);
      expect(listed.code).toBe(0);
      expect(JSON.parse(listed.stdout)).toMatchObject({ queue: QUEUES.webhooks, failed: 1, jobs: [{ id: job.id, tenantId: 'tenant-a' }] });

      broken.clear();
      const completed = nextEvent<[Job]>(worker, 'completed', { what: 'the retried job to complete' });
      const retried = await cli(['jobs', 'retry', '--queue', QUEUES.webhooks, '--all']);
      expect([retried.code, JSON.parse(retried.stdout)]).toEqual([0, { queue: QUEUES.webhooks, retried: 1 }]);
      await completed;
    }, 60_000);

    it('refuses an unknown queue, naming the valid ones, and a missing REDIS_URL or target, and does nothing', async () => {
      const job = await failedJob('webhook.deliver', { tenantId: 't', deliveryId: 'd' });

      const unknown = await cli(['jobs', 'retry', '--queue', 'webhook', '--all']);
      expect(unknown.code).not.toBe(0);
      expect(unknown.stderr).toContain(
        "option '--queue <name>' argument 'webhook' is invalid. no such queue; one of campaigns, operations-recovery, settlement, system, wallet-payments, webhooks",
      );
      const noRedis = await cli(['jobs', 'retry', '--queue', QUEUES.webhooks, '--all'], { REDIS_URL: undefined });
      expect(noRedis.code).not.toBe(0);
      expect(noRedis.stderr).toContain('REDIS_URL is not set');
      const away = await cli(['jobs', 'retry', '--queue', QUEUES.webhooks, '--all'], { REDIS_URL: `redis://127.0.0.1:${await freePort()}` });
      expect(away.code).not.toBe(0);
      expect(away.stderr).toMatch(/^error: REDIS_UNAVAILABLE: cannot reach Redis at REDIS_URL \(connect ECONNREFUSED 127\.0\.0\.1:\d+\); nothing was done$/m);
      const neither = await cli(['jobs', 'retry', '--queue', QUEUES.webhooks]);
      expect(neither.code).not.toBe(0);
      expect(neither.stderr).toContain('one of --id <jobId> or --all is required');

      expect(await queue.getJobState(job.id!)).toBe('failed');
    }, 60_000);
  });
});
