import { randomBytes } from 'node:crypto';

import type { OperationType } from '@payorch/drivers';
import { insertOperation } from '@payorch/operations';
import { JoinprotoTerminalSimulator } from '@payorch/testing/joinproto-sim';
import { DEFAULT_ADMIN_PASSWORD, JpaySimulator } from '@payorch/testing/jpay-sim';
import { emptySimulatorState, SsiEcrSimulator } from '@payorch/testing/ssi-ecr-sim';

import { DriverSettlementRunner } from './testing/driver-runner.testing';
import { SettlementHarness } from './testing/settlement-harness.testing';

/**
 * A mixed day per protocol (docs/reconciliation.md), every operation driven through the real driver and the
 * connector's executor against the protocol's simulator — purchases, refunds, full and partial voids, preauth +
 * capture + cancel, cashback, SBP where the protocol has them, a close-day through the operations path in the middle
 * of the day, a terminal that answers "totals differ" — and one planted real difference. The discrepancy report must
 * be exactly the planted difference plus the terminal's host mismatch: no false positive, nothing missed.
 */
describe('settlement reconciliation of a mixed day per protocol (real drivers, simulators, BullMQ, PostgreSQL)', () => {
  const h = new SettlementHarness({
    prefix: 'recon',
    env: {
      SETTLEMENT_RETRY_BASE_MS: '100',
      SETTLEMENT_RETRY_MAX_MS: '300',
      SETTLEMENT_GIVE_UP_MS: '60000',
      SETTLEMENT_SYNC_INTERVAL_MS: '600000',
    },
    poolSize: 4,
    runner: (db) =>
      new DriverSettlementRunner(db, {
        driverOptions: { commandTimeoutMs: 5000, pollIntervalMs: 2 },
        connectTimeoutMs: 1000,
        credentials: { adminPassword: DEFAULT_ADMIN_PASSWORD },
      }),
  });
  let tenantId: string;
  let storeId: string;

  beforeAll(async () => {
    ({ tenantId } = await h.start());
    storeId = await h.store('Main', 'Europe/Moscow');
  }, 60_000);

  afterAll(() => h.stop());

  const terminalAt = (protocol: 'JOINPROTO' | 'JPAY' | 'SSI_ECR', port: number, dialect?: string) =>
    h.terminal(storeId, `${protocol}-${port}`, { port, protocol, dialect });

  /** What the operations API does: insert the operation (the owner's insert), then the connector's executor runs it. */
  async function operate(terminalId: string, type: OperationType, input: { amount?: number; cashbackAmount?: number; original?: { id: string } } = {}) {
    const key = randomBytes(8).toString('hex');
    const { row } = await h.db.withTenant(tenantId, (tx) =>
      insertOperation(tx, {
        tenantId,
        terminalId,
        storeId,
        type,
        amount: input.amount ?? null,
        cashbackAmount: input.cashbackAmount ?? null,
        currency: 'RUB',
        originalOperationId: input.original?.id ?? null,
        idempotencyKey: key,
        requestHash: key,
      }),
    );
    await h.runner.execute({ tenantId, terminalId, operationId: row.id });
    const done = await h.owner.terminalOperation.findUniqueOrThrow({ where: { id: row.id } });
    expect([type, done.state, done.stateReason]).toEqual([type, 'APPROVED', null]);
    return done;
  }

  /** A real difference: an operation we recorded as approved that never reached the terminal. */
  function planted(terminalId: string, type: 'PURCHASE' | 'REFUND', amount: number) {
    return h.recordOperation(terminalId, storeId, amount, { type, rrn: '999999999999' });
  }

  async function settle(terminalId: string, businessDate: string) {
    const job = await h.run(terminalId, businessDate);
    await job.waitUntilFinished(h.events, 60_000);
    return h.owner.settlement.findFirstOrThrow({ where: { terminalId, businessDate: new Date(`${businessDate}T00:00:00Z`) } });
  }

  it('Joinproto: mid-day close through the operations path, 915 at the end, a planted purchase — exactly that is reported', async () => {
    const sim = new JoinprotoTerminalSimulator();
    h.onStop(() => sim.close());
    const terminal = await terminalAt('JOINPROTO', (await sim.listen(0)).port);
    // Batch 1, closed mid-day through the operations path.
    const p1 = await operate(terminal.id, 'purchase', { amount: 1000 });
    const r1 = await operate(terminal.id, 'refund', { amount: 300, original: p1 });
    const midDay = await operate(terminal.id, 'settlement');
    // Batch 2.
    const p2 = await operate(terminal.id, 'purchase', { amount: 5000 });
    const cb = await operate(terminal.id, 'purchase_with_cashback', { amount: 2000, cashbackAmount: 500 });
    const p3 = await operate(terminal.id, 'purchase', { amount: 1200 });
    const v3 = await operate(terminal.id, 'void', { original: p3 });
    const hold = await operate(terminal.id, 'preauth', { amount: 3000 });
    const capture = await operate(terminal.id, 'preauth_capture', { amount: 2500, original: hold });
    const hold2 = await operate(terminal.id, 'preauth', { amount: 4000 });
    const release = await operate(terminal.id, 'preauth_cancel', { original: hold2 });
    const extra = await planted(terminal.id, 'PURCHASE', 700);
    sim.closeDayMismatch = true;

    const s = await settle(terminal.id, '2026-04-01');
    expect(s).toMatchObject({ status: 'COMPLETED', outcome: 'closed_with_mismatch', error: null, hasDiscrepancies: true });
    expect(s.startedAt).toBeInstanceOf(Date);
    expect(s.startedAt!.getTime()).toBeLessThanOrEqual(s.completedAt!.getTime());
    expect(s.discrepancies).toEqual([
      { batch: s.operationId, kind: 'count_mismatch', bucket: 'debit', ours: 5, terminal: 4, direction: 'missing_on_terminal' },
      { batch: s.operationId, kind: 'amount_mismatch', bucket: 'debit', ours: 11400, terminal: 10700 },
      { batch: s.operationId, kind: 'host_mismatch', detail: 'the terminal reported that its totals differ from the processing host' },
    ]);
    expect(s.batches).toEqual([
      expect.objectContaining({ closeDayOperationId: midDay.id, closedBy: 'operations_api', outcome: 'closed', operations: 2, discrepancies: 0 }),
      expect.objectContaining({ closeDayOperationId: s.operationId, closedBy: 'settlement', outcome: 'closed_with_mismatch', operations: 9, discrepancies: 3 }),
    ]);
    expect(s.ourTotals).toMatchObject({ buckets: { debit: { count: 5, amount: 11400 }, credit: { count: 0, amount: 0 }, void: { count: 1, amount: 1200 } } });
    const covered = await h.owner.terminalOperation.findMany({
      where: { id: { in: [p1, r1, midDay, p2, cb, p3, v3, hold, capture, hold2, release, extra].map((o) => o.id) } },
    });
    expect(covered.every((o) => o.settlementId === s.id)).toBe(true);

    // The day is closed on the terminal: the next settlement is an empty day with nothing to report.
    sim.closeDayMismatch = false;
    const next = await settle(terminal.id, '2026-04-02');
    expect(next).toMatchObject({ status: 'COMPLETED', outcome: 'empty_day', hasDiscrepancies: false, discrepancies: [] });
  }, 60_000);

  it('Joinproto: a day closed on the terminal itself (DF12 shift moved on) is a batch boundary, listed and not compared', async () => {
    const sim = new JoinprotoTerminalSimulator({ closeDayReceipt: 'ru' });
    h.onStop(() => sim.close());
    const terminal = await terminalAt('JOINPROTO', (await sim.listen(0)).port);
    const before = await operate(terminal.id, 'purchase', { amount: 1000 });
    sim.closeShiftOnTerminal();
    await operate(terminal.id, 'purchase', { amount: 2000 });
    await operate(terminal.id, 'refund', { amount: 500, original: before });
    const s = await settle(terminal.id, '2026-04-03');
    expect(s).toMatchObject({ status: 'COMPLETED', outcome: 'closed', hasDiscrepancies: false, discrepancies: [] });
    expect(s.terminalTotals).toMatchObject({ form: 'receipt-ru', batchNumber: '000002', net: 1500 });
    expect(s.batches).toEqual([
      expect.objectContaining({ closeDayOperationId: null, closedBy: 'terminal', batchNumber: '000001', outcome: 'closed_on_terminal', operations: 1 }),
      expect.objectContaining({ closedBy: 'settlement', batchNumber: '000002', operations: 2, discrepancies: 0 }),
    ]);
  }, 60_000);

  it('Joinproto: a day closed on the terminal before a close-day through the operations path is its own batch, not that close-day’s', async () => {
    const sim = new JoinprotoTerminalSimulator({ closeDayReceipt: 'ru' });
    h.onStop(() => sim.close());
    const terminal = await terminalAt('JOINPROTO', (await sim.listen(0)).port);
    const morning = await operate(terminal.id, 'purchase', { amount: 1000 });
    sim.closeShiftOnTerminal();
    await operate(terminal.id, 'purchase', { amount: 2000 });
    const midDay = await operate(terminal.id, 'settlement');
    await operate(terminal.id, 'purchase', { amount: 3000 });
    const s = await settle(terminal.id, '2026-04-06');
    expect(s).toMatchObject({ status: 'COMPLETED', outcome: 'closed', hasDiscrepancies: false, discrepancies: [] });
    expect(s.batches).toEqual([
      expect.objectContaining({ closeDayOperationId: null, closedBy: 'terminal', batchNumber: '000001', outcome: 'closed_on_terminal', operations: 1 }),
      expect.objectContaining({ closeDayOperationId: midDay.id, closedBy: 'operations_api', batchNumber: '000002', operations: 1, discrepancies: 0 }),
      expect.objectContaining({ closeDayOperationId: s.operationId, closedBy: 'settlement', batchNumber: '000003', operations: 1, discrepancies: 0 }),
    ]);
    expect(await h.owner.terminalOperation.findUniqueOrThrow({ where: { id: morning.id } })).toMatchObject({ settlementId: s.id });
  }, 60_000);

  it('Joinproto: a payment created before a close-day but run on the terminal after it is in the batch of its shift', async () => {
    const sim = new JoinprotoTerminalSimulator({ closeDayReceipt: 'ru' });
    h.onStop(() => sim.close());
    const terminal = await terminalAt('JOINPROTO', (await sim.listen(0)).port);
    await operate(terminal.id, 'purchase', { amount: 1000 });
    const midDay = await operate(terminal.id, 'settlement');
    const late = await operate(terminal.id, 'purchase', { amount: 2000 });
    // Its row was created a moment before the close-day's (its creating transaction not yet committed when the
    // close-day was created), the terminal ran it after the close-day: DF12 says it is in the next shift.
    await h.owner.terminalOperation.update({ where: { id: late.id }, data: { createdAt: new Date(midDay.createdAt.getTime() - 1) } });
    const s = await settle(terminal.id, '2026-04-07');
    expect(s).toMatchObject({ status: 'COMPLETED', outcome: 'closed', hasDiscrepancies: false, discrepancies: [] });
    expect(s.batches).toEqual([
      expect.objectContaining({ closeDayOperationId: midDay.id, closedBy: 'operations_api', batchNumber: '000001', operations: 1, discrepancies: 0 }),
      expect.objectContaining({ closeDayOperationId: s.operationId, closedBy: 'settlement', batchNumber: '000002', operations: 1, discrepancies: 0 }),
    ]);
  }, 60_000);

  it('JPAY: a payment created before a close-day but run on the terminal after it is in the next batch (the claim order, not the creation)', async () => {
    // Found in the eleventh session: JPAY reports no shift, so such a payment was counted in the close-day's batch by its
    // creation time (its creating transaction not yet committed when the close-day was created), a false mismatch there
    // and a missing one in the next.
    const sim = new JpaySimulator({ dialect: 'aqsi', keepaliveIntervalMs: 2 });
    h.onStop(() => sim.close());
    const terminal = await terminalAt('JPAY', await sim.listen(0), 'aqsi');
    await operate(terminal.id, 'purchase', { amount: 1000 });
    const midDay = await operate(terminal.id, 'settlement');
    const late = await operate(terminal.id, 'purchase', { amount: 2000 });
    await h.owner.terminalOperation.update({ where: { id: late.id }, data: { createdAt: new Date(midDay.createdAt.getTime() - 1) } });
    const s = await settle(terminal.id, '2026-04-08');
    expect(s).toMatchObject({ status: 'COMPLETED', outcome: 'closed', hasDiscrepancies: false, discrepancies: [] });
    expect(s.batches).toEqual([
      expect.objectContaining({ closeDayOperationId: midDay.id, closedBy: 'operations_api', operations: 1, discrepancies: 0 }),
      expect.objectContaining({ closeDayOperationId: s.operationId, closedBy: 'settlement', operations: 1, discrepancies: 0 }),
    ]);
  }, 60_000);

  it('JPAY (aQsi): SBP in its own bucket, partial void as a reversal, orig-amount as the terminal figure, host mismatch, a planted purchase', async () => {
    const sim = new JpaySimulator({ dialect: 'aqsi', keepaliveIntervalMs: 2 });
    h.onStop(() => sim.close());
    const terminal = await terminalAt('JPAY', await sim.listen(0), 'aqsi');
    await operate(terminal.id, 'purchase', { amount: 1000 });
    const midDay = await operate(terminal.id, 'settlement');
    const p2 = await operate(terminal.id, 'purchase', { amount: 5000 });
    await operate(terminal.id, 'refund', { amount: 700, original: p2 });
    const p3 = await operate(terminal.id, 'purchase', { amount: 1200 });
    await operate(terminal.id, 'void', { original: p3 });
    const p4 = await operate(terminal.id, 'purchase', { amount: 4000 });
    await operate(terminal.id, 'partial_void', { amount: 1000, original: p4 });
    await operate(terminal.id, 'purchase_with_cashback', { amount: 2500, cashbackAmount: 500 });
    const sbp = await operate(terminal.id, 'sbp_payment', { amount: 1500 });
    await operate(terminal.id, 'sbp_refund', { amount: 1500, original: sbp });
    const extra = await planted(terminal.id, 'PURCHASE', 900);
    sim.ledger.hostDelta = 100;

    const s = await settle(terminal.id, '2026-04-04');
    expect(s).toMatchObject({ status: 'COMPLETED', outcome: 'closed_with_mismatch', error: null, hasDiscrepancies: true });
    expect(s.terminalTotals).toMatchObject({ net: 9800, hostNet: 9900, form: 'xreport+sreport' });
    expect(s.discrepancies).toEqual([
      { batch: s.operationId, kind: 'count_mismatch', bucket: 'purchase', ours: 4, terminal: 3, direction: 'missing_on_terminal' },
      { batch: s.operationId, kind: 'amount_mismatch', bucket: 'purchase', ours: 11100, terminal: 10200 },
      { batch: s.operationId, kind: 'missing_on_terminal', bucket: 'purchase', amount: 900, operationId: extra.id, rrn: '999999999999' },
      { batch: s.operationId, kind: 'host_mismatch', detail: "the terminal's balance 9800 differs from the host's 9900" },
    ]);
    expect(s.ourTotals).toMatchObject({
      buckets: {
        purchase_reversal: { count: 2, amount: 2200 },
        purchase_with_cashback: { count: 1, amount: 2500 },
        sbp_payment: { count: 1, amount: 1500 },
        sbp_refund: { count: 1, amount: 1500 },
      },
    });
    expect(s.batches).toEqual([
      expect.objectContaining({ closeDayOperationId: midDay.id, closedBy: 'operations_api', outcome: 'closed', operations: 1, discrepancies: 0 }),
      expect.objectContaining({ closeDayOperationId: s.operationId, closedBy: 'settlement', outcome: 'closed_with_mismatch', operations: 10 }),
    ]);
  }, 60_000);

  it('SSI: report_z mid-day, Z report answered 95 with real totals, cashback cash part and preauth cancel not counted, a planted refund', async () => {
    const sim = new SsiEcrSimulator({ state: emptySimulatorState() });
    h.onStop(() => sim.stop());
    const terminal = await terminalAt('SSI_ECR', (await sim.start()).port);
    await operate(terminal.id, 'purchase', { amount: 1000 });
    const midDay = await operate(terminal.id, 'report_z');
    const p2 = await operate(terminal.id, 'purchase', { amount: 5000 });
    await operate(terminal.id, 'refund', { amount: 700, original: p2 });
    const p3 = await operate(terminal.id, 'purchase', { amount: 1200 });
    await operate(terminal.id, 'void', { original: p3 });
    const p4 = await operate(terminal.id, 'purchase', { amount: 4000 });
    await operate(terminal.id, 'partial_void', { amount: 300, original: p4 });
    const hold = await operate(terminal.id, 'preauth', { amount: 3000 });
    await operate(terminal.id, 'preauth_capture', { amount: 2500, original: hold });
    const hold2 = await operate(terminal.id, 'preauth', { amount: 2000 });
    await operate(terminal.id, 'preauth_cancel', { original: hold2 });
    await operate(terminal.id, 'purchase_with_cashback', { amount: 2500, cashbackAmount: 500 });
    await planted(terminal.id, 'REFUND', 400);
    sim.zReportMismatch = true;

    const s = await settle(terminal.id, '2026-04-05');
    expect(s).toMatchObject({ status: 'COMPLETED', outcome: 'closed_with_mismatch', error: null, hasDiscrepancies: true });
    expect(s.terminalTotals).toMatchObject({
      form: 'zreport-95',
      buckets: { sale: { count: 4, amount: 12200 }, fin_auth: { count: 1, amount: 2500 }, refund: { count: 1, amount: 700 }, void: { count: 2, amount: 1500 } },
    });
    expect(s.discrepancies).toEqual([
      { batch: s.operationId, kind: 'count_mismatch', bucket: 'refund', ours: 2, terminal: 1, direction: 'missing_on_terminal' },
      { batch: s.operationId, kind: 'amount_mismatch', bucket: 'refund', ours: 1100, terminal: 700 },
      { batch: s.operationId, kind: 'host_mismatch', detail: 'the terminal reported that its totals differ from the processing host' },
    ]);
    expect(s.batches).toEqual([
      expect.objectContaining({ closeDayOperationId: midDay.id, closedBy: 'operations_api', outcome: 'closed', operations: 1, discrepancies: 0 }),
      expect.objectContaining({ closeDayOperationId: s.operationId, closedBy: 'settlement', outcome: 'closed_with_mismatch' }),
    ]);
  }, 60_000);
});
