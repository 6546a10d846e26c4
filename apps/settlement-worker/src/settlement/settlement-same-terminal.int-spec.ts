import { randomBytes } from 'node:crypto';

import { Worker } from 'bullmq';
import pg from 'pg';

import type { JobData } from '@payorch/domain';
import { createLogger, createMetricsRegistry } from '@payorch/logging';
import { insertOperation } from '@payorch/operations';
import { scheduleRunKey } from '@payorch/settlement';
import { waitFor } from '@payorch/testing';

import { testQueueOptions } from '../testing/worker-config.testing';
import { settlementMetrics } from './settlement-metrics';
import { RunnerUnavailable } from './settlement-runner';
import { SettlementService } from './settlement.service';
import { TenantSlots } from './tenant-slots';
import { LedgerSettlementRunner } from './testing/ledger-runner.testing';
import { SettlementHarness } from './testing/settlement-harness.testing';

/** A runner call held until the test opens it; `reached` once a call waits at it. */
function gate() {
  let open!: () => void;
  const opened = new Promise<void>((resolve) => (open = resolve));
  const state = {
    reached: false,
    open: () => open(),
    async pass(): Promise<void> {
      state.reached = true;
      await opened;
    },
  };
  return state;
}

const TWO_HOURS_AGO = () => new Date(Date.now() - 2 * 3600_000).toISOString();

/**
 * Settlements of one terminal that overlap: a close-day that completes late, one given up while its outcome was
 * unknown, two completing at once, two starting at once, and stale duplicate runs of one settlement. Each settlement
 * must reconcile exactly the batch its own close-day closed. The terminals keep their batches in memory
 * (LedgerSettlementRunner); the service, BullMQ, Redis and PostgreSQL are real.
 */
describe('settlements of one terminal that overlap (real BullMQ, Redis, PostgreSQL; a scripted terminal)', () => {
  const h = new SettlementHarness({
    prefix: 'same-terminal',
    env: { SETTLEMENT_RETRY_BASE_MS: '100', SETTLEMENT_RETRY_MAX_MS: '300', SETTLEMENT_GIVE_UP_MS: '60000' },
    poolSize: 8,
    queueName: `same-terminal-${randomBytes(3).toString('hex')}`,
  });
  let runner: LedgerSettlementRunner;
  let worker: Worker;
  let tenantId: string;
  let storeId: string;

  beforeAll(async () => {
    const { db, config, redis, queue } = await h.start();
    runner = new LedgerSettlementRunner(db);
    const service = new SettlementService(
      db,
      config,
      createLogger({ name: 'test', level: 'silent' }),
      runner,
      new TenantSlots(redis, config.REDIS_KEY_PREFIX, config.SETTLEMENT_TENANT_CONCURRENCY),
      settlementMetrics(createMetricsRegistry('test')),
      queue,
    );
    worker = new Worker(queue.name, (job, token) => service.run(job, token), { ...testQueueOptions(config), concurrency: 8 });
    tenantId = h.tenantId;
    storeId = await h.store('Main', 'Europe/Moscow');
  }, 60_000);

  afterAll(async () => {
    await worker?.close();
    await h.queue?.obliterate({ force: true }).catch(() => undefined);
    await h.stop();
  });

  beforeEach(() => {
    runner.around = (_ref, closeDay) => closeDay();
  });

  const terminal = async () => (await h.terminal(storeId, `T-${randomBytes(3).toString('hex')}`)).id;

  /** A purchase approved on the terminal (its batch) and recorded on our side. */
  async function pay(terminalId: string, amount: number) {
    runner.pay(terminalId, amount);
    return h.recordOperation(terminalId, storeId, amount);
  }

  function settle(terminalId: string, businessDate: string, extra: Partial<JobData['settlement.run']> = {}, jobId = `${terminalId}-${businessDate}`) {
    const data: JobData['settlement.run'] = {
      tenantId,
      terminalId,
      businessDate,
      runKey: scheduleRunKey(terminalId, businessDate),
      trigger: 'schedule',
      ...extra,
    };
    return h.queue.add('settlement.run', data, { jobId });
  }

  const findSettlement = (terminalId: string, businessDate: string) =>
    h.owner.settlement.findFirst({ where: { runKey: scheduleRunKey(terminalId, businessDate) } });
  const settlementOf = (terminalId: string, businessDate: string) =>
    h.owner.settlement.findUniqueOrThrow({ where: { tenantId_runKey: { tenantId, runKey: scheduleRunKey(terminalId, businessDate) } } });
  const errorCode = (s: { error: unknown } | null) => (s?.error as { code?: string } | null)?.code;
  const closeDays = (terminalId: string) => h.owner.terminalOperation.findMany({ where: { terminalId, type: 'SETTLEMENT' }, orderBy: { createdAt: 'asc' } });

  /**
   * Runs `meanwhile` while another transaction holds a row lock (`lock`: a `SELECT … FOR UPDATE`), so that the worker's
   * transactions that need the row wait for it; `waiters()` counts the transactions waiting on a lock. Commits at the end.
   */
  async function holdingLock(lock: string, values: unknown[], meanwhile: (waiters: () => Promise<number>) => Promise<void>) {
    const blocker = new pg.Client({ connectionString: h.testDb.adminUrl });
    await blocker.connect();
    try {
      await blocker.query('BEGIN');
      await blocker.query(lock, values);
      await meanwhile(async () => {
        const { rows } = await blocker.query<{ n: number }>(
          `SELECT count(*)::int AS "n" FROM pg_stat_activity WHERE "datname" = current_database() AND "wait_event_type" = 'Lock' AND "pid" <> pg_backend_pid()`,
        );
        return rows[0]!.n;
      });
      await blocker.query('COMMIT');
    } finally {
      await blocker.end();
    }
  }

  describe('each settlement reconciles the batch its own close-day closed', () => {
    it("a close-day that completes late: the next day's settlement waits for it, and neither counts the other's operations", async () => {
      const t = await terminal();
      await pay(t, 1000);
      const held = gate();
      let calls = 0;
      runner.around = async (_ref, closeDay) => {
        const first = ++calls === 1;
        await closeDay();
        // Day D's job stops between its close-day (approved: the terminal closed {1000}) and its completion.
        if (first) await held.pass();
      };
      const dayD = await settle(t, '2026-05-01');
      await waitFor(() => held.reached, { what: "day D's close-day answered, its job held before completing" });
      await pay(t, 2000);
      const dayD1 = await settle(t, '2026-05-02');
      await waitFor(
        async () => {
          const s = await findSettlement(t, '2026-05-02');
          return s?.status === 'COMPLETED' || errorCode(s) === 'EARLIER_SETTLEMENT_OPEN';
        },
        { timeoutMs: 20_000, what: 'day D+1 to complete, or to wait for day D' },
      );
      held.open();
      expect(await dayD.waitUntilFinished(h.events, 20_000)).toMatchObject({ status: 'COMPLETED', hasDiscrepancies: false });
      expect(await dayD1.waitUntilFinished(h.events, 20_000)).toMatchObject({ status: 'COMPLETED', hasDiscrepancies: false });
      expect(await settlementOf(t, '2026-05-01')).toMatchObject({ ourTotals: { net: 1000 }, terminalTotals: { net: 1000 }, error: null });
      expect(await settlementOf(t, '2026-05-02')).toMatchObject({ ourTotals: { net: 2000 }, terminalTotals: { net: 2000 }, error: null });
    }, 30_000);

    it('a settlement given up while its close-day was unknown: the next one waits for the outcome, then reconciles that batch on its own', async () => {
      const t = await terminal();
      const p1 = await pay(t, 1000);
      // Day D: the terminal closes {1000}, the answer is lost; past the give-up window, D is FAILED (OUTCOME_UNKNOWN).
      runner.loseNextAnswer(t);
      const dayD = await settle(t, '2026-05-03', { firstAttemptAt: TWO_HOURS_AGO() });
      expect(await dayD.waitUntilFinished(h.events, 20_000)).toMatchObject({ status: 'FAILED' });
      const [unknown] = await closeDays(t);
      expect(unknown).toMatchObject({ state: 'UNKNOWN' });
      expect(await settlementOf(t, '2026-05-03')).toMatchObject({ status: 'FAILED', error: { code: 'OUTCOME_UNKNOWN' } });

      await pay(t, 2000);
      const dayD1 = await settle(t, '2026-05-04');
      // A close-day whose outcome is unknown keeps the terminal busy: no second close-day while it may have closed the batch.
      await waitFor(async () => errorCode(await findSettlement(t, '2026-05-04')) === 'TERMINAL_BUSY', { timeoutMs: 10_000, what: 'day D+1 deferred: busy' });
      expect(await closeDays(t)).toHaveLength(1);
      // Operations recovery later finds day D's close-day approved: the terminal closed {1000} then.
      await runner.recover({ tenantId, terminalId: t, operationId: unknown!.id });

      expect(await dayD1.waitUntilFinished(h.events, 20_000)).toMatchObject({ status: 'COMPLETED', hasDiscrepancies: false });
      const s = await settlementOf(t, '2026-05-04');
      expect(s).toMatchObject({ ourTotals: { net: 2000 }, terminalTotals: { net: 2000 }, discrepancies: [] });
      expect(s.batches).toEqual([
        expect.objectContaining({ closeDayOperationId: unknown!.id, closedBy: 'settlement', outcome: 'closed', operations: 1, discrepancies: 0 }),
        expect.objectContaining({ closeDayOperationId: s.operationId, closedBy: 'settlement', outcome: 'closed', operations: 1, discrepancies: 0 }),
      ]);
      expect(await h.owner.terminalOperation.findMany({ where: { id: { in: [p1.id, unknown!.id] } }, select: { settlementId: true } })).toEqual([
        { settlementId: s.id },
        { settlementId: s.id },
      ]);
    }, 30_000);

    it('two settlements completing at once: each counts its own batch once', async () => {
      const t = await terminal();
      const p1 = await pay(t, 1000);
      const gates = [gate(), gate()];
      let calls = 0;
      runner.around = async (_ref, closeDay) => {
        const held = gates[calls++];
        await closeDay();
        await held?.pass();
      };
      const dayD = await settle(t, '2026-05-05');
      await waitFor(() => gates[0]!.reached, { what: "day D's close-day answered" });
      await pay(t, 2000);
      const dayD1 = await settle(t, '2026-05-06');
      await waitFor(() => gates[1]!.reached, { what: "day D+1's close-day answered" });
      // The first purchase's row locked: a completion that marks it settled waits there, so the two overlap.
      await holdingLock('SELECT 1 FROM "TerminalOperation" WHERE "id" = $1 FOR UPDATE', [p1.id], async (waiters) => {
        for (const held of gates) held.open();
        await waitFor(
          async () => {
            const waiting = await waiters();
            return waiting === 2 || (waiting === 1 && errorCode(await findSettlement(t, '2026-05-06')) === 'EARLIER_SETTLEMENT_OPEN');
          },
          { timeoutMs: 20_000, what: 'both completions under way' },
        );
      });
      expect(await dayD.waitUntilFinished(h.events, 20_000)).toMatchObject({ status: 'COMPLETED', hasDiscrepancies: false });
      expect(await dayD1.waitUntilFinished(h.events, 20_000)).toMatchObject({ status: 'COMPLETED', hasDiscrepancies: false });
      expect(await settlementOf(t, '2026-05-05')).toMatchObject({ ourTotals: { net: 1000 }, terminalTotals: { net: 1000 } });
      expect(await settlementOf(t, '2026-05-06')).toMatchObject({ ourTotals: { net: 2000 }, terminalTotals: { net: 2000 } });
    }, 30_000);

    it("two settlements starting at once: the terminal's close-days never overlap", async () => {
      const t = await terminal();
      await pay(t, 1000);
      // Manual close-days (rows the gateway created PENDING): nothing in their first transaction waits before the busy check.
      const runs = ['a', 'b'].map((k) => ({ tenantId, terminalId: t, businessDate: '2026-05-07', runKey: `manual:${t}:${k}`, trigger: 'manual' as const }));
      for (const run of runs) {
        await h.owner.settlement.create({
          data: { tenantId, terminalId: t, storeId, businessDate: new Date('2026-05-07T00:00:00Z'), runKey: run.runKey, trigger: 'manual', status: 'PENDING' },
        });
      }
      // The terminal's row locked: the insert of a close-day (its foreign key) waits, so both runs get as far as they can first.
      let jobs: Awaited<ReturnType<typeof h.queue.add>>[] = [];
      await holdingLock('SELECT 1 FROM "Terminal" WHERE "id" = $1 FOR UPDATE', [t], async (waiters) => {
        jobs = await Promise.all(runs.map((run, i) => h.queue.add('settlement.run', run, { jobId: `${t}-manual-${i}` })));
        await waitFor(async () => (await waiters()) === 2, { timeoutMs: 20_000, what: 'both runs waiting on a lock' });
      });
      for (const job of jobs) expect(await job.waitUntilFinished(h.events, 20_000)).toMatchObject({ status: 'COMPLETED', hasDiscrepancies: false });
      const [first, second] = await closeDays(t);
      expect([first?.state, second?.state]).toEqual(['APPROVED', 'APPROVED']);
      expect(second!.createdAt.getTime()).toBeGreaterThanOrEqual(first!.completedAt!.getTime());
    }, 30_000);
  });

  describe("a close-day through the operations API racing the settlement's own (the terminal runs them in claim order)", () => {
    /** A `settlement` operation created through the operations path (its key names no settlement), PENDING. */
    async function apiCloseDay(terminalId: string) {
      const { row } = await h.db.withTenantSql(tenantId, (tx) =>
        insertOperation(tx, { tenantId, terminalId, storeId, type: 'settlement', idempotencyKey: `api-${randomBytes(6).toString('hex')}`, requestHash: 'h' }),
      );
      return row;
    }

    it("created after the settlement's close-day but run on the terminal before it: a batch of its own, not part of the own one", async () => {
      const t = await terminal();
      const p1 = await pay(t, 1000);
      let api: Awaited<ReturnType<typeof apiCloseDay>> | undefined;
      let p2: Awaited<ReturnType<typeof pay>> | undefined;
      runner.around = async (ref, closeDay) => {
        if (ref.operationId === api?.id) return closeDay();
        // The settlement's close-day is PENDING (created and linked); a close-day through the operations API is created
        // now and reaches the terminal first: it closes {1000}; a purchase follows it, then the settlement's close-day {500}.
        api = await apiCloseDay(t);
        await runner.execute({ tenantId, terminalId: t, operationId: api.id });
        p2 = await pay(t, 500);
        await closeDay();
      };
      const day = await settle(t, '2026-05-11');
      expect(await day.waitUntilFinished(h.events, 20_000)).toMatchObject({ status: 'COMPLETED', hasDiscrepancies: false });
      const s = await settlementOf(t, '2026-05-11');
      expect(s).toMatchObject({ ourTotals: { net: 500 }, terminalTotals: { net: 500 }, discrepancies: [] });
      expect(s.batches).toEqual([
        expect.objectContaining({ closeDayOperationId: api!.id, closedBy: 'operations_api', operations: 1, discrepancies: 0 }),
        expect.objectContaining({ closeDayOperationId: s.operationId, closedBy: 'settlement', operations: 1, discrepancies: 0 }),
      ]);
      const marked = await h.owner.terminalOperation.findMany({ where: { id: { in: [p1.id, p2!.id, api!.id] } }, select: { settlementId: true } });
      expect(marked).toEqual([{ settlementId: s.id }, { settlementId: s.id }, { settlementId: s.id }]);

      // The next day reconciles its own batch only: the API close-day is not a boundary of it again.
      runner.around = (_ref, closeDay) => closeDay();
      await pay(t, 700);
      const next = await settle(t, '2026-05-12');
      expect(await next.waitUntilFinished(h.events, 20_000)).toMatchObject({ status: 'COMPLETED', hasDiscrepancies: false });
      const n = await settlementOf(t, '2026-05-12');
      expect(n).toMatchObject({ ourTotals: { net: 700 }, terminalTotals: { net: 700 } });
      expect(n.batches).toHaveLength(1);
    }, 30_000);

    it("created before the settlement's close-day but run on the terminal after it: the next settlement's batch, not this one's", async () => {
      const t = await terminal();
      const p1 = await pay(t, 1000);
      let api: { id: string } | undefined;
      let p2: Awaited<ReturnType<typeof pay>> | undefined;
      runner.around = async (ref, closeDay) => {
        if (ref.operationId === api?.id) return closeDay();
        // A close-day through the operations API committed just after the settlement's busy check (so it did not keep it
        // from sending its own), created a moment before the settlement's close-day; it reaches the terminal second.
        const own = await h.owner.terminalOperation.findUniqueOrThrow({ where: { id: ref.operationId } });
        api = await h.owner.terminalOperation.create({
          data: {
            tenantId,
            terminalId: t,
            storeId,
            type: 'SETTLEMENT',
            state: 'PENDING',
            idempotencyKey: `api-${randomBytes(6).toString('hex')}`,
            requestHash: 'h',
            createdAt: new Date(own.createdAt.getTime() - 1),
          },
        });
        await closeDay(); // the settlement's close-day: {1000}
        p2 = await pay(t, 500);
        await runner.execute({ tenantId, terminalId: t, operationId: api.id }); // the API's: {500}
      };
      const day = await settle(t, '2026-05-13');
      expect(await day.waitUntilFinished(h.events, 20_000)).toMatchObject({ status: 'COMPLETED', hasDiscrepancies: false });
      const s = await settlementOf(t, '2026-05-13');
      expect(s).toMatchObject({ ourTotals: { net: 1000 }, terminalTotals: { net: 1000 }, discrepancies: [] });
      expect(s.batches).toEqual([expect.objectContaining({ closeDayOperationId: s.operationId, closedBy: 'settlement', operations: 1 })]);
      expect(await h.owner.terminalOperation.findUniqueOrThrow({ where: { id: p1.id } })).toMatchObject({ settlementId: s.id });
      expect(await h.owner.terminalOperation.findUniqueOrThrow({ where: { id: api!.id } })).toMatchObject({ state: 'APPROVED', settlementId: null });

      // The next settlement reconciles the API close-day's batch {500} on its own, then its own {700}.
      runner.around = (_ref, closeDay) => closeDay();
      await pay(t, 700);
      const next = await settle(t, '2026-05-14');
      expect(await next.waitUntilFinished(h.events, 20_000)).toMatchObject({ status: 'COMPLETED', hasDiscrepancies: false });
      const n = await settlementOf(t, '2026-05-14');
      expect(n).toMatchObject({ ourTotals: { net: 700 }, terminalTotals: { net: 700 }, discrepancies: [] });
      expect(n.batches).toEqual([
        expect.objectContaining({ closeDayOperationId: api!.id, closedBy: 'operations_api', operations: 1, discrepancies: 0 }),
        expect.objectContaining({ closeDayOperationId: n.operationId, closedBy: 'settlement', operations: 1, discrepancies: 0 }),
      ]);
      expect(await h.owner.terminalOperation.findUniqueOrThrow({ where: { id: p2!.id } })).toMatchObject({ settlementId: n.id });
    }, 30_000);
  });

  describe('a stale run of a settlement another run finished', () => {
    /**
     * A stale run whose close-day is approved but whose runner call outlives the deadline (the job looks lost, `held`
     * until released), and a duplicate run that completes the settlement meanwhile: the stale one then reports the
     * settlement COMPLETED (skipped) and writes nothing on it.
     */
    async function expectStaleRunOutlivedByDuplicate(t: string, held: ReturnType<typeof gate>, businessDate: string, staleData: Parameters<typeof settle>[2]) {
      let calls = 0;
      runner.around = async (_ref, closeDay) => {
        if (++calls > 1) return closeDay();
        await closeDay();
        await held.pass();
        throw new RunnerUnavailable('TIMEOUT', 'the close-day is still running after the deadline');
      };
      const stale = await settle(t, businessDate, staleData, `${t}-stale`);
      await waitFor(() => held.reached, { what: "the stale run's close-day answered" });
      const duplicate = await settle(t, businessDate, {}, `${t}-duplicate`);
      expect(await duplicate.waitUntilFinished(h.events, 20_000)).toMatchObject({ status: 'COMPLETED', hasDiscrepancies: false });
      held.open();
      expect(await stale.waitUntilFinished(h.events, 20_000)).toMatchObject({ status: 'COMPLETED', skipped: true });
      expect(await settlementOf(t, businessDate)).toMatchObject({ status: 'COMPLETED', error: null });
    }

    it('deferred after the settlement COMPLETED: no error is stamped on it, and the run reports it COMPLETED', async () => {
      const t = await terminal();
      await pay(t, 500);
      const held = gate();
      await expectStaleRunOutlivedByDuplicate(t, held, '2026-05-08', {});
    }, 30_000);

    it('giving up after the settlement COMPLETED: the run reports it COMPLETED, not FAILED', async () => {
      const t = await terminal();
      await pay(t, 500);
      const held = gate();
      await expectStaleRunOutlivedByDuplicate(t, held, '2026-05-09', { firstAttemptAt: TWO_HOURS_AGO() });
    }, 30_000);

    it('completing after the settlement FAILED: the run reports it FAILED, not COMPLETED', async () => {
      const t = await terminal();
      await pay(t, 500);
      const held = gate();
      let calls = 0;
      runner.around = async (_ref, closeDay) => {
        // The stale run is held before the terminal is reached; the duplicate finds the terminal busy with it and gives up.
        if (++calls > 1) throw new RunnerUnavailable('TERMINAL_BUSY', 'the terminal is running another command');
        await held.pass();
        await closeDay();
      };
      const stale = await settle(t, '2026-05-10', {}, `${t}-stale`);
      await waitFor(() => held.reached, { what: 'the stale run at its terminal' });
      const duplicate = await settle(t, '2026-05-10', { firstAttemptAt: TWO_HOURS_AGO() }, `${t}-duplicate`);
      expect(await duplicate.waitUntilFinished(h.events, 20_000)).toMatchObject({ status: 'FAILED' });
      held.open();
      expect(await stale.waitUntilFinished(h.events, 20_000)).toMatchObject({ status: 'FAILED', skipped: true });
      expect(await settlementOf(t, '2026-05-10')).toMatchObject({ status: 'FAILED', error: { code: 'TERMINAL_BUSY' } });
    }, 30_000);
  });
});
