import { randomBytes } from 'node:crypto';

import { Worker } from 'bullmq';

import type { JobData } from '@payorch/domain';
import { createLogger, createMetricsRegistry } from '@payorch/logging';
import { scheduleRunKey } from '@payorch/settlement';
import { waitFor } from '@payorch/testing';

import { testQueueOptions } from '../testing/worker-config.testing';
import { settlementMetrics } from './settlement-metrics';
import { RunnerUnavailable, type SettlementOperationRef, type SettlementRunner } from './settlement-runner';
import { SettlementService } from './settlement.service';
import { TenantSlots } from './tenant-slots';
import { LedgerSettlementRunner } from './testing/ledger-runner.testing';
import { SettlementHarness } from './testing/settlement-harness.testing';

/**
 * A settlement whose terminal stops taking new work after it was queued: disabled, or its agent revoked. No connector
 * holds such a terminal, so every command to it is TERMINAL_OFFLINE (`unreachable` below plays that part). A
 * settlement none of whose close-days was sent ends at its next attempt (TERMINAL_DISABLED / AGENT_REVOKED) instead
 * of waiting out the give-up window as offline; one whose close-day was sent keeps being recovered, never failed for
 * it. The terminals keep their batches in memory (LedgerSettlementRunner); the service, BullMQ, Redis and PostgreSQL
 * are real.
 */
describe('a settlement of a terminal that no longer takes new work (real BullMQ, Redis, PostgreSQL; a scripted terminal)', () => {
  const h = new SettlementHarness({
    prefix: 'inoperable',
    // The give-up window is far beyond every wait of these tests: a settlement that ends here ended for its terminal.
    env: { SETTLEMENT_RETRY_BASE_MS: '100', SETTLEMENT_RETRY_MAX_MS: '300', SETTLEMENT_GIVE_UP_MS: '3600000' },
    poolSize: 6,
    queueName: `inoperable-${randomBytes(3).toString('hex')}`,
  });
  let ledger: LedgerSettlementRunner;
  let metrics: ReturnType<typeof settlementMetrics>;
  let worker: Worker;
  let tenantId: string;
  let storeId: string;
  /** Terminals no connector holds: every command to them answers TERMINAL_OFFLINE, nothing is sent. */
  const unreachable = new Set<string>();
  /** Commands that reached a terminal (the ledger's executor ran them). */
  const reached: Array<{ kind: 'execute' | 'recover'; operationId: string }> = [];

  beforeAll(async () => {
    const { db, config, redis, queue } = await h.start();
    ledger = new LedgerSettlementRunner(db);
    const offline = (ref: SettlementOperationRef) => {
      if (unreachable.has(ref.terminalId)) throw new RunnerUnavailable('TERMINAL_OFFLINE', `no connector holds terminal ${ref.terminalId}`);
    };
    const runner: SettlementRunner = {
      execute: async (ref) => {
        offline(ref);
        reached.push({ kind: 'execute', operationId: ref.operationId });
        await ledger.execute(ref);
      },
      recover: async (ref) => {
        offline(ref);
        reached.push({ kind: 'recover', operationId: ref.operationId });
        await ledger.recover(ref);
      },
    };
    metrics = settlementMetrics(createMetricsRegistry('test'));
    const service = new SettlementService(
      db,
      config,
      createLogger({ name: 'test', level: 'silent' }),
      runner,
      new TenantSlots(redis, config.REDIS_KEY_PREFIX, config.SETTLEMENT_TENANT_CONCURRENCY),
      metrics,
      queue,
    );
    worker = new Worker(queue.name, (job, token) => service.run(job, token), { ...testQueueOptions(config), concurrency: 4 });
    tenantId = h.tenantId;
    storeId = await h.store('Main', 'Europe/Moscow');
  }, 60_000);

  afterAll(async () => {
    await worker?.close();
    await h.queue?.obliterate({ force: true }).catch(() => undefined);
    await h.stop();
  });

  beforeEach(() => {
    ledger.around = (_ref, closeDay) => closeDay();
  });

  const terminal = async (agentId?: string) =>
    (
      await h.owner.terminal.create({
        data: {
          tenantId,
          storeId,
          agentId,
          name: `T-${randomBytes(3).toString('hex')}`,
          protocol: 'JOINPROTO',
          connection: { kind: 'tcp', host: '127.0.0.1', port: 1 },
        },
      })
    ).id;
  /** What PATCH /v1/terminals/{id} {"disabled": true} writes; the connector then holds the terminal no more. */
  const disable = async (terminalId: string) => {
    await h.owner.terminal.update({ where: { id: terminalId }, data: { status: 'DISABLED' } });
    unreachable.add(terminalId);
  };
  const enable = async (terminalId: string) => {
    await h.owner.terminal.update({ where: { id: terminalId }, data: { status: 'UNKNOWN' } });
    unreachable.delete(terminalId);
  };

  /** A purchase approved on the terminal (its batch) and recorded on our side. */
  async function pay(terminalId: string, amount: number) {
    ledger.pay(terminalId, amount);
    return h.recordOperation(terminalId, storeId, amount);
  }

  function settle(terminalId: string, businessDate: string) {
    const data: JobData['settlement.run'] = { tenantId, terminalId, businessDate, runKey: scheduleRunKey(terminalId, businessDate), trigger: 'schedule' };
    return h.queue.add('settlement.run', data, { jobId: `${terminalId}-${businessDate}` });
  }

  const settlementOf = (terminalId: string, businessDate: string) =>
    h.owner.settlement.findUnique({ where: { tenantId_runKey: { tenantId, runKey: scheduleRunKey(terminalId, businessDate) } } });
  const deferral = (s: { error: unknown } | null) => s?.error as { code?: string; retries?: number } | null | undefined;
  const closeDays = (terminalId: string) => h.owner.terminalOperation.findMany({ where: { terminalId, type: 'SETTLEMENT' }, orderBy: { createdAt: 'asc' } });
  const failuresCounted = async () => Object.fromEntries((await metrics.failures.get()).values.map((v) => [v.labels.code, v.value]));

  it('deferred as offline, then its terminal disabled: FAILED TERMINAL_DISABLED at the next attempt, its close-day (never sent) FAILED', async () => {
    const t = await terminal();
    const purchase = await pay(t, 1000);
    unreachable.add(t); // the agent is away: the close-day is created, never sent
    const job = await settle(t, '2026-06-01');
    await waitFor(async () => (deferral(await settlementOf(t, '2026-06-01'))?.retries ?? 0) >= 1, { timeoutMs: 20_000, what: 'an offline deferral' });
    expect(deferral(await settlementOf(t, '2026-06-01'))).toMatchObject({ code: 'TERMINAL_OFFLINE' });
    await disable(t);

    expect(await job.waitUntilFinished(h.events, 20_000)).toMatchObject({ status: 'FAILED', code: 'TERMINAL_DISABLED' });
    const s = (await settlementOf(t, '2026-06-01'))!;
    expect(s).toMatchObject({ status: 'FAILED', error: { code: 'TERMINAL_DISABLED', message: expect.stringContaining('no close-day was sent') } });
    expect(s.completedAt).toBeInstanceOf(Date);
    // The close-day the settlement had created (PENDING, never claimed) is failed by the operation owner, with its events.
    const [close, ...more] = await closeDays(t);
    expect(more).toEqual([]);
    expect(close).toMatchObject({ id: s.operationId, state: 'FAILED', error: { code: 'TERMINAL_DISABLED' }, sentAt: null, completedAt: expect.any(Date) });
    const log = await h.owner.operationEvent.findMany({ where: { operationId: close!.id }, orderBy: { createdAt: 'asc' } });
    expect(log.map((e) => [e.fromState, e.toState])).toEqual([
      [null, 'PENDING'],
      ['PENDING', 'FAILED'],
    ]);
    expect(await h.owner.domainEvent.count({ where: { subjectId: close!.id, type: 'operation.completed' } })).toBe(1);
    expect(await h.owner.domainEvent.findMany({ where: { subjectId: s.id }, select: { type: true } })).toEqual([{ type: 'settlement.failed' }]);
    // Nothing reached the terminal, and the day's operations wait for the next settlement.
    expect(reached.filter((r) => r.operationId === close!.id)).toEqual([]);
    expect(await h.owner.terminalOperation.findUniqueOrThrow({ where: { id: purchase.id } })).toMatchObject({ settlementId: null });
    expect(await failuresCounted()).toMatchObject({ TERMINAL_DISABLED: 1 });

    // Enabled again, the next settlement closes the whole open batch.
    await enable(t);
    expect(await (await settle(t, '2026-06-02')).waitUntilFinished(h.events, 20_000)).toMatchObject({ status: 'COMPLETED', hasDiscrepancies: false });
    expect(await settlementOf(t, '2026-06-02')).toMatchObject({ ourTotals: { net: 1000 }, terminalTotals: { net: 1000 } });
  }, 30_000);

  it('a terminal bridged by a revoked agent: FAILED AGENT_REVOKED at its first attempt, no close-day created', async () => {
    const agent = await h.owner.agent.create({ data: { tenantId, storeId, name: 'till PC', status: 'REVOKED' } });
    const t = await terminal(agent.id);
    unreachable.add(t); // a revoked agent cannot connect
    await pay(t, 700);
    const job = await settle(t, '2026-06-03');
    expect(await job.waitUntilFinished(h.events, 20_000)).toMatchObject({ status: 'FAILED', code: 'AGENT_REVOKED' });
    expect(await settlementOf(t, '2026-06-03')).toMatchObject({ status: 'FAILED', attempts: 1, operationId: null, error: { code: 'AGENT_REVOKED' } });
    expect(await closeDays(t)).toEqual([]);
    expect(await failuresCounted()).toMatchObject({ AGENT_REVOKED: 1 });
  }, 30_000);

  it('a close-day sent before the terminal was disabled, its outcome unknown: recovered until it is known, never failed for the terminal', async () => {
    const t = await terminal();
    await pay(t, 1200);
    // The terminal closes {1200} and the answer is lost (UNKNOWN); the terminal is disabled right after.
    ledger.loseNextAnswer(t);
    ledger.around = async (_ref, closeDay) => {
      await closeDay();
      await disable(t);
    };
    const job = await settle(t, '2026-06-04');
    // Attempts go on, each asking recovery (offline while the terminal is disabled), none sending a second close-day.
    const stillRunning = await waitFor(
      async () => {
        const s = await settlementOf(t, '2026-06-04');
        return (deferral(s)?.retries ?? 0) >= 4 ? s : null;
      },
      { timeoutMs: 20_000, what: 'four deferrals' },
    );
    expect(stillRunning).toMatchObject({ status: 'RUNNING' });
    expect(['OUTCOME_UNKNOWN', 'TERMINAL_OFFLINE']).toContain(deferral(stillRunning)?.code);
    const [sent, ...more] = await closeDays(t);
    expect(more).toEqual([]);
    expect(sent).toMatchObject({ id: stillRunning!.operationId, state: 'UNKNOWN' });
    expect(reached.filter((r) => r.operationId === sent!.id).map((r) => r.kind)).toEqual(['execute']);

    // Enabled again: recovery reads the close-day's answer back, and the settlement reconciles the batch it closed.
    await enable(t);
    expect(await job.waitUntilFinished(h.events, 20_000)).toMatchObject({ status: 'COMPLETED', hasDiscrepancies: false });
    expect(await settlementOf(t, '2026-06-04')).toMatchObject({ status: 'COMPLETED', ourTotals: { net: 1200 }, terminalTotals: { net: 1200 }, error: null });
    expect(await h.owner.terminalOperation.findUniqueOrThrow({ where: { id: sent!.id } })).toMatchObject({ state: 'APPROVED' });
  }, 30_000);

  it('a close-day the terminal answered as it was disabled: reconciled (COMPLETED), not failed', async () => {
    const t = await terminal();
    await pay(t, 800);
    ledger.around = async (_ref, closeDay) => {
      await closeDay(); // approved: the terminal closed {800}
      await disable(t);
      throw new RunnerUnavailable('TIMEOUT', 'the answer came after the deadline');
    };
    const job = await settle(t, '2026-06-05');
    expect(await job.waitUntilFinished(h.events, 20_000)).toMatchObject({ status: 'COMPLETED', hasDiscrepancies: false });
    expect(await settlementOf(t, '2026-06-05')).toMatchObject({ ourTotals: { net: 800 }, terminalTotals: { net: 800 }, error: null });
  }, 30_000);
});
