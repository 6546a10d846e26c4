import { randomBytes } from 'node:crypto';

import type { INestApplication } from '@nestjs/common';

import { createWorkerApp } from '../../apps/settlement-worker/src/bootstrap';
import { loadConfig, workerConfigSchema } from '@payorch/config';
import { createLogger } from '@payorch/logging';
import { waitFor } from '@payorch/testing';
import { JoinprotoTerminalSimulator } from '@payorch/testing/joinproto-sim';
import { DEFAULT_ADMIN_PASSWORD, JpaySimulator } from '@payorch/testing/jpay-sim';
import { emptySimulatorState, SsiEcrSimulator } from '@payorch/testing/ssi-ecr-sim';

import { GatewaySession, idem } from './support/gateway-session';
import { InProcessDispatcher } from './support/in-process-dispatcher';

/**
 * A mixed day per protocol through the public API (docs/reconciliation.md): every operation is
 * `POST /v1/terminals/{id}/operations` executed against the protocol's simulator, the mid-day close too; the
 * settlement is `POST /v1/terminals/{id}/settlements` run by the worker through the same dispatcher; the terminal
 * answers "totals differ" at the end; one real difference is planted on our side. The discrepancy report (JSON and
 * CSV) must be exactly the planted difference and the host mismatch.
 */
describe('settlement reconciliation of a mixed day, per protocol, through the API', () => {
  const session = new GatewaySession();
  let dispatcher: InProcessDispatcher;
  let worker: INestApplication;
  let auth: { Authorization: string };
  let tenantId: string;
  let storeId: string;
  let joinproto: JoinprotoTerminalSimulator;
  let jpay: JpaySimulator;
  let ssi: SsiEcrSimulator;

  beforeAll(async () => {
    session.dispatcherFactory = (appUrl, publish) => (dispatcher = new InProcessDispatcher(appUrl, publish));
    await session.start();
    const a = await session.tenant();
    auth = { Authorization: `Bearer ${a.apiKey}` };
    tenantId = a.tenantId;
    storeId = (await session.http().post('/v1/stores').set(auth).set('Idempotency-Key', idem()).send({ name: 'S', timeZone: 'UTC' })).body.id;
    const config = loadConfig('settlement-worker', workerConfigSchema, {
      DATABASE_APP_URL: session.testDb.appUrl,
      REDIS_URL: session.config.REDIS_URL,
      REDIS_KEY_PREFIX: session.config.REDIS_KEY_PREFIX,
      LOG_LEVEL: 'silent',
      PAYORCH_MASTER_KEY: `k1:${randomBytes(32).toString('base64')}`,
      SETTLEMENT_RETRY_BASE_MS: '100',
      SETTLEMENT_SYNC_INTERVAL_MS: '600000',
    });
    worker = await createWorkerApp(config, createLogger({ name: 'test', level: 'silent' }), { dispatcher });
    await worker.init();
    joinproto = new JoinprotoTerminalSimulator();
    jpay = new JpaySimulator({ dialect: 'aqsi', keepaliveIntervalMs: 2 });
    ssi = new SsiEcrSimulator({ state: emptySimulatorState() });
  }, 60_000);

  afterAll(async () => {
    await worker?.close();
    await dispatcher?.close();
    await joinproto?.close();
    await jpay?.close();
    await ssi?.stop();
    await session.stop();
  });

  async function terminal(protocol: 'JOINPROTO' | 'JPAY' | 'SSI_ECR', port: number, options: object = {}) {
    const res = await session
      .http()
      .post('/v1/terminals')
      .set(auth)
      .set('Idempotency-Key', idem())
      .send({
        name: protocol,
        storeId,
        protocol: protocol.toLowerCase(), // API casing; the labels here are the protocols' names
        connection: { kind: 'tcp', host: '127.0.0.1', port: 1 },
        ...(protocol === 'JPAY' ? { credentials: { adminPassword: DEFAULT_ADMIN_PASSWORD } } : {}),
      });
    expect(res.status).toBe(201);
    dispatcher.route(res.body.id, { port, ...options });
    return res.body.id as string;
  }

  /** One operation through the API, approved. */
  async function operate(terminalId: string, type: string, body: { amount?: number; cashbackAmount?: number; original?: { id: string } } = {}) {
    const res = await session
      .http()
      .post(`/v1/terminals/${terminalId}/operations?wait=10000`)
      .set(auth)
      .set('Idempotency-Key', idem())
      .send({
        type,
        currency: 'RUB',
        ...(body.amount !== undefined ? { amount: body.amount } : {}),
        ...(body.cashbackAmount !== undefined ? { cashbackAmount: body.cashbackAmount } : {}),
        ...(body.original ? { originalOperationId: body.original.id } : {}),
      });
    expect([type, res.status, res.body.state]).toEqual([type, 201, 'approved']);
    return res.body as { id: string };
  }

  /** A real difference: an operation recorded approved on our side that the terminal never saw. */
  function planted(terminalId: string, type: 'PURCHASE' | 'REFUND', amount: number) {
    return session.owner.terminalOperation.create({
      data: {
        tenantId,
        terminalId,
        storeId,
        type,
        state: 'APPROVED',
        amount: BigInt(amount),
        currency: 'RUB',
        rrn: '999999999999',
        idempotencyKey: idem(),
        requestHash: 'h',
        completedAt: new Date(),
      },
    });
  }

  async function settle(terminalId: string, businessDate: string) {
    const run = await session.http().post(`/v1/terminals/${terminalId}/settlements`).set(auth).set('Idempotency-Key', idem()).send({ businessDate });
    expect(run.status).toBe(202);
    const done = await waitFor(
      async () => {
        const res = await session.http().get(`/v1/settlements/${run.body.id}`).set(auth);
        return res.body.status === 'completed' || res.body.status === 'failed' ? res.body : null;
      },
      { timeoutMs: 30_000, intervalMs: 50, what: `the settlement of ${businessDate}` },
    );
    const report = await session.http().get(`/v1/settlements/${run.body.id}/discrepancies`).set(auth);
    const csv = await session.http().get(`/v1/settlements/${run.body.id}/discrepancies.csv`).set(auth);
    expect([report.status, csv.status]).toEqual([200, 200]);
    expect(report.body).toMatchObject({ settlementId: done.id, status: done.status, outcome: done.outcome, discrepancies: done.discrepancies });
    expect(done.startedAt).not.toBeNull();
    expect(Date.parse(done.startedAt)).toBeLessThanOrEqual(Date.parse(done.finishedAt));
    return { done, report: report.body, csv: csv.text.split('\r\n') };
  }

  const header = 'settlement_id,terminal_id,business_date,batch,kind,bucket,direction,ours,terminal,amount,operation_id,rrn,reference,detail';
  const HOST = 'the terminal reported that its totals differ from the processing host';

  it('Joinproto: purchases, refund, void, cashback, preauth + capture + cancel, a mid-day close, 915, a planted purchase', async () => {
    const id = await terminal('JOINPROTO', (await joinproto.listen(0)).port, { options: { commandTimeoutMs: 3000 } });
    const p1 = await operate(id, 'purchase', { amount: 1000 });
    await operate(id, 'refund', { amount: 300, original: p1 });
    const midDay = await operate(id, 'settlement');
    await operate(id, 'purchase', { amount: 5000 });
    await operate(id, 'purchase_with_cashback', { amount: 2000, cashbackAmount: 500 });
    const p3 = await operate(id, 'purchase', { amount: 1200 });
    await operate(id, 'void', { original: p3 });
    const hold = await operate(id, 'preauth', { amount: 3000 });
    await operate(id, 'preauth_capture', { amount: 2500, original: hold });
    const hold2 = await operate(id, 'preauth', { amount: 4000 });
    await operate(id, 'preauth_cancel', { original: hold2 });
    await planted(id, 'PURCHASE', 700);
    joinproto.closeDayMismatch = true;

    const { done, csv } = await settle(id, '2026-05-01');
    const batch = done.operationId;
    expect(done).toMatchObject({ status: 'completed', outcome: 'closed_with_mismatch', error: null });
    expect(done.discrepancies).toEqual([
      { batch, kind: 'count_mismatch', bucket: 'debit', ours: 5, terminal: 4, direction: 'missing_on_terminal' },
      { batch, kind: 'amount_mismatch', bucket: 'debit', ours: 11400, terminal: 10700 },
      { batch, kind: 'host_mismatch', detail: HOST },
    ]);
    expect(done.batches.map((b: Record<string, unknown>) => [b.closeDayOperationId, b.closedBy, b.outcome, b.operations, b.discrepancies])).toEqual([
      [midDay.id, 'operations_api', 'closed', 2, 0],
      [batch, 'settlement', 'closed_with_mismatch', 9, 3],
    ]);
    const prefix = `${done.id},${id},2026-05-01,${batch}`;
    expect(csv).toEqual([
      header,
      `${prefix},count_mismatch,debit,missing_on_terminal,5,4,,,,,`,
      `${prefix},amount_mismatch,debit,,11400,10700,,,,,`,
      `${prefix},host_mismatch,,,,,,,,,${HOST}`,
      '',
    ]);
  }, 90_000);

  it('JPAY (aQsi): SBP in its own bucket, partial void, a mid-day settlement operation, host figure ≠ terminal figure, a planted purchase', async () => {
    const id = await terminal('JPAY', await jpay.listen(0), { credentials: { adminPassword: DEFAULT_ADMIN_PASSWORD } });
    await operate(id, 'purchase', { amount: 1000 });
    const midDay = await operate(id, 'settlement');
    const p2 = await operate(id, 'purchase', { amount: 5000 });
    await operate(id, 'refund', { amount: 700, original: p2 });
    const p3 = await operate(id, 'purchase', { amount: 1200 });
    await operate(id, 'void', { original: p3 });
    const p4 = await operate(id, 'purchase', { amount: 4000 });
    await operate(id, 'partial_void', { amount: 1000, original: p4 });
    await operate(id, 'purchase_with_cashback', { amount: 2500, cashbackAmount: 500 });
    const sbp = await operate(id, 'sbp_payment', { amount: 1500 });
    await operate(id, 'sbp_refund', { amount: 1500, original: sbp });
    const extra = await planted(id, 'PURCHASE', 900);
    jpay.ledger.hostDelta = 100;

    const { done, csv } = await settle(id, '2026-05-02');
    jpay.ledger.hostDelta = 0;
    const batch = done.operationId;
    const host = "the terminal's balance 9800 differs from the host's 9900";
    expect(done).toMatchObject({ status: 'completed', outcome: 'closed_with_mismatch', error: null, terminalTotals: { net: 9800, hostNet: 9900 } });
    expect(done.discrepancies).toEqual([
      { batch, kind: 'count_mismatch', bucket: 'purchase', ours: 4, terminal: 3, direction: 'missing_on_terminal' },
      { batch, kind: 'amount_mismatch', bucket: 'purchase', ours: 11100, terminal: 10200 },
      { batch, kind: 'missing_on_terminal', bucket: 'purchase', amount: 900, operationId: extra.id, rrn: '999999999999' },
      { batch, kind: 'host_mismatch', detail: host },
    ]);
    expect(done.batches.map((b: Record<string, unknown>) => [b.closeDayOperationId, b.closedBy, b.outcome, b.operations, b.discrepancies])).toEqual([
      [midDay.id, 'operations_api', 'closed', 1, 0],
      [batch, 'settlement', 'closed_with_mismatch', 10, 4],
    ]);
    const prefix = `${done.id},${id},2026-05-02,${batch}`;
    expect(csv).toEqual([
      header,
      `${prefix},count_mismatch,purchase,missing_on_terminal,4,3,,,,,`,
      `${prefix},amount_mismatch,purchase,,11100,10200,,,,,`,
      `${prefix},missing_on_terminal,purchase,,,,900,${extra.id},999999999999,,`,
      `${prefix},host_mismatch,,,,,,,,,${host}`,
      '',
    ]);
    // The settlements CSV counts the buckets the nets compare: the two sides differ by the planted purchase alone, in
    // count (1) as in net (900). SBP, ours only, is in neither count as in neither net; until 2026-12-07 our_count had
    // the SBP payment and refund as well (11 vs 8).
    const [columns, row] = (await session.http().get('/v1/settlements/export.csv').query({ terminalId: id }).set(auth)).text.split('\r\n');
    // The columns up to `discrepancies` (a JSON cell with commas of its own).
    const cells = Object.fromEntries(columns!.split(',').map((column, i) => [column, row!.split(',')[i]]));
    expect(cells).toMatchObject({ settlement_id: done.id, our_count: '9', terminal_count: '8', our_net: '11700', terminal_net: '10800' });
  }, 90_000);

  it("a day's summary and CSV count every batch its settlements reconciled, once, both sides over the same batches", async () => {
    // Terminal A: a mid-day close through the operations API {1000, −300}, then two manual close-days of the same day
    // ({2000}, then {400}). Terminal B answers its close-day without totals (the spec's own `данные`) over {500}.
    const day = '2026-05-09';
    const simA = new JoinprotoTerminalSimulator();
    const simB = new JoinprotoTerminalSimulator({ closeDayReceipt: 'spec' });
    try {
      const a = await terminal('JOINPROTO', (await simA.listen(0)).port, { options: { commandTimeoutMs: 3000 } });
      const b = await terminal('JOINPROTO', (await simB.listen(0)).port, { options: { commandTimeoutMs: 3000 } });
      const p1 = await operate(a, 'purchase', { amount: 1000 });
      await operate(a, 'refund', { amount: 300, original: p1 });
      const midDay = await operate(a, 'settlement');
      await operate(a, 'purchase', { amount: 2000 });
      const first = (await settle(a, day)).done;
      await operate(a, 'purchase', { amount: 400 });
      const second = (await settle(a, day)).done;
      await operate(b, 'purchase', { amount: 500 });
      const unread = (await settle(b, day)).done;
      // Each settlement's own totals are its own batch's; the mid-day batch is in the first one's `batches` only.
      expect(first.batches.map((x: Record<string, any>) => [x.closeDayOperationId, x.closedBy, x.ours.net, x.terminal?.net])).toEqual([
        [midDay.id, 'operations_api', 700, 700],
        [first.operationId, 'settlement', 2000, 2000],
      ]);
      expect([first.ourTotals.net, second.ourTotals.net, second.batches.length]).toEqual([2000, 400, 1]);
      expect(unread).toMatchObject({ status: 'completed', outcome: 'closed_without_totals', ourTotals: { net: 500 }, terminalTotals: null });

      const summary = await session.http().get('/v1/settlements/summary').query({ date: day }).set(auth);
      const counts = {
        total: 3,
        completed: 3,
        failed: 0,
        pending: 0,
        withDiscrepancies: 1,
        batches: 4,
        batchesWithoutTerminalTotals: 1,
        ourNet: 3100,
        terminalNet: 3100,
        ourNetWithoutTerminalTotals: 500,
      };
      expect(summary.body).toEqual({ date: day, chain: counts, stores: [{ storeId, ...counts }] });
      // The settlement.completed events: ourNet / terminalNet are each settlement's own batch's (the mid-day batch is
      // in none), the batches' nets cover every batch it reconciled, so the day's events sum to the summary.
      const completed = await session.owner.domainEvent.findMany({
        where: { type: 'settlement.completed', subjectId: { in: [first.id, second.id, unread.id] } },
      });
      const data = new Map(completed.map((e) => [e.subjectId, e.data as Record<string, number | null>]));
      expect(data.get(first.id)).toMatchObject({ ourNet: 2000, terminalNet: 2000, batches: 2, batchesOurNet: 2700, batchesTerminalNet: 2700 });
      expect(data.get(unread.id)).toMatchObject({ ourNet: 500, terminalNet: null, batchesWithoutTerminalTotals: 1, batchesOurNetWithoutTerminalTotals: 500 });
      const sum = (key: string) => [...data.values()].reduce((n, d) => n + Number(d[key]), 0);
      expect({
        batchesWithoutTerminalTotals: sum('batchesWithoutTerminalTotals'),
        ourNet: sum('batchesOurNet'),
        terminalNet: sum('batchesTerminalNet'),
        ourNetWithoutTerminalTotals: sum('batchesOurNetWithoutTerminalTotals'),
      }).toEqual({ batchesWithoutTerminalTotals: 1, ourNet: 3100, terminalNet: 3100, ourNetWithoutTerminalTotals: 500 });

      const csv = (await session.http().get('/v1/settlements/export.csv').query({ from: day, to: day }).set(auth)).text.split('\r\n');
      expect(csv[0]).toBe(
        'settlement_id,business_date,store_id,terminal_id,status,trigger,attempts,started_at,completed_at,our_count,our_net,terminal_count,terminal_net,has_discrepancies,discrepancy_count,discrepancies,error_code,batches,batches_without_terminal_totals,our_net_without_terminal_totals',
      );
      expect(csv.slice(1)).toEqual([
        expect.stringMatching(new RegExp(`^${first.id},${day},${storeId},${a},completed,manual,\\d+,[^,]+,[^,]+,3,2700,3,2700,false,0,,,2,0,0$`)),
        expect.stringMatching(new RegExp(`^${second.id},${day},${storeId},${a},completed,manual,\\d+,[^,]+,[^,]+,1,400,1,400,false,0,,,1,0,0$`)),
        expect.stringMatching(new RegExp(`^${unread.id},${day},${storeId},${b},completed,manual,\\d+,[^,]+,[^,]+,,,,,true,1,".+",,1,1,500$`)),
        '',
      ]);
    } finally {
      await simA.close();
      await simB.close();
    }
  }, 90_000);

  it('SSI: report_z mid-day, partial void, cashback, preauth + capture + cancel, Z report answered 95 with totals, a planted refund', async () => {
    const id = await terminal('SSI_ECR', (await ssi.start()).port, { options: { pollIntervalMs: 1 } });
    await operate(id, 'purchase', { amount: 1000 });
    const midDay = await operate(id, 'report_z');
    const p2 = await operate(id, 'purchase', { amount: 5000 });
    await operate(id, 'refund', { amount: 700, original: p2 });
    const p3 = await operate(id, 'purchase', { amount: 1200 });
    await operate(id, 'void', { original: p3 });
    const p4 = await operate(id, 'purchase', { amount: 4000 });
    await operate(id, 'partial_void', { amount: 300, original: p4 });
    const hold = await operate(id, 'preauth', { amount: 3000 });
    await operate(id, 'preauth_capture', { amount: 2500, original: hold });
    const hold2 = await operate(id, 'preauth', { amount: 2000 });
    await operate(id, 'preauth_cancel', { original: hold2 });
    await operate(id, 'purchase_with_cashback', { amount: 2500, cashbackAmount: 500 });
    await planted(id, 'REFUND', 400);
    ssi.zReportMismatch = true;

    const { done, csv } = await settle(id, '2026-05-03');
    ssi.zReportMismatch = false;
    const batch = done.operationId;
    expect(done).toMatchObject({
      status: 'completed',
      outcome: 'closed_with_mismatch',
      error: null,
      terminalTotals: { form: 'zreport-95', buckets: { sale: { count: 4, amount: 12200 }, void: { count: 2, amount: 1500 } } },
    });
    expect(done.discrepancies).toEqual([
      { batch, kind: 'count_mismatch', bucket: 'refund', ours: 2, terminal: 1, direction: 'missing_on_terminal' },
      { batch, kind: 'amount_mismatch', bucket: 'refund', ours: 1100, terminal: 700 },
      { batch, kind: 'host_mismatch', detail: HOST },
    ]);
    expect(done.batches.map((b: Record<string, unknown>) => [b.closeDayOperationId, b.closedBy, b.outcome, b.operations])).toEqual([
      [midDay.id, 'operations_api', 'closed', 1],
      [batch, 'settlement', 'closed_with_mismatch', 12],
    ]);
    const prefix = `${done.id},${id},2026-05-03,${batch}`;
    expect(csv).toEqual([
      header,
      `${prefix},count_mismatch,refund,missing_on_terminal,2,1,,,,,`,
      `${prefix},amount_mismatch,refund,,1100,700,,,,,`,
      `${prefix},host_mismatch,,,,,,,,,${HOST}`,
      '',
    ]);

    // The day is closed: the next settlement of this terminal is an empty day, no discrepancy.
    const next = await settle(id, '2026-05-04');
    expect(next.done).toMatchObject({ status: 'completed', outcome: 'empty_day', hasDiscrepancies: false, discrepancies: [] });
    expect(next.csv).toEqual([header, '']);
  }, 90_000);
});
