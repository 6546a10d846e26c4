import { randomBytes } from 'node:crypto';

import pg from 'pg';

import { manualJobId, settlementJobId } from '@payorch/settlement';
import { deleteRedisPrefix, explainPrepared, freePort, waitFor, widestRead } from '@payorch/testing';
import { JoinprotoTerminalSimulator } from '@payorch/testing/joinproto-sim';

import { SchedulerReconciler } from '../schedules/scheduler-reconciler.service';
import type { SettlementOperationRef, SettlementRunner } from './settlement-runner';
import { SETTLEMENT_SWEEP_SCHEDULER_ID, SettlementSweepService } from './settlement-sweep.service';
import { DriverSettlementRunner } from './testing/driver-runner.testing';
import { SettlementHarness } from './testing/settlement-harness.testing';

/** No schedules here: the sweep's catch-up of scheduled runs finds nothing (schedule-catch-up.int-spec.ts). */
const NO_CATCH_UP = { due: 0, missing: 0, firing: 0, live: 0, added: 0, retried: 0 };

/** Real drivers against the simulators; a terminal in `crashNext` makes its next execute throw (a bug, not an outage). */
class CrashingRunner implements SettlementRunner {
  readonly crashNext = new Set<string>();
  constructor(private readonly inner: DriverSettlementRunner) {}
  async execute(ref: SettlementOperationRef): Promise<void> {
    if (this.crashNext.delete(ref.terminalId)) throw new Error('runner crashed');
    await this.inner.execute(ref);
  }
  recover(ref: SettlementOperationRef): Promise<void> {
    return this.inner.recover(ref);
  }
}

/**
 * A settlement whose `settlement.run` job is lost (Redis flushed, the job failed) is queued again by the sweep from
 * PostgreSQL under the job id of the normal path, and completes; a job that still exists is never duplicated.
 * Retries are 60 s apart here, so a deferred job stays delayed while a test looks at it.
 */
describe('settlement sweep: a settlement whose job is lost is queued again (real BullMQ, Redis, PostgreSQL, Joinproto simulator)', () => {
  const h = new SettlementHarness({
    prefix: 'settle-sweep',
    env: {
      SETTLEMENT_RETRY_BASE_MS: '60000',
      SETTLEMENT_RETRY_MAX_MS: '60000',
      SETTLEMENT_SYNC_INTERVAL_MS: '600000',
      SETTLEMENT_SWEEP_INTERVAL_MS: '3600000',
      SETTLEMENT_SWEEP_AFTER_MS: '60000',
    },
    poolSize: 4,
    runner: (db) => new CrashingRunner(new DriverSettlementRunner(db, { driverOptions: { commandTimeoutMs: 3000 }, connectTimeoutMs: 500 })),
  });
  const sims: JoinprotoTerminalSimulator[] = [];
  h.onStop(() => Promise.all(sims.map((s) => s.close())));
  let tenantId: string;
  let storeId: string;

  beforeAll(async () => {
    ({ tenantId } = await h.start());
    storeId = await h.store('Moscow', 'Europe/Moscow');
    // A scheduler with `every` runs its first job at once: let the start-up sweep finish (it finds nothing) before a
    // test ages a row, so only the sweeps a test runs itself can find it.
    await sweepRunsAfter(0);
  }, 60_000);

  afterAll(() => h.stop());

  /** A Joinproto terminal on `port`; the simulator listens only once `online()` is called. */
  async function terminalOnPort(port: number) {
    const sim = new JoinprotoTerminalSimulator({});
    sims.push(sim);
    const terminal = await h.terminal(storeId, `T${sims.length}`, { port });
    return { terminal, online: () => sim.listen(port) };
  }

  const settlementOf = (terminalId: string) => h.owner.settlement.findFirstOrThrow({ where: { terminalId } });

  /** The terminal is offline: the first attempt starts the settlement, defers it (TERMINAL_OFFLINE) and the job waits 60 s. */
  async function deferredOffline(terminalId: string, businessDate: string) {
    const job = await h.run(terminalId, businessDate);
    await waitFor(
      async () => {
        const s = await h.owner.settlement.findFirst({ where: { terminalId } });
        const retries = (s?.error as { code?: string; retries?: number } | null)?.retries;
        return retries === 1 && (await (await h.queue.getJob(job.id!))?.getState()) === 'delayed' ? s : null;
      },
      { timeoutMs: 20_000, intervalMs: 50, what: 'an offline deferral with its job delayed' },
    );
    const s = await settlementOf(terminalId);
    expect(s).toMatchObject({ status: 'RUNNING', attempts: 1, error: { code: 'TERMINAL_OFFLINE' } });
    return { job, settlement: s };
  }

  /** Unchanged for an hour: what the sweep looks for. */
  const age = (settlementId: string) => h.owner.$executeRaw`UPDATE "Settlement" SET "updatedAt" = now() - interval '1 hour' WHERE "id" = ${settlementId}::uuid`;

  const sweep = () => h.app.get(SettlementSweepService).sweep();

  /** The sweep jobs the worker ran (kept: removeOnComplete 100), oldest first. */
  const sweepRuns = async () =>
    (await h.queue.getJobs(['completed'])).filter((j) => j.name === 'settlement.sweep').sort((a, b) => a.finishedOn! - b.finishedOn!);

  /** Waits until the worker has completed more than `count` sweep jobs; the result of the latest. */
  async function sweepRunsAfter(count: number) {
    const runs = await waitFor(
      async () => {
        const done = await sweepRuns();
        return done.length > count ? done : null;
      },
      { timeoutMs: 20_000, intervalMs: 50, what: `a sweep job to complete (after ${count})` },
    );
    return runs.at(-1)!.returnvalue as unknown;
  }

  async function completed(terminalId: string) {
    return waitFor(
      async () => {
        const s = await settlementOf(terminalId);
        return s.status === 'COMPLETED' ? s : null;
      },
      { timeoutMs: 20_000, intervalMs: 50, what: `the settlement of terminal ${terminalId} to complete` },
    );
  }

  /** The close-day operations of the terminal: one, APPROVED (the PENDING one of the first attempt, reused). */
  async function expectOneCloseDay(terminalId: string, operationId: string | null) {
    const close = await h.owner.terminalOperation.findMany({ where: { terminalId, type: 'SETTLEMENT' } });
    expect(close.map((o) => [o.id, o.state])).toEqual([[operationId, 'APPROVED']]);
  }

  it('the sweep is a repeatable job of the worker, and Redis losing it is repaired by the scheduler reconcile', async () => {
    expect(await h.queue.getJobScheduler(SETTLEMENT_SWEEP_SCHEDULER_ID)).toMatchObject({ name: 'settlement.sweep', every: 3_600_000 });
    const runs = (await sweepRuns()).length;
    await h.queue.removeJobScheduler(SETTLEMENT_SWEEP_SCHEDULER_ID);
    expect(await h.app.get(SchedulerReconciler).reconcile()).toMatchObject({ recreated: [SETTLEMENT_SWEEP_SCHEDULER_ID] });
    expect(await h.queue.getJobScheduler(SETTLEMENT_SWEEP_SCHEDULER_ID)).toMatchObject({ name: 'settlement.sweep', every: 3_600_000 });
    // Re-created, it sweeps at once (nothing is unfinished yet).
    expect(await sweepRunsAfter(runs)).toEqual({ found: 0, added: 0, retried: 0, live: 0, finished: 0, catchUp: NO_CATCH_UP });
  });

  it('a deferred settlement whose queue Redis lost is queued again under its job id and completes once the terminal is online', async () => {
    const port = await freePort();
    const { terminal, online } = await terminalOnPort(port);
    const { job, settlement } = await deferredOffline(terminal.id, '2026-03-01');
    expect(job.id).toBe(settlementJobId(terminal.id, '2026-03-01'));
    await age(settlement.id);

    // Redis loses everything this worker had (a flush, or a restart without persistence): the delayed job is gone,
    // and nothing else would run it again (the schedule fired already; the job was to retry in 60 s).
    await deleteRedisPrefix(h.redis, h.config.REDIS_KEY_PREFIX);
    expect(await h.queue.getJob(job.id!)).toBeUndefined();
    await online();
    // What the worker does when Redis is back (on the reconnect, or at the next tick): its schedulers are re-created,
    // and the sweep's runs at once.
    await h.app.get(SchedulerReconciler).reconcile();
    expect(await sweepRunsAfter(0)).toEqual({ found: 1, added: 1, retried: 0, live: 0, finished: 0, catchUp: NO_CATCH_UP });

    const s = await completed(terminal.id);
    expect(s).toMatchObject({ id: settlement.id, attempts: 2, error: null, startedAt: settlement.startedAt });
    await expectOneCloseDay(terminal.id, settlement.operationId);
    // The same job id as the schedule's; its give-up window still runs from the settlement's first attempt.
    expect((await h.queue.getJob(job.id!))?.data).toMatchObject({
      runKey: settlement.runKey,
      trigger: 'schedule',
      businessDate: '2026-03-01',
      firstAttemptAt: settlement.startedAt!.toISOString(),
    });
    expect(await h.owner.domainEvent.count({ where: { subjectId: settlement.id, type: 'settlement.completed' } })).toBe(1);
    expect(await sweep()).toMatchObject({ found: 0 });
  });

  it('a sweep while the job still exists adds no second one; the job goes on as it was', async () => {
    const port = await freePort();
    const { terminal, online } = await terminalOnPort(port);
    const { job, settlement } = await deferredOffline(terminal.id, '2026-03-02');
    await age(settlement.id);

    expect(await sweep()).toEqual({ found: 1, added: 0, retried: 0, live: 1, finished: 0, catchUp: NO_CATCH_UP });
    expect(await sweep()).toEqual({ found: 1, added: 0, retried: 0, live: 1, finished: 0, catchUp: NO_CATCH_UP });
    const jobs = (await h.queue.getJobs(['waiting', 'delayed', 'active', 'prioritized'])).filter((j) => j.data.terminalId === terminal.id);
    expect(jobs.map((j) => [j.id, j.timestamp, j.data.retries])).toEqual([[job.id, job.timestamp, 1]]);
    expect(await (await h.queue.getJob(job.id!))!.getState()).toBe('delayed');

    await online();
    await (await h.queue.getJob(job.id!))!.promote();
    expect(await completed(terminal.id)).toMatchObject({ attempts: 2 });
    await expectOneCloseDay(terminal.id, settlement.operationId);
  });

  it('a settlement whose job failed (an error that is no database outage: one attempt) is retried by the sweep', async () => {
    const port = await freePort();
    const { terminal, online } = await terminalOnPort(port);
    await online();
    h.runner.crashNext.add(terminal.id);
    const job = await h.run(terminal.id, '2026-03-03');
    await expect(job.waitUntilFinished(h.events, 20_000)).rejects.toThrow(/runner crashed/);
    const failed = await settlementOf(terminal.id);
    // Started, its close-day created PENDING and never sent: stuck RUNNING with nothing left to run it.
    expect(failed).toMatchObject({ status: 'RUNNING', attempts: 1 });
    expect(await h.owner.terminalOperation.findUniqueOrThrow({ where: { id: failed.operationId! } })).toMatchObject({ state: 'PENDING' });
    await age(failed.id);

    expect(await sweep()).toEqual({ found: 1, added: 0, retried: 1, live: 0, finished: 0, catchUp: NO_CATCH_UP });
    expect(await completed(terminal.id)).toMatchObject({ attempts: 2, error: null });
    await expectOneCloseDay(terminal.id, failed.operationId);
    // The row is written inside the job; BullMQ marks the job completed once its handler has returned.
    await waitFor(async () => (await (await h.queue.getJob(job.id!))!.getState()) === 'completed', { what: 'the retried job completed' });
  });

  it("a manual settlement whose enqueue was lost (row PENDING, no job) is queued under the manual job id, by the sweep's own job", async () => {
    const port = await freePort();
    const { terminal, online } = await terminalOnPort(port);
    await online();
    // As the gateway leaves it when Redis fails between its insert and its enqueue, and the client never retries.
    const runKey = `manual:${randomBytes(4).toString('hex')}`;
    const row = await h.owner.settlement.create({
      data: { tenantId, terminalId: terminal.id, storeId, businessDate: new Date('2026-03-04T00:00:00Z'), runKey, trigger: 'manual', status: 'PENDING' },
    });
    await age(row.id);

    const sweepJob = await h.queue.add('settlement.sweep', {});
    expect(await sweepJob.waitUntilFinished(h.events, 20_000)).toEqual({ found: 1, added: 1, retried: 0, live: 0, finished: 0, catchUp: NO_CATCH_UP });
    const s = await completed(terminal.id);
    expect(s.startedAt).toBeInstanceOf(Date);
    const job = await h.queue.getJob(manualJobId(terminal.id, runKey));
    expect(job?.data).toMatchObject({ tenantId, terminalId: terminal.id, businessDate: '2026-03-04', runKey, trigger: 'manual', step: 'done' });
  });

  it('reads a bounded number of rows among 20,000 finished settlements (generic plan of the cross-tenant scan)', async () => {
    const { terminal } = await terminalOnPort(await freePort());
    await h.owner.$executeRawUnsafe(
      `INSERT INTO "Settlement" ("id", "tenantId", "terminalId", "storeId", "businessDate", "runKey", "trigger", "status", "createdAt", "updatedAt")
       SELECT gen_random_uuid(), $1::uuid, $2::uuid, $3::uuid, DATE '2020-01-01' + n, 'past-' || n, 'schedule',
         (CASE WHEN n % 2 = 0 THEN 'COMPLETED' ELSE 'FAILED' END)::"SettlementStatus", now() - n * interval '1 hour', now() - n * interval '1 hour'
       FROM generate_series(1, 20000) n`,
      tenantId,
      terminal.id,
      storeId,
    );
    for (const n of [1, 2, 3]) {
      await h.owner.settlement.create({
        data: {
          tenantId,
          terminalId: terminal.id,
          storeId,
          businessDate: new Date(`2030-01-0${n}T00:00:00Z`),
          runKey: `open-${n}`,
          trigger: 'manual',
          status: 'PENDING',
        },
      });
    }
    await h.owner.$executeRawUnsafe('ANALYZE "Settlement"');

    // The function's own statement, prepared with its parameters as $1..$4 and planned generically (as a
    // long-lived connection keeps it), run by the function's owner: what the SECURITY DEFINER function runs.
    const client = new pg.Client({ connectionString: h.testDb.adminUrl });
    await client.connect();
    try {
      const [fn] = (await client.query<{ src: string }>(`SELECT prosrc AS src FROM pg_proc WHERE proname = 'payorch_unfinished_settlements'`)).rows;
      const text = ['p_older_than', 'p_after_updated_at', 'p_after_id', 'p_limit'].reduce((sql, name, i) => sql.replaceAll(name, `$${i + 1}`), fn!.src);
      await client.query('SET plan_cache_mode = force_generic_plan');
      await client.query(`PREPARE unfinished(interval, timestamptz, uuid, int) AS ${text}`);
      const plan = await explainPrepared(
        client,
        'unfinished',
        { text, values: ['0 milliseconds', '-infinity', '00000000-0000-0000-0000-000000000000', 500] },
        tenantId,
      );
      expect(widestRead(plan).rows).toBeLessThanOrEqual(10);
      expect(JSON.stringify(plan)).toContain('Settlement_unfinished_by_updated_at_idx');
    } finally {
      await client.end();
    }
  }, 60_000);
});
