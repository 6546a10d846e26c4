import type { JobData } from '@payorch/domain';
import { businessDateOf, lastScheduledInstant, localTimeOf, scheduledFireJobId, scheduleRunKey, settlementJobId } from '@payorch/settlement';
import { deleteRedisPrefix, recordPreparedStatements, waitFor, widePlans } from '@payorch/testing';

import { SchedulerReconciler } from '../schedules/scheduler-reconciler.service';
import { ScheduleSyncService } from './schedule-sync.service';
import { SETTLEMENT_METRICS, type SettlementMetrics } from './settlement-metrics';
import { SettlementSweepService } from './settlement-sweep.service';
import { FakeSettlementRunner } from './testing/fake-runner.testing';
import { SettlementHarness } from './testing/settlement-harness.testing';

const ZONE = 'Europe/Moscow';
const MINUTE = 60_000;
/** SETTLEMENT_CATCH_UP_AFTER_MS here. */
const GRACE = MINUTE;

/**
 * A schedule's firing becomes settlements only when its `settlement.run` jobs make their first attempt: lost before that
 * (Redis flushed, the worker down over the fire time), no Settlement row tells the sweep of unfinished settlements.
 * The sweep's catch-up finds, from PostgreSQL, the firings that were due and the terminals they cover without a
 * settlement of that business day, and queues the run the fire would have queued, under its job id.
 */
describe('settlement catch-up: a scheduled run lost before its first attempt is started (real BullMQ, Redis, PostgreSQL)', () => {
  const h = new SettlementHarness({
    prefix: 'settle-catch-up',
    env: {
      SETTLEMENT_CATCH_UP_AFTER_MS: String(GRACE),
      SETTLEMENT_SYNC_INTERVAL_MS: '600000',
      SCHEDULE_RECONCILE_INTERVAL_MS: '600000',
      SETTLEMENT_SWEEP_INTERVAL_MS: '3600000',
    },
    poolSize: 4,
    runner: (db) => new FakeSettlementRunner(db, 1),
  });
  let tenantId: string;
  const recorder = recordPreparedStatements({ unnamed: true });

  beforeAll(async () => {
    ({ tenantId } = await h.start());
  }, 60_000);

  afterEach(async () => {
    // Each test's schedules are its own: the catch-up reads every schedule.
    await h.owner.settlementSchedule.deleteMany();
    await h.queue.resume();
  });

  afterAll(async () => {
    recorder.restore();
    await h.stop();
  });

  /**
   * A store in Moscow with `terminals` terminals, all there for two days, and its schedule that fired `minutesAgo`
   * minutes ago (its local time: that minute), unchanged for a day.
   */
  async function storeWithSchedule(terminals: number, minutesAgo: number) {
    const at = new Date(Math.floor((Date.now() - minutesAgo * MINUTE) / MINUTE) * MINUTE);
    const storeId = await h.store(`S${Date.now()}`, ZONE);
    const ids: string[] = [];
    for (let i = 0; i < terminals; i += 1) ids.push((await h.terminal(storeId, `T${i}`)).id);
    await h.owner.$executeRaw`UPDATE "Terminal" SET "createdAt" = now() - interval '2 days' WHERE "storeId" = ${storeId}::uuid`;
    const schedule = await h.owner.settlementSchedule.create({ data: { tenantId, storeId, localTime: localTimeOf(at, ZONE) } });
    await h.owner
      .$executeRaw`UPDATE "SettlementSchedule" SET "createdAt" = now() - interval '1 day', "updatedAt" = now() - interval '1 day' WHERE "id" = ${schedule.id}::uuid`;
    return { storeId, terminalIds: ids, scheduleId: schedule.id, at, businessDate: businessDateOf(at, ZONE) };
  }

  const sweep = () => h.app.get(SettlementSweepService).sweep();
  const fire = (scheduleId: string, at: Date) => h.app.get(ScheduleSyncService).fire({ tenantId, scheduleId }, at);
  const catchUps = async () => (await h.app.get<SettlementMetrics>(SETTLEMENT_METRICS).catchUps.get()).values[0]?.value ?? 0;

  /** Every terminal's settlement of the day COMPLETED: exactly one each, the scheduled one, after one close-day each. */
  async function expectOneSettlementEach(terminalIds: string[], businessDate: string) {
    const settlements = await waitFor(
      async () => {
        const rows = await h.owner.settlement.findMany({ where: { terminalId: { in: terminalIds } } });
        return rows.length === terminalIds.length && rows.every((s) => s.status === 'COMPLETED') ? rows : null;
      },
      { timeoutMs: 20_000, intervalMs: 50, what: `the settlements of ${terminalIds.length} terminals to complete` },
    );
    expect(settlements.map((s) => [s.terminalId, s.runKey, s.trigger, s.businessDate.toISOString().slice(0, 10)]).sort()).toEqual(
      terminalIds.map((id) => [id, scheduleRunKey(id, businessDate), 'schedule', businessDate]).sort(),
    );
    for (const id of terminalIds) {
      expect(h.runner.executed.filter((t) => t === id)).toHaveLength(1);
      expect(await h.owner.terminalOperation.count({ where: { terminalId: id, type: 'SETTLEMENT' } })).toBe(1);
    }
  }

  /** The `settlement.run` jobs of these terminals still to run or running. */
  async function openRuns(terminalIds: string[]) {
    const jobs = await h.queue.getJobs(['waiting', 'delayed', 'active', 'prioritized']);
    return jobs
      .filter((j) => j.name === 'settlement.run' && terminalIds.includes((j.data as JobData['settlement.run']).terminalId))
      .map((j) => j.id)
      .sort();
  }

  it('a firing whose runs Redis lost before their first attempt is started by the sweep when Redis is back: one settlement each', async () => {
    const { terminalIds, scheduleId, at, businessDate } = await storeWithSchedule(2, 10);
    const before = await catchUps();
    // The schedule fired; its runs wait (the worker is busy elsewhere: the queue is paused), no Settlement yet.
    await h.queue.pause();
    expect(await fire(scheduleId, at)).toEqual({ enqueued: 2, businessDate });
    expect(await openRuns(terminalIds)).toEqual(terminalIds.map((id) => settlementJobId(id, businessDate)).sort());
    expect(await h.owner.settlement.count({ where: { terminalId: { in: terminalIds } } })).toBe(0);

    // Redis loses everything (a flush, a failover to an empty replica): the runs are gone, and the schedule fires again
    // only tomorrow. What the worker does when Redis is back: its schedulers are re-created, the sweep runs at once.
    await deleteRedisPrefix(h.redis, h.config.REDIS_KEY_PREFIX);
    expect(await openRuns(terminalIds)).toEqual([]);
    const sweepsBefore = (await h.queue.getJobs(['completed'])).filter((j) => j.name === 'settlement.sweep').length;
    await h.app.get(SchedulerReconciler).reconcile();
    const sweepRun = await waitFor(
      async () => {
        const done = (await h.queue.getJobs(['completed'])).filter((j) => j.name === 'settlement.sweep');
        return done.length > sweepsBefore ? done.sort((a, b) => a.finishedOn! - b.finishedOn!).at(-1)! : null;
      },
      { timeoutMs: 20_000, intervalMs: 50, what: 'the sweep to run after the reconcile' },
    );
    expect(sweepRun.returnvalue).toMatchObject({ found: 0, catchUp: { due: 1, missing: 2, firing: 0, live: 0, added: 2, retried: 0 } });

    await expectOneSettlementEach(terminalIds, businessDate);
    // Under the job id the fire gives (so a fire still to come would be the same job), with the fire's data.
    for (const id of terminalIds) {
      expect((await h.queue.getJob(settlementJobId(id, businessDate)))?.data).toMatchObject({
        tenantId,
        terminalId: id,
        businessDate,
        runKey: scheduleRunKey(id, businessDate),
        trigger: 'schedule',
      });
    }
    expect(await catchUps()).toBe(before + 2);
    // Caught up: the next sweep finds every settlement of the day.
    expect((await sweep()).catchUp).toEqual({ due: 1, missing: 0, firing: 0, live: 0, added: 0, retried: 0 });
  }, 30_000);

  it('a firing that never ran (the worker down over the fire time, Redis restarted meanwhile) is started', async () => {
    const { terminalIds, businessDate } = await storeWithSchedule(1, 30);
    expect((await sweep()).catchUp).toEqual({ due: 1, missing: 1, firing: 0, live: 0, added: 1, retried: 0 });
    await expectOneSettlementEach(terminalIds, businessDate);
  }, 30_000);

  it('a fire still queued for that firing (the worker down or busy, Redis intact) is left to run it; then nothing is missing', async () => {
    const { terminalIds, scheduleId, at, businessDate } = await storeWithSchedule(2, 10);
    await h.queue.pause();
    // What the job scheduler queued for the firing, still waiting for a worker.
    await h.queue.add('settlement.fire', { tenantId, scheduleId }, { jobId: scheduledFireJobId(scheduleId, at), prevMillis: at.getTime() });
    expect((await sweep()).catchUp).toEqual({ due: 1, missing: 2, firing: 2, live: 0, added: 0, retried: 0 });
    expect(await openRuns(terminalIds)).toEqual([]);

    await h.queue.resume();
    await expectOneSettlementEach(terminalIds, businessDate);
    expect((await sweep()).catchUp).toEqual({ due: 1, missing: 0, firing: 0, live: 0, added: 0, retried: 0 });
  }, 30_000);

  it('the real fire and the catch-up racing are one run and one settlement per terminal, in either order or at once', async () => {
    // Fire first, catch-up while its runs wait: they are left alone.
    const first = await storeWithSchedule(2, 10);
    await h.queue.pause();
    await fire(first.scheduleId, first.at);
    expect((await sweep()).catchUp).toEqual({ due: 1, missing: 2, firing: 0, live: 2, added: 0, retried: 0 });
    expect(await openRuns(first.terminalIds)).toEqual(first.terminalIds.map((id) => settlementJobId(id, first.businessDate)).sort());
    await h.queue.resume();
    await expectOneSettlementEach(first.terminalIds, first.businessDate);
    await h.owner.settlementSchedule.deleteMany();

    // Catch-up first, then the fire comes late (its job was delayed behind others): the fire's adds are the same jobs.
    const second = await storeWithSchedule(2, 10);
    await h.queue.pause();
    expect((await sweep()).catchUp).toMatchObject({ missing: 2, added: 2 });
    expect(await fire(second.scheduleId, second.at)).toEqual({ enqueued: 2, businessDate: second.businessDate });
    expect(await openRuns(second.terminalIds)).toEqual(second.terminalIds.map((id) => settlementJobId(id, second.businessDate)).sort());
    await h.queue.resume();
    await expectOneSettlementEach(second.terminalIds, second.businessDate);
    // A fire replayed after the runs completed changes nothing either.
    await fire(second.scheduleId, second.at);
    await expectOneSettlementEach(second.terminalIds, second.businessDate);
    await h.owner.settlementSchedule.deleteMany();

    // At once, with the worker running.
    const third = await storeWithSchedule(3, 10);
    const [, result] = await Promise.all([fire(third.scheduleId, third.at), sweep()]);
    expect(result.catchUp).toMatchObject({ due: 1 });
    await expectOneSettlementEach(third.terminalIds, third.businessDate);
    expect((await sweep()).catchUp).toEqual({ due: 1, missing: 0, firing: 0, live: 0, added: 0, retried: 0 });
  }, 30_000);

  it('starts nothing for a firing not due yet, one older than the schedule, or a terminal added after it; a day settled by hand counts', async () => {
    // Not due: its time today is to come (and within the grace counts as to come); the firing before, yesterday's, was
    // settled by hand (a manual close-day for that business day).
    const later = await storeWithSchedule(1, -5);
    const [terminalId] = later.terminalIds;
    const previous = lastScheduledInstant(localTimeOf(later.at, ZONE), ZONE, new Date(Date.now() - GRACE));
    expect(previous.getTime()).toBeLessThan(Date.now() - 23 * 60 * MINUTE);
    await h.owner.settlement.create({
      data: {
        tenantId,
        terminalId: terminalId!,
        storeId: later.storeId,
        businessDate: new Date(`${businessDateOf(previous, ZONE)}T00:00:00Z`),
        runKey: 'manual:by-hand',
        trigger: 'manual',
        status: 'COMPLETED',
      },
    });
    expect((await sweep()).catchUp).toEqual({ due: 1, missing: 0, firing: 0, live: 0, added: 0, retried: 0 });

    // A schedule created after its time today passed: that firing was not its own (BullMQ fires it tomorrow first).
    const fresh = await storeWithSchedule(1, 10);
    await h.owner.$executeRaw`UPDATE "SettlementSchedule" SET "createdAt" = now(), "updatedAt" = now() WHERE "id" = ${fresh.scheduleId}::uuid`;
    // A terminal added to a store after the firing: the fire did not cover it.
    const added = await storeWithSchedule(1, 10);
    await h.owner.$executeRaw`UPDATE "Terminal" SET "createdAt" = now() WHERE "id" = ${added.terminalIds[0]!}::uuid`;
    expect((await sweep()).catchUp).toEqual({ due: 2, missing: 0, firing: 0, live: 0, added: 0, retried: 0 });
    expect(await openRuns([...later.terminalIds, ...fresh.terminalIds, ...added.terminalIds])).toEqual([]);
    expect(await h.owner.settlement.count({ where: { terminalId: { in: [...fresh.terminalIds, ...added.terminalIds] } } })).toBe(0);
  });

  it('covers no terminal that takes no new work (disabled, or behind a revoked agent): neither the fire nor the catch-up queues its run', async () => {
    const { storeId, terminalIds, scheduleId, at, businessDate } = await storeWithSchedule(3, 10);
    const [working, disabled, bridged] = terminalIds as [string, string, string];
    const revoked = await h.owner.agent.create({ data: { tenantId, storeId, name: 'till PC', status: 'REVOKED' } });
    await h.owner.terminal.update({ where: { id: disabled }, data: { status: 'DISABLED' } });
    await h.owner.terminal.update({ where: { id: bridged }, data: { agentId: revoked.id } });

    // The catch-up: only the working terminal's run was due and missing.
    expect((await sweep()).catchUp).toMatchObject({ due: 1, missing: 1, added: 1 });
    await expectOneSettlementEach([working], businessDate);
    // The fire itself (its run of the working terminal is the one above, under the same job id).
    expect(await fire(scheduleId, at)).toEqual({ enqueued: 1, businessDate });
    expect(await openRuns([disabled, bridged])).toEqual([]);
    expect(await h.owner.settlement.count({ where: { terminalId: { in: [disabled, bridged] } } })).toBe(0);
  });

  it('reads a bounded number of rows per statement among 20,000 settlements of the terminal (it runs every sweep)', async () => {
    const { storeId, terminalIds, businessDate } = await storeWithSchedule(1, 10);
    const [terminalId] = terminalIds;
    await h.owner.$executeRawUnsafe(
      `INSERT INTO "Settlement" ("id", "tenantId", "terminalId", "storeId", "businessDate", "runKey", "trigger", "status", "createdAt", "updatedAt")
       SELECT gen_random_uuid(), $1::uuid, $2::uuid, $3::uuid, DATE '1960-01-01' + n, 'past-' || n, 'schedule', 'COMPLETED', now(), now()
       FROM generate_series(1, 20000) n`,
      tenantId,
      terminalId,
      storeId,
    );
    await h.owner.$executeRawUnsafe('ANALYZE "Settlement"');
    await h.queue.pause();
    recorder.recording.on = true;
    expect((await sweep()).catchUp).toEqual({ due: 1, missing: 1, firing: 0, live: 0, added: 1, retried: 0 });
    recorder.recording.on = false;
    const statements = [...recorder.statements.values()];
    expect(statements.filter((s) => /FROM "Settlement" s\s+JOIN unnest/.test(s.text))).toHaveLength(1);
    expect(await widePlans(h.testDb.adminUrl, statements, tenantId)).toEqual([]);
    await h.queue.resume();
    await waitFor(() => h.owner.settlement.findFirst({ where: { tenantId, runKey: scheduleRunKey(terminalId!, businessDate), status: 'COMPLETED' } }), {
      timeoutMs: 20_000,
      intervalMs: 50,
      what: 'the caught-up settlement to complete',
    });
  }, 60_000);
});
