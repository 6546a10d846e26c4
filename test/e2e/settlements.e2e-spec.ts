import { randomBytes } from 'node:crypto';

import type { INestApplication } from '@nestjs/common';
import { Queue } from 'bullmq';

import { createWorkerApp } from '../../apps/settlement-worker/src/bootstrap';
import { DriverSettlementRunner } from '../../apps/settlement-worker/src/settlement/testing/driver-runner.testing';
import { loadConfig, workerConfigSchema } from '@payorch/config';
import { Database } from '@payorch/db';
import { QUEUES } from '@payorch/domain';
import { createLogger } from '@payorch/logging';
import { bullPrefix } from '@payorch/redis';
import { manualJobId, schedulerIdOf } from '@payorch/settlement';
import { waitFor } from '@payorch/testing';
import { JoinprotoTerminalSimulator } from '@payorch/testing/joinproto-sim';

import { GatewaySession, idem } from './support/gateway-session';

describe('settlements API with a running settlement worker and a Joinproto simulator', () => {
  const session = new GatewaySession();
  let worker: INestApplication;
  let workerDb: Database;
  let queue: Queue;
  let sim: JoinprotoTerminalSimulator;
  let auth: { Authorization: string };
  let otherAuth: { Authorization: string };
  let storeId: string;
  let terminalId: string;
  let simPort: number;

  beforeAll(async () => {
    await session.start();
    auth = { Authorization: `Bearer ${(await session.tenant()).apiKey}` };
    otherAuth = { Authorization: `Bearer ${(await session.tenant()).apiKey}` };
    const config = loadConfig('settlement-worker', workerConfigSchema, {
      DATABASE_APP_URL: session.testDb.appUrl,
      REDIS_URL: session.config.REDIS_URL,
      REDIS_KEY_PREFIX: session.config.REDIS_KEY_PREFIX,
      LOG_LEVEL: 'silent',
      PAYORCH_MASTER_KEY: `k1:${randomBytes(32).toString('base64')}`,
      SETTLEMENT_RETRY_BASE_MS: '100',
      SETTLEMENT_SYNC_INTERVAL_MS: '600000',
    });
    workerDb = Database.connect(session.testDb.appUrl, 2);
    worker = await createWorkerApp(config, createLogger({ name: 'test', level: 'silent' }), {
      settlementRunner: new DriverSettlementRunner(workerDb, { driverOptions: { commandTimeoutMs: 3000 } }),
    });
    await worker.init();
    queue = new Queue(QUEUES.settlement, { connection: { url: config.REDIS_URL }, prefix: bullPrefix(config.REDIS_KEY_PREFIX) });
    sim = new JoinprotoTerminalSimulator();
    const { port } = await sim.listen(0);
    simPort = port;
    storeId = (await session.http().post('/v1/stores').set(auth).set('Idempotency-Key', idem()).send({ name: 'Store, "Main"', timeZone: 'Europe/Moscow' })).body
      .id;
    const terminal = await session
      .http()
      .post('/v1/terminals')
      .set(auth)
      .set('Idempotency-Key', idem())
      .send({ name: 'T1', storeId, protocol: 'joinproto', connection: { kind: 'tcp', host: '127.0.0.1', port } });
    terminalId = terminal.body.id;
  });

  afterAll(async () => {
    await queue.close();
    await worker.close();
    await workerDb.close();
    await sim.close();
    await session.stop();
  });

  it('schedules: create per store, validate naming the field, update, delete; the worker picks changes up without a restart', async () => {
    const bad = await session.http().post('/v1/settlement-schedules').set(auth).set('Idempotency-Key', idem()).send({ storeId, localTime: '24:00' });
    expect(bad.status).toBe(400);
    expect(bad.body.error).toMatchObject({
      code: 'VALIDATION_FAILED',
      details: { issues: [{ field: 'localTime', message: 'must be "HH:MM" local time, 00:00–23:59' }] },
    });
    const both = await session
      .http()
      .post('/v1/settlement-schedules')
      .set(auth)
      .set('Idempotency-Key', idem())
      .send({ storeId, terminalId, localTime: '23:00' });
    expect(both.body.error.details.issues).toEqual([{ field: 'terminalId', message: 'give exactly one of storeId or terminalId' }]);

    const created = await session.http().post('/v1/settlement-schedules').set(auth).set('Idempotency-Key', idem()).send({ storeId, localTime: '23:30' });
    expect(created.status).toBe(201);
    expect(created.body).toMatchObject({ storeId, terminalId: null, localTime: '23:30', enabled: true, timeZone: 'Europe/Moscow' });
    const id = created.body.id as string;
    const scheduler = await waitFor(() => queue.getJobScheduler(schedulerIdOf(id)), { timeoutMs: 15_000, intervalMs: 50, what: 'the job scheduler' });
    expect([scheduler.pattern, scheduler.tz]).toEqual(['30 23 * * *', 'Europe/Moscow']);

    const updated = await session.http().patch(`/v1/settlement-schedules/${id}`).set(auth).set('Idempotency-Key', idem()).send({ localTime: '22:45' });
    expect(updated.body.localTime).toBe('22:45');
    await waitFor(async () => (await queue.getJobScheduler(schedulerIdOf(id)))?.pattern === '45 22 * * *', {
      timeoutMs: 15_000,
      intervalMs: 50,
      what: 'the new pattern',
    });

    expect((await session.http().get(`/v1/settlement-schedules/${id}`).set(otherAuth)).status).toBe(404);
    expect((await session.http().get('/v1/settlement-schedules').query({ storeId }).set(auth)).body.data.map((s: { id: string }) => s.id)).toEqual([id]);
    expect((await session.http().delete(`/v1/settlement-schedules/${id}`).set(auth).set('Idempotency-Key', idem())).status).toBe(204);
    await waitFor(async () => !(await queue.getJobScheduler(schedulerIdOf(id))), { timeoutMs: 15_000, intervalMs: 50, what: 'the scheduler removal' });
  });

  it('manual run: idempotent by Idempotency-Key, completes through the worker, and shows in list, summary and CSV', async () => {
    const key = idem();
    const first = await session
      .http()
      .post(`/v1/terminals/${terminalId}/settlements`)
      .set(auth)
      .set('Idempotency-Key', key)
      .send({ businessDate: '2026-03-01' });
    expect(first.status).toBe(202);
    expect(first.body).toMatchObject({ terminalId, storeId, status: 'pending', trigger: 'manual', runKey: `manual:${key}`, businessDate: '2026-03-01' });
    const again = await session
      .http()
      .post(`/v1/terminals/${terminalId}/settlements`)
      .set(auth)
      .set('Idempotency-Key', key)
      .send({ businessDate: '2026-03-01' });
    expect(again.body.id).toBe(first.body.id);

    const done = await waitFor(
      async () => {
        const res = await session.http().get(`/v1/settlements/${first.body.id}`).set(auth);
        return res.body.status === 'completed' ? res.body : null;
      },
      { timeoutMs: 15_000, intervalMs: 50, what: 'completion' },
    );
    expect(done).toMatchObject({
      hasDiscrepancies: false,
      discrepancies: [],
      terminalTotals: { net: 0 },
      ourTotals: { net: 0 },
      outcome: 'empty_day',
      error: null,
      batches: [{ closedBy: 'settlement', outcome: 'empty_day', operations: 0, discrepancies: 0 }],
    });
    expect(Date.parse(done.startedAt)).toBeLessThanOrEqual(Date.parse(done.finishedAt));
    expect(done.finishedAt).toBe(done.completedAt);
    expect(await session.owner.terminalOperation.count({ where: { terminalId, type: 'SETTLEMENT' } })).toBe(1);
    expect((await session.http().get(`/v1/settlements/${first.body.id}`).set(otherAuth)).status).toBe(404);

    const list = await session
      .http()
      .get('/v1/settlements')
      .query({ storeId, from: '2026-03-01', to: '2026-03-01', status: 'completed', hasDiscrepancies: 'false', limit: 1 })
      .set(auth);
    expect(list.body).toMatchObject({ data: [{ id: first.body.id }], nextCursor: null });
    expect((await session.http().get('/v1/settlements').query({ hasDiscrepancies: 'true' }).set(auth)).body.data).toEqual([]);
    expect((await session.http().get('/v1/settlements').query({ from: '2026-13-01' }).set(auth)).body.error.details.issues[0].field).toBe('from');

    const summary = await session.http().get('/v1/settlements/summary').query({ date: '2026-03-01' }).set(auth);
    const counts = {
      total: 1,
      completed: 1,
      failed: 0,
      pending: 0,
      withDiscrepancies: 0,
      batches: 1,
      batchesWithoutTerminalTotals: 0,
      ourNet: 0,
      terminalNet: 0,
      ourNetWithoutTerminalTotals: 0,
    };
    expect(summary.body).toEqual({ date: '2026-03-01', chain: counts, stores: [{ storeId, ...counts }] });

    const csv = await session.http().get('/v1/settlements/export.csv').query({ storeId }).set(auth);
    expect(csv.headers['content-type']).toMatch(/^text\/csv/);
    const lines = csv.text.split('\r\n');
    expect(lines[0]).toBe(
      'settlement_id,business_date,store_id,terminal_id,status,trigger,attempts,started_at,completed_at,our_count,our_net,terminal_count,terminal_net,has_discrepancies,discrepancy_count,discrepancies,error_code,batches,batches_without_terminal_totals,our_net_without_terminal_totals',
    );
    expect(lines[1]).toMatch(new RegExp(`^${first.body.id},2026-03-01,${storeId},${terminalId},completed,manual,1,`));
    expect(lines[1]).toMatch(/,0,0,0,0,false,0,,,1,0,0$/);
  });

  it('a terminal answering 915 closes the day: COMPLETED closed_with_mismatch, and the discrepancy report downloads as JSON and CSV', async () => {
    // Our side has an approved purchase the terminal never saw (a planted real difference).
    const planted = await session.owner.terminalOperation.create({
      data: {
        tenantId: (await session.owner.terminal.findUniqueOrThrow({ where: { id: terminalId } })).tenantId,
        terminalId,
        storeId,
        type: 'PURCHASE',
        state: 'APPROVED',
        amount: 700n,
        currency: 'RUB',
        rrn: '999999999999',
        idempotencyKey: idem(),
        requestHash: 'h',
        completedAt: new Date(),
      },
    });
    sim.closeDayMismatch = true;
    const run = await session
      .http()
      .post(`/v1/terminals/${terminalId}/settlements`)
      .set(auth)
      .set('Idempotency-Key', idem())
      .send({ businessDate: '2026-03-02' });
    expect(run.status).toBe(202);
    const done = await waitFor(
      async () => {
        const res = await session.http().get(`/v1/settlements/${run.body.id}`).set(auth);
        return res.body.status === 'completed' || res.body.status === 'failed' ? res.body : null;
      },
      { timeoutMs: 15_000, intervalMs: 50, what: 'the 915 settlement' },
    );
    sim.closeDayMismatch = false;
    const batch = done.operationId;
    expect(done).toMatchObject({ status: 'completed', outcome: 'closed_with_mismatch', error: null, hasDiscrepancies: true });
    const expected = [
      { batch, kind: 'count_mismatch', bucket: 'debit', ours: 1, terminal: 0, direction: 'missing_on_terminal' },
      { batch, kind: 'amount_mismatch', bucket: 'debit', ours: 700, terminal: 0 },
      { batch, kind: 'host_mismatch', detail: 'the terminal reported that its totals differ from the processing host' },
    ];
    const report = await session.http().get(`/v1/settlements/${run.body.id}/discrepancies`).set(auth);
    expect(report.status).toBe(200);
    expect(report.body).toMatchObject({ settlementId: run.body.id, status: 'completed', outcome: 'closed_with_mismatch', discrepancies: expected });
    expect(report.body.startedAt).not.toBeNull();
    expect(report.body.finishedAt).not.toBeNull();
    const csv = await session.http().get(`/v1/settlements/${run.body.id}/discrepancies.csv`).set(auth);
    expect(csv.headers['content-type']).toMatch(/^text\/csv/);
    const prefix = `${run.body.id},${terminalId},2026-03-02,${batch}`;
    expect(csv.text.split('\r\n')).toEqual([
      'settlement_id,terminal_id,business_date,batch,kind,bucket,direction,ours,terminal,amount,operation_id,rrn,reference,detail',
      `${prefix},count_mismatch,debit,missing_on_terminal,1,0,,,,,`,
      `${prefix},amount_mismatch,debit,,700,0,,,,,`,
      `${prefix},host_mismatch,,,,,,,,,the terminal reported that its totals differ from the processing host`,
      '',
    ]);
    expect((await session.owner.terminalOperation.findUniqueOrThrow({ where: { id: planted.id } })).settlementId).toBe(run.body.id);
    expect((await session.http().get(`/v1/settlements/${run.body.id}/discrepancies.csv`).set(otherAuth)).status).toBe(404);
  });

  it("an Idempotency-Key of one terminal's manual settlement reused for another once its replay record is gone: 409 IDEMPOTENCY_KEY_REUSED, nothing queued, the settlement unchanged", async () => {
    // Until 2026-12-07 the gateway answered the other terminal's settlement (202), and when that one was still PENDING
    // queued its run under this terminal: the worker closed this terminal's day into the other terminal's settlement.
    const other = await session
      .http()
      .post('/v1/terminals')
      .set(auth)
      .set('Idempotency-Key', idem())
      .send({ name: 'T2', storeId, protocol: 'joinproto', connection: { kind: 'tcp', host: '127.0.0.1', port: simPort } });
    expect(other.status).toBe(201);
    const otherId = other.body.id as string;
    const { tenantId } = await session.owner.terminal.findUniqueOrThrow({ where: { id: terminalId } });
    const reuse = async (key: string, settlementId: string) => {
      // The gateway's replay record is gone: expired after 24 h, or released by a request that failed after its insert.
      await session.owner.idempotencyRecord.deleteMany({ where: { tenantId, key } });
      const res = await session.http().post(`/v1/terminals/${otherId}/settlements`).set(auth).set('Idempotency-Key', key).send({ businessDate: '2026-03-05' });
      expect(res.status).toBe(409);
      expect(res.body.error).toMatchObject({ code: 'IDEMPOTENCY_KEY_REUSED', details: { settlementId } });
      expect(await queue.getJob(manualJobId(otherId, `manual:${key}`))).toBeUndefined();
    };

    // A settlement of terminal A that completed.
    const done = idem();
    const first = await session
      .http()
      .post(`/v1/terminals/${terminalId}/settlements`)
      .set(auth)
      .set('Idempotency-Key', done)
      .send({ businessDate: '2026-03-05' });
    expect(first.status).toBe(202);
    await waitFor(async () => (await session.owner.settlement.findUniqueOrThrow({ where: { id: first.body.id } })).status === 'COMPLETED', {
      timeoutMs: 15_000,
      intervalMs: 50,
      what: "terminal A's settlement to complete",
    });
    const completed = await session.owner.settlement.findUniqueOrThrow({ where: { id: first.body.id } });
    await reuse(done, completed.id);
    expect(await session.owner.settlement.findUniqueOrThrow({ where: { id: completed.id } })).toEqual(completed);

    // A settlement of terminal A left PENDING by a request that failed after its insert committed (its enqueue did not
    // happen, so no job yet; the sweep queues it later).
    const pendingKey = idem();
    const pending = await session.owner.settlement.create({
      data: {
        tenantId,
        terminalId,
        storeId,
        businessDate: new Date('2026-03-05T00:00:00Z'),
        runKey: `manual:${pendingKey}`,
        trigger: 'manual',
        status: 'PENDING',
      },
    });
    try {
      await reuse(pendingKey, pending.id);
      expect(await session.owner.settlement.findUniqueOrThrow({ where: { id: pending.id } })).toEqual(pending);
    } finally {
      await session.owner.settlement.delete({ where: { id: pending.id } });
    }
    expect(await session.owner.settlement.count({ where: { terminalId: otherId } })).toBe(0);
    expect(await session.owner.terminalOperation.count({ where: { terminalId: otherId, type: 'SETTLEMENT' } })).toBe(0);
  });
});
