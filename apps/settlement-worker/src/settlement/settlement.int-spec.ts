import { randomBytes } from 'node:crypto';

import { Queue, QueueEvents, Worker } from 'bullmq';

import type { Database } from '@payorch/db';
import type { JobData } from '@payorch/domain';
import type { OperationOutcome, TerminalDriver } from '@payorch/drivers';
import { duplexTransport, TillSession } from '@payorch/joinproto';
import { OperationExecutor, recoverOperation } from '@payorch/operations';
import { localTimeOf, manualJobId, scheduleRunKey, schedulerIdOf, settlementJobId, settlementKeys } from '@payorch/settlement';
import { freePort, waitFor } from '@payorch/testing';
import { JoinprotoTerminalSimulator } from '@payorch/testing/joinproto-sim';

import { DATABASE, LOGGER } from '../tokens';
import { DriverSettlementRunner } from './testing/driver-runner.testing';
import { ScheduleSyncService } from './schedule-sync.service';
import type { SettlementOperationRef, SettlementRunner } from './settlement-runner';
import { SETTLEMENT_METRICS } from './settlement-metrics';
import { SettlementProcessor } from './settlement.processor';
import { SettlementService } from './settlement.service';
import { TENANT_SLOTS } from './settlement.tokens';
import { TenantSlots } from './tenant-slots';
import { FakeSettlementRunner } from './testing/fake-runner.testing';
import { SettlementHarness } from './testing/settlement-harness.testing';
import { testQueueOptions } from '../testing/worker-config.testing';

/** Fake fleet for the terminals registered in it, real drivers against simulators for the rest. */
class RoutingRunner implements SettlementRunner {
  readonly fakeTerminals = new Set<string>();
  constructor(
    readonly direct: DriverSettlementRunner,
    readonly fake: FakeSettlementRunner,
  ) {}
  execute(ref: SettlementOperationRef) {
    return this.fakeTerminals.has(ref.terminalId) ? this.fake.execute(ref) : this.direct.execute(ref);
  }
  recover(ref: SettlementOperationRef) {
    return this.fakeTerminals.has(ref.terminalId) ? this.fake.recover() : this.direct.recover(ref);
  }
}

describe('settlement worker (real BullMQ, Redis, PostgreSQL, Joinproto simulator)', () => {
  let hang = false;
  const h = new SettlementHarness({
    prefix: 'settle',
    env: {
      SETTLEMENT_CONCURRENCY: '12',
      SETTLEMENT_TENANT_CONCURRENCY: '8',
      SETTLEMENT_RETRY_BASE_MS: '100',
      SETTLEMENT_RETRY_MAX_MS: '300',
      SETTLEMENT_GIVE_UP_MS: '60000',
      SETTLEMENT_SYNC_INTERVAL_MS: '600000',
    },
    poolSize: 4,
    runner: (db) =>
      new RoutingRunner(
        new DriverSettlementRunner(db, { driverOptions: { commandTimeoutMs: 3000 }, connectTimeoutMs: 500, hangAfterSend: () => hang }),
        new FakeSettlementRunner(db, 3),
      ),
  });
  const sims: JoinprotoTerminalSimulator[] = [];
  h.onStop(() => Promise.all(sims.map((s) => s.close())));
  let tenantId: string;
  let moscowStore: string;
  let newYorkStore: string;

  beforeAll(async () => {
    ({ tenantId } = await h.start());
    moscowStore = await h.store('Moscow', 'Europe/Moscow');
    newYorkStore = await h.store('New York', 'America/New_York');
  }, 60_000);

  afterAll(() => h.stop());

  async function simTerminal(options: ConstructorParameters<typeof JoinprotoTerminalSimulator>[0] = {}, port?: number) {
    const sim = new JoinprotoTerminalSimulator(options);
    sims.push(sim);
    const address = port === undefined ? await sim.listen(0) : { port };
    const terminal = await h.terminal(moscowStore, `T${sims.length}`, { port: address.port });
    return { sim, terminal };
  }

  /** A purchase made on the simulator and recorded on our side as approved. */
  async function pay(sim: JoinprotoTerminalSimulator, terminalId: string, amount: number, state: 'APPROVED' | 'IN_PROGRESS' = 'APPROVED') {
    const port = (await h.owner.terminal.findUniqueOrThrow({ where: { id: terminalId } })).connection as { port: number };
    const till = new TillSession({ transport: duplexTransport((await import('node:net')).connect(port.port, '127.0.0.1')) });
    await sim.ready();
    const outcome = await till.execute({ type: 'PurchaseRequest', amount });
    till.close();
    const rrn = outcome.outcome === 'completed' ? outcome.result.rrn : undefined;
    return h.recordOperation(terminalId, moscowStore, amount, { state, rrn });
  }

  const run = (terminalId: string, businessDate = '2026-03-01') => h.run(terminalId, businessDate);

  const settlementOf = (terminalId: string) => h.owner.settlement.findFirst({ where: { terminalId }, orderBy: { createdAt: 'desc' } });

  it('closes the day and reconciles with our recorded operations; operations are marked settled', async () => {
    const { sim, terminal } = await simTerminal();
    const op1 = await pay(sim, terminal.id, 1500);
    const op2 = await pay(sim, terminal.id, 2500);
    const job = await run(terminal.id);
    const result = await job.waitUntilFinished(h.events, 20_000);
    expect(result).toMatchObject({ status: 'COMPLETED', hasDiscrepancies: false });
    const s = (await settlementOf(terminal.id))!;
    expect(s).toMatchObject({ status: 'COMPLETED', hasDiscrepancies: false, discrepancies: [] });
    expect(s.terminalTotals).toMatchObject({ buckets: { debit: { count: 2, amount: 4000 } }, net: 4000 });
    expect(s.ourTotals).toMatchObject({ buckets: { debit: { count: 2, amount: 4000 } }, net: 4000 });
    const ops = await h.owner.terminalOperation.findMany({ where: { id: { in: [op1.id, op2.id] } } });
    expect(ops.map((o) => o.settlementId)).toEqual([s.id, s.id]);
    const close = await h.owner.terminalOperation.findUniqueOrThrow({ where: { id: s.operationId! } });
    expect(close).toMatchObject({ type: 'SETTLEMENT', state: 'APPROVED' });
    // The test runner drives the connector's executor: every state change of the close-day went through the
    // operation owner, with its OperationEvent and DomainEvent.
    const log = await h.owner.operationEvent.findMany({ where: { operationId: close.id }, orderBy: { createdAt: 'asc' } });
    expect(log.filter((e) => e.fromState !== e.toState).map((e) => [e.fromState, e.toState])).toEqual([
      [null, 'PENDING'],
      ['PENDING', 'SENT'],
      ['SENT', 'IN_PROGRESS'],
      ['IN_PROGRESS', 'APPROVED'],
    ]);
    expect((await h.owner.domainEvent.findMany({ where: { subjectId: close.id }, orderBy: { createdAt: 'asc' } })).map((e) => e.type)).toEqual([
      'operation.created',
      'operation.progress',
      'operation.progress',
      'operation.completed',
    ]);
    expect(await h.owner.domainEvent.findMany({ where: { subjectId: s.id }, select: { type: true } })).toEqual([{ type: 'settlement.completed' }]);
    // The same run key again: the settlement is not run twice.
    const again = await h.queue.add('settlement.run', job.data, { jobId: `again-${terminal.id}` });
    expect(await again.waitUntilFinished(h.events, 10_000)).toMatchObject({ status: 'COMPLETED', skipped: true });
  });

  it("runs an attempt's two transactions (prepare, complete) on the bare-driver path, none through Prisma", async () => {
    // Prisma's client was half of the worker's CPU per settlement (bench/settlement); Database.withTenantSql prepares each
    // statement once per connection and pipelines BEGIN, the tenant scope and COMMIT with the statements.
    const appDb = h.app.get<Database>(DATABASE);
    const counted = (method: 'withTenant' | 'withTenantSql') => {
      const original = appDb[method].bind(appDb) as (...args: unknown[]) => unknown;
      let calls = 0;
      const spy = jest.spyOn(appDb, method).mockImplementation(((...args: unknown[]) => {
        if (new Error().stack?.includes('settlement.service')) calls += 1;
        return original(...args);
      }) as never);
      return { calls: () => calls, restore: () => spy.mockRestore() };
    };
    const viaPrisma = counted('withTenant');
    const viaSql = counted('withTenantSql');
    try {
      const { sim, terminal } = await simTerminal();
      const paid = await pay(sim, terminal.id, 700);
      const job = await run(terminal.id);
      expect(await job.waitUntilFinished(h.events, 20_000)).toMatchObject({ status: 'COMPLETED', hasDiscrepancies: false });
      expect({ prisma: viaPrisma.calls(), sql: viaSql.calls() }).toEqual({ prisma: 0, sql: 2 });
      const s = (await settlementOf(terminal.id))!;
      expect(s).toMatchObject({ status: 'COMPLETED', attempts: 1, businessDate: new Date('2026-03-01T00:00:00Z'), progress: { step: 'done' } });
      expect((await h.owner.terminalOperation.findUniqueOrThrow({ where: { id: paid.id } })).settlementId).toBe(s.id);
    } finally {
      viaPrisma.restore();
      viaSql.restore();
    }
  });

  it('detects a discrepancy when the simulator journal differs from ours, and publishes settlement.discrepancy', async () => {
    const { sim, terminal } = await simTerminal();
    await pay(sim, terminal.id, 1000);
    const ours = await h.owner.terminalOperation.create({
      data: {
        tenantId,
        terminalId: terminal.id,
        storeId: moscowStore,
        type: 'REFUND',
        state: 'APPROVED',
        amount: 300n,
        idempotencyKey: randomBytes(8).toString('hex'),
        requestHash: 'h',
      },
    });
    const result = await (await run(terminal.id)).waitUntilFinished(h.events, 20_000);
    expect(result).toMatchObject({ status: 'COMPLETED', hasDiscrepancies: true });
    const s = (await settlementOf(terminal.id))!;
    expect(s.discrepancies).toEqual([
      { batch: s.operationId, kind: 'count_mismatch', bucket: 'credit', ours: 1, terminal: 0, direction: 'missing_on_terminal' },
      { batch: s.operationId, kind: 'amount_mismatch', bucket: 'credit', ours: 300, terminal: 0 },
    ]);
    expect((await h.owner.terminalOperation.findUniqueOrThrow({ where: { id: ours.id } })).settlementId).toBe(s.id);
    const types = (await h.owner.domainEvent.findMany({ where: { subjectId: s.id }, orderBy: { createdAt: 'asc' } })).map((e) => e.type);
    expect(types).toEqual(['settlement.completed', 'settlement.discrepancy']);
  });

  it('retries an offline terminal with backoff, then succeeds once it comes online', async () => {
    const port = await freePort();
    const { sim, terminal } = await simTerminal({}, port);
    const job = await run(terminal.id);
    const deferred = await waitFor(
      async () => {
        const s = await settlementOf(terminal.id);
        return s && (s.error as { code?: string; retries?: number } | null)?.retries ? s : null;
      },
      { timeoutMs: 20_000, intervalMs: 50, what: 'an offline deferral' },
    );
    expect(deferred).toMatchObject({ status: 'RUNNING', error: { code: 'TERMINAL_OFFLINE' } });
    await sim.listen(port);
    expect(await job.waitUntilFinished(h.events, 20_000)).toMatchObject({ status: 'COMPLETED' });
    const close = await h.owner.terminalOperation.findMany({ where: { terminalId: terminal.id, type: 'SETTLEMENT' } });
    expect(close.map((o) => o.state)).toEqual(['APPROVED']);
  });

  it('a payment in progress on the terminal delays the settlement, which then includes it', async () => {
    const { sim, terminal } = await simTerminal();
    const payment = await pay(sim, terminal.id, 4200, 'IN_PROGRESS');
    const job = await run(terminal.id);
    await waitFor(
      async () => {
        const s = await settlementOf(terminal.id);
        return (s?.error as { code?: string } | null)?.code === 'TERMINAL_BUSY';
      },
      { timeoutMs: 20_000, intervalMs: 50, what: 'a busy deferral' },
    );
    expect(await h.owner.terminalOperation.count({ where: { terminalId: terminal.id, type: 'SETTLEMENT' } })).toBe(0);
    await h.owner.terminalOperation.update({ where: { id: payment.id }, data: { state: 'APPROVED' } });
    expect(await job.waitUntilFinished(h.events, 20_000)).toMatchObject({ status: 'COMPLETED', hasDiscrepancies: false });
    expect((await h.owner.terminalOperation.findUniqueOrThrow({ where: { id: payment.id } })).settlementId).not.toBeNull();
    // The deferral is history once the close-day succeeded.
    expect(await settlementOf(terminal.id)).toMatchObject({ status: 'COMPLETED', error: null, startedAt: expect.any(Date) });
  });

  it('a manual close-day (row created PENDING by the gateway) records when it started', async () => {
    const { sim, terminal } = await simTerminal();
    await pay(sim, terminal.id, 900);
    const runKey = `manual:${randomBytes(4).toString('hex')}`;
    await h.owner.settlement.create({
      data: {
        tenantId,
        terminalId: terminal.id,
        storeId: moscowStore,
        businessDate: new Date('2026-03-09T00:00:00Z'),
        runKey,
        trigger: 'manual',
        status: 'PENDING',
      },
    });
    const data: JobData['settlement.run'] = { tenantId, terminalId: terminal.id, businessDate: '2026-03-09', runKey, trigger: 'manual' };
    const job = await h.queue.add('settlement.run', data, { jobId: `manual-${runKey.slice(7)}` });
    expect(await job.waitUntilFinished(h.events, 20_000)).toMatchObject({ status: 'COMPLETED' });
    const s = await h.owner.settlement.findFirstOrThrow({ where: { runKey } });
    expect(s.startedAt).toBeInstanceOf(Date);
    expect(s.startedAt!.getTime()).toBeLessThanOrEqual(s.completedAt!.getTime());
  });

  it("a job naming another terminal than its settlement's is refused: no close-day on either, the row stays the other terminal's", async () => {
    // Until 2026-12-07 the gateway queued such a job when an Idempotency-Key of terminal A's manual settlement came back
    // for terminal B after its replay record was gone: the run sent B the close-day and reconciled it, with B's
    // operations, into A's settlement; A's day never closed.
    const a = await simTerminal();
    const b = await simTerminal();
    const paidOnB = await pay(b.sim, b.terminal.id, 800);
    const runKey = `manual:${randomBytes(4).toString('hex')}`;
    const row = await h.owner.settlement.create({
      data: {
        tenantId,
        terminalId: a.terminal.id,
        storeId: moscowStore,
        businessDate: new Date('2026-03-10T00:00:00Z'),
        runKey,
        trigger: 'manual',
        status: 'PENDING',
      },
    });
    const data: JobData['settlement.run'] = { tenantId, terminalId: b.terminal.id, businessDate: '2026-03-10', runKey, trigger: 'manual' };
    const job = await h.queue.add('settlement.run', data, { jobId: manualJobId(b.terminal.id, runKey), removeOnFail: false });
    // Ended for good (UnrecoverableError), not retried: its data would name the wrong terminal again.
    await expect(job.waitUntilFinished(h.events, 20_000)).rejects.toThrow(/is terminal .*'s, not terminal .*'s: job refused, nothing sent/);
    expect(await job.getState()).toBe('failed');
    expect(await h.owner.terminalOperation.count({ where: { terminalId: { in: [a.terminal.id, b.terminal.id] }, type: 'SETTLEMENT' } })).toBe(0);
    expect(await h.owner.terminalOperation.findUniqueOrThrow({ where: { id: paidOnB.id } })).toMatchObject({ settlementId: null });
    expect(await h.owner.settlement.findUniqueOrThrow({ where: { id: row.id } })).toEqual(row);
  });

  it('a tenant at its limit: the job is deferred before anything is written, and runs once a slot frees', async () => {
    const { sim, terminal } = await simTerminal();
    await pay(sim, terminal.id, 700);
    const slots = new TenantSlots(h.redis, h.config.REDIS_KEY_PREFIX, h.config.SETTLEMENT_TENANT_CONCURRENCY);
    const holders = Array.from({ length: h.config.SETTLEMENT_TENANT_CONCURRENCY }, (_, i) => `holder-${i}`);
    for (const holder of holders) expect(await slots.acquire(tenantId, holder)).toBe(true);
    const job = await run(terminal.id, '2026-03-11');
    await waitFor(async () => (await job.getState()) === 'delayed' && (await h.queue.getJob(job.id!))!.attemptsStarted > 0, {
      timeoutMs: 20_000,
      intervalMs: 20,
      what: 'a tenant-limit deferral',
    });
    // The fairness check comes first: no settlement, no close-day operation, no attempt counted, and the
    // give-up window has not started.
    expect((await h.queue.getJob(job.id!))!.data.firstAttemptAt).toBeUndefined();
    expect(await h.owner.settlement.count({ where: { terminalId: terminal.id } })).toBe(0);
    expect(await h.owner.terminalOperation.count({ where: { terminalId: terminal.id, type: 'SETTLEMENT' } })).toBe(0);
    // Deferred jobs wait per tenant, oldest first: the next slot freed hands this one back to be woken (the
    // service promotes it) instead of leaving it to its fallback delay.
    expect(await h.redis.zscore(settlementKeys(h.config.REDIS_KEY_PREFIX).tenantWaiting(tenantId), job.id!)).not.toBeNull();
    const [first, ...rest] = holders;
    expect(await slots.release(tenantId, first!)).toBe(job.id);
    for (const holder of rest) expect(await slots.release(tenantId, holder)).toBeNull();
    expect(await job.waitUntilFinished(h.events, 20_000)).toMatchObject({ status: 'COMPLETED', hasDiscrepancies: false });
    expect(await settlementOf(terminal.id)).toMatchObject({ status: 'COMPLETED', attempts: 1, error: null });
  });

  it('a worker killed after sending the close-day: the next worker recovers it (95) and never closes twice', async () => {
    let closeDays = 0;
    const { sim, terminal } = await simTerminal({
      dropResponse: (request) => {
        if (request.type === 'CloseDayRequest') closeDays += 1;
        return false;
      },
    });
    await pay(sim, terminal.id, 700);
    // The close-day's answer is held on the terminal until the first worker is "killed" and the fault lifted: it then
    // reaches the dead worker's execution, which must not go on to complete the settlement.
    sim.hold.at('answer');
    const service = h.app.get(SettlementService);
    const name = `kill-${randomBytes(3).toString('hex')}`;
    const opts = testQueueOptions(h.config);
    const killQueue = new Queue(name, opts);
    const killEvents = new QueueEvents(name, opts);
    await killEvents.waitUntilReady();
    const workerOpts = { ...opts, lockDuration: 1000, stalledInterval: 300 };
    hang = true;
    const first = new Worker(name, (job, token) => service.run(job, token), workerOpts);
    const data: JobData['settlement.run'] = {
      tenantId,
      terminalId: terminal.id,
      businessDate: '2026-03-02',
      runKey: scheduleRunKey(terminal.id, '2026-03-02'),
      trigger: 'schedule',
    };
    const job = await killQueue.add('settlement.run', data, { jobId: settlementJobId(terminal.id, '2026-03-02') });
    const sent = await waitFor(
      async () => {
        const op = await h.owner.terminalOperation.findFirst({ where: { terminalId: terminal.id, type: 'SETTLEMENT' } });
        // Sent, answered, the answer lost with the runner: SENT, or IN_PROGRESS once the terminal's progress was stored.
        return op && ['SENT', 'IN_PROGRESS'].includes(op.state) && closeDays === 1 && sim.hold.reached('answer') ? op : null;
      },
      { timeoutMs: 20_000, intervalMs: 50, what: 'the close-day to be sent' },
    );
    await first.close(true); // killed: no completion, the lock is left to expire
    hang = false;
    sim.hold.release();
    const second = new Worker(name, (j, token) => service.run(j, token), workerOpts);
    try {
      expect(await job.waitUntilFinished(killEvents, 20_000)).toMatchObject({ status: 'COMPLETED', hasDiscrepancies: false });
      expect(closeDays).toBe(1);
      expect(await h.owner.terminalOperation.findUniqueOrThrow({ where: { id: sent.id } })).toMatchObject({ state: 'APPROVED' });
      expect((await killQueue.getJob(job.id!))?.data.step).toBe('done');
    } finally {
      await second.close();
      await killQueue.close();
      await killEvents.close();
    }
  });

  it('gives up after the configured window: FAILED and a settlement.failed event', async () => {
    const port = await freePort();
    const { terminal } = await simTerminal({}, port);
    const data: JobData['settlement.run'] = {
      tenantId,
      terminalId: terminal.id,
      businessDate: '2026-03-03',
      runKey: 'manual:give-up-1',
      trigger: 'manual',
      firstAttemptAt: new Date(Date.now() - 61_000).toISOString(),
    };
    const job = await h.queue.add('settlement.run', data, { jobId: 'settlement-give-up-1' });
    expect(await job.waitUntilFinished(h.events, 20_000)).toMatchObject({ status: 'FAILED' });
    const s = (await settlementOf(terminal.id))!;
    expect(s).toMatchObject({ status: 'FAILED', error: { code: 'TERMINAL_OFFLINE' } });
    expect(await h.owner.domainEvent.count({ where: { subjectId: s.id, type: 'settlement.failed' } })).toBe(1);
  });

  describe('the delay before a new close-day (product backoff: base 30 s)', () => {
    /**
     * The close-day's terminal as a script: each execute answers the next outcome through the real operation owner
     * (OperationExecutor), recovery answers `recovered` (default: nothing conclusive). A fresh SettlementService with the product's default
     * backoff (the app under test runs with a 100 ms base) on a queue of its own; each deferral records its delay.
     */
    async function scripted(outcomes: Array<{ sent: boolean; outcome: OperationOutcome }>, recovered: OperationOutcome = { state: 'unknown' }) {
      const executor = new OperationExecutor(h.db);
      const driver = (script: { sent: boolean; outcome: OperationOutcome }): TerminalDriver => ({
        protocol: 'JOINPROTO',
        execute: async (_command, hooks) => {
          if (script.sent) await hooks.beforeSend({});
          return script.outcome;
        },
        recover: async () => recovered,
        cancel: async () => 'not_running',
        terminalInfo: async () => ({}),
        close: async () => undefined,
      });
      const runner: SettlementRunner = {
        execute: async (ref) => void (await executor.execute(ref, driver(outcomes.shift()!))),
        recover: async (ref) => void (await recoverOperation(h.db, executor, driver({ sent: true, outcome: recovered }), ref)),
      };
      const productConfig = { ...h.config, SETTLEMENT_RETRY_BASE_MS: 30_000, SETTLEMENT_RETRY_MAX_MS: 600_000 };
      const service = new SettlementService(h.db, productConfig, h.app.get(LOGGER), runner, h.app.get(TENANT_SLOTS), h.app.get(SETTLEMENT_METRICS));
      const name = `redo-${randomBytes(3).toString('hex')}`;
      const opts = testQueueOptions(h.config);
      const redoQueue = new Queue(name, opts);
      const worker = new Worker(name, (job, token) => service.run(job, token), opts);
      const { terminal } = await simTerminal();
      const job = await redoQueue.add('settlement.run', {
        tenantId,
        terminalId: terminal.id,
        businessDate: '2026-03-05',
        runKey: scheduleRunKey(terminal.id, '2026-03-05'),
        trigger: 'schedule',
      } satisfies JobData['settlement.run']);
      /** The next deferral: the settlement's recorded error once it counts `retries` deferrals and the job waits. */
      const deferral = async (retries: number) => {
        const error = await waitFor(
          async () => {
            const e = (await settlementOf(terminal.id))?.error as { code: string; retries: number; retryInMs: number } | null;
            return e?.retries === retries && (await redoQueue.getJobState(job.id!)) === 'delayed' ? e : null;
          },
          { timeoutMs: 20_000, intervalMs: 50, what: `deferral ${retries}` },
        );
        return { code: error.code, retryInMs: error.retryInMs };
      };
      const closeDays = () => h.owner.terminalOperation.findMany({ where: { terminalId: terminal.id, type: 'SETTLEMENT' }, orderBy: { createdAt: 'asc' } });
      const attemptNow = async () => (await redoQueue.getJob(job.id!))!.promote();
      const close = async () => {
        await worker.close();
        await redoQueue.obliterate({ force: true });
        await redoQueue.close();
      };
      return { deferral, closeDays, attemptNow, close };
    }

    it('a close-day that provably did nothing (canceled with the link) gets a new one after 2 s, not 30 s; a second failure backs off', async () => {
      const canceled = { sent: true, outcome: { state: 'canceled', reason: 'the link dropped: canceled on the terminal' } as OperationOutcome };
      const run = await scripted([canceled, canceled]);
      try {
        expect(await run.deferral(1)).toEqual({ code: 'CLOSE_DAY_FAILED', retryInMs: 2_000 });
        await run.attemptNow();
        expect(await run.deferral(2)).toEqual({ code: 'CLOSE_DAY_FAILED', retryInMs: 60_000 });
        // One close-day per attempt, each final: nothing was re-sent.
        expect((await run.closeDays()).map((o) => o.state)).toEqual(['CANCELED', 'CANCELED']);
      } finally {
        await run.close();
      }
    });

    it('a close-day whose outcome is unknown is never re-sent and keeps the normal backoff (recovery decides)', async () => {
      const run = await scripted([{ sent: true, outcome: { state: 'unknown', reason: 'the link dropped after sending' } }]);
      try {
        expect(await run.deferral(1)).toEqual({ code: 'OUTCOME_UNKNOWN', retryInMs: 30_000 });
        await run.attemptNow();
        expect(await run.deferral(2)).toEqual({ code: 'OUTCOME_UNKNOWN', retryInMs: 60_000 });
        expect((await run.closeDays()).map((o) => o.state)).toEqual(['UNKNOWN']);
      } finally {
        await run.close();
      }
    });

    it('a close-day that recovery finds canceled on the terminal gets a new one after 2 s', async () => {
      const run = await scripted([{ sent: true, outcome: { state: 'unknown' } }], { state: 'canceled', reason: 'canceled on the terminal' });
      try {
        expect(await run.deferral(1)).toEqual({ code: 'OUTCOME_UNKNOWN', retryInMs: 30_000 });
        await run.attemptNow();
        expect(await run.deferral(2)).toEqual({ code: 'CLOSE_DAY_FAILED', retryInMs: 2_000 });
        expect((await run.closeDays()).map((o) => o.state)).toEqual(['CANCELED']);
      } finally {
        await run.close();
      }
    });
  });

  it('schedules fire at the right local time in two zones, and API changes re-sync without a restart', async () => {
    const t1 = await h.terminal(moscowStore, 'M');
    const t2 = await h.terminal(newYorkStore, 'NY');
    const moscow = await h.owner.settlementSchedule.create({ data: { tenantId, storeId: moscowStore, localTime: '23:30' } });
    const ny = await h.owner.settlementSchedule.create({ data: { tenantId, terminalId: t2.id, localTime: '02:15' } });
    const sync = h.app.get(ScheduleSyncService);
    const worker = h.app.get(SettlementProcessor).worker;
    await worker.pause(true); // the fired runs are only inspected here, not executed
    expect(await sync.sync()).toMatchObject({ schedules: 2, upserted: 2 });
    expect(await sync.sync()).toMatchObject({ upserted: 0, removed: 0 });
    const m = (await h.queue.getJobScheduler(schedulerIdOf(moscow.id)))!;
    const n = (await h.queue.getJobScheduler(schedulerIdOf(ny.id)))!;
    expect([m.pattern, m.tz, n.pattern, n.tz]).toEqual(['30 23 * * *', 'Europe/Moscow', '15 2 * * *', 'America/New_York']);
    for (const [s, tz, local] of [
      [m, 'Europe/Moscow', '23:30'],
      [n, 'America/New_York', '02:15'],
    ] as const) {
      expect(localTimeOf(new Date(s.next!), tz)).toBe(local);
      expect(s.next! - Date.now()).toBeGreaterThan(0);
      expect(s.next! - Date.now()).toBeLessThanOrEqual(24 * 3600 * 1000);
    }
    // Firing: a store schedule covers the store's terminals; the business date is the store's local date
    // (02:15 in New York closes the previous business day).
    expect(await sync.fire({ tenantId, scheduleId: moscow.id }, new Date('2026-03-01T20:30:00Z'))).toMatchObject({ businessDate: '2026-03-01' });
    expect(await sync.fire({ tenantId, scheduleId: ny.id }, new Date('2026-03-02T07:15:00Z'))).toMatchObject({ enqueued: 1, businessDate: '2026-03-01' });
    expect(await h.queue.getJob(settlementJobId(t1.id, '2026-03-01'))).toBeDefined();
    expect((await h.queue.getJob(settlementJobId(t2.id, '2026-03-01')))?.data).toMatchObject({
      terminalId: t2.id,
      runKey: scheduleRunKey(t2.id, '2026-03-01'),
    });
    await h.queue.remove(settlementJobId(t1.id, '2026-03-01'));
    await h.queue.remove(settlementJobId(t2.id, '2026-03-01'));
    worker.resume();

    // A change through the API: the gateway updates the row and publishes a notification.
    await h.owner.settlementSchedule.update({ where: { id: moscow.id }, data: { localTime: '21:05' } });
    await h.owner.settlementSchedule.delete({ where: { id: ny.id } });
    await h.redis.publish(settlementKeys(h.config.REDIS_KEY_PREFIX).schedulesChanged, moscow.id);
    await waitFor(
      async () => (await h.queue.getJobScheduler(schedulerIdOf(moscow.id)))?.pattern === '5 21 * * *' && !(await h.queue.getJobScheduler(schedulerIdOf(ny.id))),
      {
        timeoutMs: 20_000,
        intervalMs: 50,
        what: 'the re-sync',
      },
    );
  });

  it('500 terminals of two tenants settle with bounded concurrency per worker and per tenant', async () => {
    const other = (await h.owner.tenant.create({ data: { name: 'Other chain' } })).id;
    const otherStore = (await h.owner.store.create({ data: { tenantId: other, name: 'S', timeZone: 'Asia/Tokyo' } })).id;
    const make = async (tenant: string, store: string, count: number) => {
      const rows = Array.from({ length: count }, (_, i) => ({
        tenantId: tenant,
        storeId: store,
        name: `F${i}`,
        protocol: 'JOINPROTO' as const,
        connection: { kind: 'tcp', host: '127.0.0.1', port: 1 },
      }));
      const created = await h.owner.terminal.createManyAndReturn({ data: rows, select: { id: true } });
      created.forEach((t) => h.runner.fakeTerminals.add(t.id));
      return created.map((t) => t.id);
    };
    const big = await make(tenantId, moscowStore, 400);
    const small = await make(other, otherStore, 100);
    const jobs = [...big.map((id) => ({ tenant: tenantId, id })), ...small.map((id) => ({ tenant: other, id }))].map(({ tenant, id }) => ({
      name: 'settlement.run',
      data: {
        tenantId: tenant,
        terminalId: id,
        businessDate: '2026-03-05',
        runKey: scheduleRunKey(id, '2026-03-05'),
        trigger: 'schedule',
      } as JobData['settlement.run'],
      opts: { jobId: settlementJobId(id, '2026-03-05') },
    }));
    await h.queue.addBulk(jobs);
    let completed = 0;
    await waitFor(async () => (completed = await h.owner.settlement.count({ where: { businessDate: new Date('2026-03-05'), status: 'COMPLETED' } })) === 500, {
      timeoutMs: 120_000,
      intervalMs: 100,
      what: () => `500 completed settlements (${completed} completed)`,
    });
    const fake = h.runner.fake;
    expect(fake.executed.length).toBe(500);
    expect(fake.maxRunning).toBeLessThanOrEqual(12);
    expect(fake.maxByTenant.get(tenantId)).toBeLessThanOrEqual(8);
    expect(fake.maxByTenant.get(other)).toBeLessThanOrEqual(8);
    // Fairness: the small tenant is not starved behind the big one's 400 jobs queued first.
    const lastSmall = Math.max(...small.map((id) => fake.finishedAt.get(id)!));
    const lastBig = Math.max(...big.map((id) => fake.finishedAt.get(id)!));
    expect(lastSmall).toBeLessThan(lastBig);
  }, 150_000);
});
