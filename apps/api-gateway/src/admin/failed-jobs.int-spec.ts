import { execFile } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import os from 'node:os';
import { promisify } from 'node:util';

import { type Job, Queue, Worker } from 'bullmq';
import { Redis } from 'ioredis';

import { createPrismaClient, Database, type PrismaClient } from '@payorch/db';
import { QUEUES } from '@payorch/domain';
import { bullPrefix } from '@payorch/redis';
import {
  createTestDatabase,
  deleteRedisPrefix,
  freePort,
  nextEvent,
  REPO_ROOT,
  type TestDatabase,
  testRedisPrefix,
  testRedisUrl,
  tsEntryArgs,
} from '@payorch/testing';

import { AdminService } from './admin.service';
import { FailedJobs, type JobRetryAudit, RETRY_BATCH, type RetryResult } from './failed-jobs';

const run = promisify(execFile);

describe(FailedJobs.name, () => {
  const redis = new Redis(testRedisUrl());
  const prefix = testRedisPrefix('failed-jobs');
  const connection = { url: testRedisUrl(), maxRetriesPerRequest: null };
  let sut: FailedJobs;
  let queue: Queue;
  let worker: Worker;
  let testDb: TestDatabase;
  /** The owner connection, as the CLI's (DATABASE_URL). */
  let owner: PrismaClient;
  /** The services' connection (payorch_app, under row-level security): what `GET /v1/audit-log` reads. */
  let app: Database;
  let admin: AdminService;
  /** Writes a retried job's audit row as the CLI does. */
  let audit: JobRetryAudit;
  let tenantA: string;
  let tenantB: string;
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

  /** Resolves once the worker emitted `count` more `event`s. */
  function workerEvents(event: 'completed' | 'failed', count: number): Promise<void> {
    let seen = 0;
    return new Promise<void>((resolve) => {
      const onEvent = () => {
        if (++seen < count) return;
        worker.off(event, onEvent);
        resolve();
      };
      worker.on(event, onEvent);
    });
  }
  const completions = (count: number) => workerEvents('completed', count);

  /** Adds `count` jobs of `name` that fail on their one attempt, and waits until they all sit in the failed set. */
  async function failedJobs(count: number, name: string, data: (i: number) => object): Promise<void> {
    broken.add(name);
    const allFailed = workerEvents('failed', count);
    await queue.addBulk(Array.from({ length: count }, (_, i) => ({ name, data: data(i), opts: { attempts: 1 } })));
    await allFailed;
  }

  /** The `job.retry` rows of `tenantId`'s audit log, read as the tenant reads them (payorch_app, RLS). */
  const retriesIn = (tenantId: string) =>
    app.withTenant(tenantId, (tx) => tx.auditLog.findMany({ where: { action: 'job.retry' }, orderBy: { createdAt: 'asc' } }));
  /** Every `job.retry` row of the deployment (owner connection, no RLS). */
  const allRetryRows = () => owner.auditLog.findMany({ where: { action: 'job.retry' } });
  /** The `job.retry` rows of the platform audit log (no tenant), read as the operator reads them (owner connection). */
  const platformRetries = () => owner.auditLog.findMany({ where: { action: 'job.retry', tenantId: null }, orderBy: { createdAt: 'asc' } });

  /** The CLI as an operator runs it, on this test's keys (`env` on top: undefined unsets); the exit code is in `code`. */
  async function cli(args: string[], env: Record<string, string | undefined> = {}) {
    const merged = { ...process.env, REDIS_URL: testRedisUrl(), REDIS_KEY_PREFIX: prefix, DATABASE_URL: testDb.adminUrl, ...env };
    const clean = Object.fromEntries(Object.entries(merged).filter(([, v]) => v !== undefined)) as NodeJS.ProcessEnv;
    try {
      const { stdout, stderr } = await run(process.execPath, tsEntryArgs('apps/api-gateway/src/admin/cli.ts', ...args), { cwd: REPO_ROOT, env: clean });
      return { code: 0, stdout, stderr };
    } catch (error) {
      const { code, stdout, stderr } = error as { code: number; stdout: string; stderr: string };
      return { code, stdout, stderr };
    }
  }

  beforeAll(async () => {
    testDb = await createTestDatabase();
    owner = createPrismaClient(testDb.adminUrl, { max: 2 });
    app = Database.connect(testDb.appUrl, 2);
    admin = new AdminService(owner, 'ops@test');
    audit = (queueName, job) => admin.auditJobRetry(queueName, job);
    tenantA = (await admin.createTenant('Chain A')).id;
    tenantB = (await admin.createTenant('Chain B')).id;
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
    await owner.auditLog.deleteMany({ where: { action: 'job.retry' } });
  });

  afterAll(async () => {
    await worker.close();
    await queue.close();
    await sut.close();
    await deleteRedisPrefix(redis, prefix);
    await redis.quit();
    await app.close();
    await owner.$disconnect();
    await testDb.drop();
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

  it('retries one failed job: it runs again and completes, its attempts counted afresh, and its tenant audits the retry', async () => {
    const job = await failedJob('webhook.deliver', { tenantId: tenantA, deliveryId: 'delivery-secret-ref' });
    broken.clear();
    const completed = nextEvent<[Job]>(worker, 'completed', { what: 'the retried job to complete' });

    expect(await sut.retry(QUEUES.webhooks, job.id!, audit)).toEqual({
      queue: QUEUES.webhooks,
      retried: 1,
      jobs: [{ id: job.id, name: 'webhook.deliver', tenantId: tenantA, audit: 'written' }],
    });
    const [done] = await completed;
    expect(done.id).toBe(job.id);
    expect(done.attemptsMade).toBe(1);
    expect(await queue.getJobState(job.id!)).toBe('completed');
    expect(await sut.list(QUEUES.webhooks, 20)).toEqual({ queue: QUEUES.webhooks, failed: 0, jobs: [] });

    // In the tenant's own audit log (read under RLS, as GET /v1/audit-log does): who, what, why; no job data but ids.
    const rows = await retriesIn(tenantA);
    expect(rows).toEqual([
      expect.objectContaining({
        tenantId: tenantA,
        actorType: 'admin',
        actorId: 'ops@test',
        action: 'job.retry',
        resourceType: 'job',
        resourceId: job.id,
        details: { queue: QUEUES.webhooks, jobName: 'webhook.deliver', failedReason: 'webhook.deliver: endpoint down' },
      }),
    ]);
    expect(JSON.stringify(rows)).not.toContain('delivery-secret-ref');
    // Not in another tenant's.
    expect(await retriesIn(tenantB)).toEqual([]);

    // Not failed (any more), or not there: an error, nothing moved, nothing audited.
    await expect(sut.retry(QUEUES.webhooks, job.id!, audit)).rejects.toMatchObject({
      code: 'CONFLICT',
      message: expect.stringContaining('is completed, not failed'),
    });
    await expect(sut.retry(QUEUES.webhooks, 'no-such-job', audit)).rejects.toMatchObject({ code: 'NOT_FOUND' });
    expect(await allRetryRows()).toHaveLength(1);
  });

  it("retries every failed job of the queue, counts them, audits each in its own tenant's log, and those of no tenant in the platform's", async () => {
    const ofA = await failedJob('webhook.deliver', { tenantId: tenantA, deliveryId: '1' });
    const ofB = await failedJob('webhook.fanout', { tenantId: tenantB, eventId: '2' });
    const deploymentWide = await failedJob('webhook.sweep', {});
    const jobs = [ofA, ofB, deploymentWide];
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

    expect(await sut.retryAll(QUEUES.webhooks, audit)).toEqual({
      queue: QUEUES.webhooks,
      retried: 3,
      jobs: [
        { id: ofA.id, name: 'webhook.deliver', tenantId: tenantA, audit: 'written' },
        { id: ofB.id, name: 'webhook.fanout', tenantId: tenantB, audit: 'written' },
        { id: deploymentWide.id, name: 'webhook.sweep', audit: 'written' },
      ],
    });
    await allDone;
    expect([...completed].sort()).toEqual(jobs.map((j) => j.id).sort());
    expect(await queue.getFailedCount()).toBe(0);

    expect(await retriesIn(tenantA)).toEqual([
      expect.objectContaining({
        actorType: 'admin',
        resourceType: 'job',
        resourceId: ofA.id,
        details: expect.objectContaining({ jobName: 'webhook.deliver' }),
      }),
    ]);
    expect(await retriesIn(tenantB)).toEqual([
      expect.objectContaining({ actorType: 'admin', resourceType: 'job', resourceId: ofB.id, details: expect.objectContaining({ jobName: 'webhook.fanout' }) }),
    ]);
    // The deployment-wide job is in no tenant's log: in the platform's (it was only named in the result before).
    expect(await platformRetries()).toEqual([
      expect.objectContaining({
        tenantId: null,
        actorType: 'admin',
        actorId: 'ops@test',
        action: 'job.retry',
        resourceType: 'job',
        resourceId: deploymentWide.id,
        details: { queue: QUEUES.webhooks, jobName: 'webhook.sweep', failedReason: 'webhook.sweep: endpoint down' },
      }),
    ]);
    expect((await allRetryRows()).map((r) => r.resourceId).sort()).toEqual([ofA.id, ofB.id, deploymentWide.id].sort());
    // Which the services' role never reads, under a tenant's scope or none (row-level security matches no tenant to
    // null), nor writes.
    expect(await app.prisma.auditLog.findMany({ where: { action: 'job.retry' } })).toEqual([]);
    const forged = { actorType: 'admin', action: 'job.retry', resourceType: 'job', resourceId: 'forged' };
    await expect(app.withTenant(tenantA, (tx) => tx.auditLog.create({ data: { ...forged, tenantId: null } }))).rejects.toThrow(/row-level security/);
    await expect(app.prisma.auditLog.create({ data: forged })).rejects.toThrow(/row-level security/);

    expect(await sut.retryAll(QUEUES.webhooks, audit)).toEqual({ queue: QUEUES.webhooks, retried: 0, jobs: [] });
    expect(await allRetryRows()).toHaveLength(3);
  });

  it('does not audit a job another operator retried first: only the jobs it moved back', async () => {
    // One more than a batch: the job of the second batch is retried by "someone else" while the first is audited.
    await failedJobs(RETRY_BATCH + 1, 'webhook.deliver', (i) => ({ tenantId: tenantA, deliveryId: String(i) }));
    broken.clear();
    const completed = completions(RETRY_BATCH + 1);
    const oldestFirst = await queue.getRanges(['failed'], 0, -1, true);
    const firstBatch = oldestFirst.slice(0, RETRY_BATCH);
    const last = oldestFirst.at(-1)!;
    let retriedByOther = false;
    const auditWhileOtherRetries: JobRetryAudit = async (queueName, job) => {
      if (!retriedByOther) {
        retriedByOther = true;
        await (await queue.getJob(last))!.retry('failed');
      }
      await audit(queueName, job);
    };

    const result = await sut.retryAll(QUEUES.webhooks, auditWhileOtherRetries);
    expect(result.retried).toBe(RETRY_BATCH);
    expect(result.jobs.map((j) => j.id)).toEqual(firstBatch);
    const audited = (await retriesIn(tenantA)).map((r) => r.resourceId);
    expect(audited.sort()).toEqual([...firstBatch].sort());
    expect(audited).not.toContain(last);
    expect(result.stopped).toBeUndefined();
    await completed;
  });

  it('says which jobs it retried but could not audit, and moves no more once an audit write failed', async () => {
    await failedJobs(RETRY_BATCH + 1, 'webhook.deliver', (i) => ({ tenantId: tenantA, deliveryId: String(i) }));
    broken.clear();
    const completed = completions(RETRY_BATCH);
    const oldestFirst = await queue.getRanges(['failed'], 0, -1, true);
    // The oldest job's tenant is gone: its audit row cannot be written (after the job was moved back).
    const gone = randomUUID();
    await (await queue.getJob(oldestFirst[0]!))!.updateData({ tenantId: gone, deliveryId: '0' });

    const result = await sut.retryAll(QUEUES.webhooks, audit);
    expect(result.retried).toBe(RETRY_BATCH);
    expect(result.jobs[0]).toEqual({
      id: oldestFirst[0],
      name: 'webhook.deliver',
      tenantId: gone,
      audit: 'failed',
      auditError: `tenant ${gone} was not found`,
    });
    expect(result.jobs.slice(1).map((j) => j.audit)).toEqual(Array(RETRY_BATCH - 1).fill('written'));
    expect(result.stopped).toBe('stopped after this batch, as an audit row could not be written: the 1 job(s) after it were left failed');
    await completed;
    expect(await queue.getJobState(oldestFirst[0]!)).toBe('completed');
    // The batch after it was left failed, for a run once the audit log can be written again.
    expect(await queue.getJobState(oldestFirst.at(-1)!)).toBe('failed');
    expect(await retriesIn(tenantA)).toHaveLength(RETRY_BATCH - 1);
  });

  it('lists every job it moved back (and audited) when Redis goes away in the middle, and says it stopped', async () => {
    await failedJobs(RETRY_BATCH + 1, 'webhook.deliver', (i) => ({ tenantId: tenantA, deliveryId: String(i) }));
    broken.clear();
    const own = new Redis(testRedisUrl());
    const interrupted = new FailedJobs(own, prefix);
    let goneAway = false;
    const auditThenRedisGoes: JobRetryAudit = async (queueName, job) => {
      await audit(queueName, job);
      if (!goneAway) {
        goneAway = true;
        own.disconnect();
      }
    };

    try {
      const result = await interrupted.retryAll(QUEUES.webhooks, auditThenRedisGoes);
      expect(result.stopped).toMatch(
        /^stopped at an error \(Connection is closed\.\): the jobs not listed were not retried \(the one the error met may have been\), nor were the \d+ after this batch$/,
      );
      expect(result.retried).toBe(result.jobs.length);
      // Listed: exactly the jobs that left the failed set, each audited.
      const stillFailed = new Set(await queue.getRanges(['failed'], 0, -1, true));
      const moved = (await queue.getRanges(['wait', 'active', 'completed'], 0, -1, true)).filter((id) => !stillFailed.has(id));
      expect(result.jobs.map((j) => j.id).sort()).toEqual(moved.sort());
      expect(result.jobs.length).toBeGreaterThan(0);
      expect(result.jobs.every((j) => j.audit === 'written')).toBe(true);
      expect((await retriesIn(tenantA)).map((r) => r.resourceId).sort()).toEqual(moved.sort());
      expect(stillFailed.size).toBeGreaterThan(0);
    } finally {
      await interrupted.close();
      own.disconnect();
    }
  });

  describe('the CLI (npm run admin -- jobs …)', () => {
    it("lists and retries on the keys of REDIS_URL and REDIS_KEY_PREFIX, printing JSON; each retry is in its tenant's audit log, or the platform's", async () => {
      const job = await failedJob('webhook.deliver', { tenantId: tenantA, deliveryId: 'd' });
      const sweep = await failedJob('webhook.sweep', {});
      // Listing reads Redis only.
      const listed = await cli(['jobs', 'failed', '--queue', QUEUES.webhooks], { DATABASE_URL: undefined });
      expect(listed.code).toBe(0);
      expect(JSON.parse(listed.stdout)).toMatchObject({ queue: QUEUES.webhooks, failed: 2, jobs: [{ id: sweep.id }, { id: job.id, tenantId: tenantA }] });

      broken.clear();
      const completed = completions(2);
      const retried = await cli(['jobs', 'retry', '--queue', QUEUES.webhooks, '--all']);
      expect([retried.code, JSON.parse(retried.stdout)]).toEqual([
        0,
        {
          queue: QUEUES.webhooks,
          retried: 2,
          jobs: [
            { id: job.id, name: 'webhook.deliver', tenantId: tenantA, audit: 'written' },
            { id: sweep.id, name: 'webhook.sweep', audit: 'written' },
          ],
        },
      ]);
      expect(retried.stderr).toBe('');
      await completed;
      const operator = `${os.userInfo().username}@${os.hostname()}`;
      expect(await retriesIn(tenantA)).toEqual([expect.objectContaining({ actorType: 'admin', actorId: operator, action: 'job.retry', resourceId: job.id })]);
      // The deployment-wide job has no tenant's log to be in: the platform's.
      expect(await platformRetries()).toEqual([
        expect.objectContaining({ tenantId: null, actorType: 'admin', actorId: operator, action: 'job.retry', resourceId: sweep.id }),
      ]);
      expect(await allRetryRows()).toHaveLength(2);
    }, 60_000);

    it("exits non-zero naming each job it retried but could not write to its tenant's audit log", async () => {
      const gone = randomUUID();
      const job = await failedJob('webhook.deliver', { tenantId: gone, deliveryId: 'd' });
      broken.clear();
      const completed = completions(1);

      const retried = await cli(['jobs', 'retry', '--queue', QUEUES.webhooks, '--id', job.id!]);
      expect(retried.code).toBe(1);
      expect(JSON.parse(retried.stdout)).toEqual({
        queue: QUEUES.webhooks,
        retried: 1,
        jobs: [{ id: job.id, name: 'webhook.deliver', tenantId: gone, audit: 'failed', auditError: `tenant ${gone} was not found` }],
      });
      expect(retried.stderr).toContain(
        `error: AUDIT_FAILED: retried, but NOT in the audit log: job ${job.id} (webhook.deliver, tenant ${gone}: tenant ${gone} was not found)`,
      );
      await completed;
      expect(await allRetryRows()).toEqual([]);
    }, 60_000);

    it('exits non-zero naming a job of no tenant it retried but could not write to the platform audit log', async () => {
      const sweep = await failedJob('webhook.sweep', {});
      broken.clear();
      const completed = completions(1);
      // The database refuses rows of no tenant from now on (as any failed write: a constraint, a lost connection).
      await owner.$executeRawUnsafe(`ALTER TABLE "AuditLog" ADD CONSTRAINT "test_no_platform_rows" CHECK ("tenantId" IS NOT NULL) NOT VALID`);
      try {
        const retried = await cli(['jobs', 'retry', '--queue', QUEUES.webhooks, '--id', sweep.id!]);
        expect(retried.code).toBe(1);
        const result = JSON.parse(retried.stdout) as RetryResult;
        expect(result).toEqual({
          queue: QUEUES.webhooks,
          retried: 1,
          jobs: [{ id: sweep.id, name: 'webhook.sweep', audit: 'failed', auditError: expect.stringContaining('test_no_platform_rows') }],
        });
        expect(retried.stderr).toContain(
          `error: AUDIT_FAILED: retried, but NOT in the audit log: job ${sweep.id} (webhook.sweep, no tenant: platform audit log: ${result.jobs[0]!.auditError})`,
        );
        await completed;
        expect(await allRetryRows()).toEqual([]);
      } finally {
        await owner.$executeRawUnsafe(`ALTER TABLE "AuditLog" DROP CONSTRAINT "test_no_platform_rows"`);
      }
    }, 60_000);

    it('refuses an unknown queue, naming the valid ones, a missing REDIS_URL or target, and a PostgreSQL it cannot reach, and does nothing', async () => {
      const job = await failedJob('webhook.deliver', { tenantId: tenantA, deliveryId: 'd' });

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
      // A retry is audited: without the database, nothing is retried.
      const noDatabase = await cli(['jobs', 'retry', '--queue', QUEUES.webhooks, '--all'], {
        DATABASE_URL: `postgresql://postgres@127.0.0.1:${await freePort()}/test`,
      });
      expect(noDatabase.code).not.toBe(0);
      expect(noDatabase.stderr).toMatch(
        /^error: DATABASE_UNAVAILABLE: cannot reach PostgreSQL at DATABASE_URL \(Can't reach database server at 127\.0\.0\.1:\d+\); nothing was done$/m,
      );

      expect(await queue.getJobState(job.id!)).toBe('failed');
      expect(await allRetryRows()).toEqual([]);
    }, 60_000);
  });
});
