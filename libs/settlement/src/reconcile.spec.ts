import { connect } from 'node:net';

import { duplexTransport, TillSession } from '@payorch/joinproto';
import { SsiEcrClient, SsiEcrRunner, tcpTransportFactory } from '@payorch/ssi-ecr';
import { JoinprotoTerminalSimulator } from '@payorch/testing/joinproto-sim';
import { SimLedger } from '@payorch/testing/jpay-sim';
import { emptySimulatorState, SsiEcrSimulator } from '@payorch/testing/ssi-ecr-sim';

import { parseJoinprotoCloseDay, parseJpaySettlement, parseSsiReport, parseTerminalTotals, TotalsUnavailable } from './parse';
import { reconcile } from './reconcile';
import type { RecordedOperation } from './totals';

let n = 0;
const op = (type: string, amount: number, extra: Partial<RecordedOperation> = {}): RecordedOperation => ({ id: `op-${++n}`, type, amount, ...extra });

describe('Joinproto close day (09) against the terminal simulator', () => {
  let sim: JoinprotoTerminalSimulator;
  let till: TillSession;

  async function rig(closeDayMismatch = false) {
    sim = new JoinprotoTerminalSimulator({ closeDayMismatch });
    const { port } = await sim.listen(0);
    till = new TillSession({ transport: duplexTransport(connect(port, '127.0.0.1')) });
    await sim.ready();
  }

  afterEach(async () => {
    till.close();
    await sim.close();
  });

  async function closeDay() {
    const outcome = await till.execute({ type: 'CloseDayRequest' });
    if (outcome.outcome !== 'completed') throw new Error('close day outcome unknown');
    return parseTerminalTotals({ protocol: 'JOINPROTO', closeDay: { responseCode: outcome.result.responseCode, receiptText: outcome.result.receiptText } });
  }

  it('matches our approved purchases and refunds (refunds negative in the net)', async () => {
    await rig();
    await till.execute({ type: 'PurchaseRequest', amount: 1500 });
    await till.execute({ type: 'PurchaseRequest', amount: 2500 });
    await till.execute({ type: 'RefundRequest', amount: 700 });
    await till.execute({ type: 'PurchaseRequest', amount: 1004 }); // declined by the host: not in totals
    const terminal = await closeDay();
    expect(terminal).toMatchObject({ buckets: { debit: { count: 2, amount: 4000 }, credit: { count: 1, amount: 700 } }, net: 3300, hostMismatch: false });
    const ours = [op('PURCHASE', 1500), op('PURCHASE', 2500), op('REFUND', 700), op('BALANCE_INQUIRY', 0)];
    const result = reconcile('JOINPROTO', terminal, ours);
    expect(result.discrepancies).toEqual([]);
    expect(result.ours.net).toBe(3300);
    expect(result.settledOperationIds).toHaveLength(4);
  });

  it('reports count and amount mismatches when the journal differs from ours', async () => {
    await rig();
    await till.execute({ type: 'PurchaseRequest', amount: 1500 });
    const terminal = await closeDay();
    const result = reconcile('JOINPROTO', terminal, [op('PURCHASE', 1500), op('PURCHASE', 900)]);
    expect(result.discrepancies).toEqual([
      { kind: 'count_mismatch', bucket: 'debit', ours: 2, terminal: 1, direction: 'missing_on_terminal' },
      { kind: 'amount_mismatch', bucket: 'debit', ours: 2400, terminal: 1500 },
    ]);
  });

  it('flags DF16 915 (terminal and host totals differ) as a host mismatch', async () => {
    await rig(true);
    await till.execute({ type: 'PurchaseRequest', amount: 100 });
    const result = reconcile('JOINPROTO', await closeDay(), [op('PURCHASE', 100)]);
    expect(result.discrepancies).toEqual([{ kind: 'host_mismatch', detail: expect.any(String) }]);
  });

  it('refuses a receipt without totals instead of guessing', () => {
    expect(() => parseJoinprotoCloseDay({ responseCode: '000', receiptText: 'THANK YOU' })).toThrow(TotalsUnavailable);
  });
});

describe('JPAY settlement (report + sreport) from the simulator ledger', () => {
  const build = () => {
    const ledger = new SimLedger(() => new Date('2026-03-01T20:00:00Z'));
    const p1 = ledger.record({ type: 'purchase', status: 'approved', amount: 5000, currency: '643', iface: 'card' });
    const p2 = ledger.record({ type: 'purchase', status: 'approved', amount: 3000, currency: '643', iface: 'card' });
    ledger.record({ type: 'purchase', status: 'declined', amount: 100, currency: '643', iface: 'card' });
    const r1 = ledger.record({ type: 'refund', status: 'approved', amount: 1200, currency: '643', iface: 'card' });
    const xreport = ledger.xreport('full');
    const sreport = ledger.settle(true);
    return { p1, p2, r1, totals: parseJpaySettlement({ xreport, sreport }) };
  };

  it('reads grand totals per type, the D/C signed amount and tnum, and matches by RRN', () => {
    const { p1, p2, r1, totals } = build();
    expect(totals).toMatchObject({
      buckets: { purchase: { count: 2, amount: 8000 }, refund: { count: 1, amount: 1200 } },
      net: 6800,
      reportedTransactionCount: 4,
      hostMismatch: false,
    });
    expect(totals.transactions).toHaveLength(3);
    const ours = [op('PURCHASE', 5000, { rrn: p1.rrn }), op('PURCHASE', 3000, { rrn: p2.rrn }), op('REFUND', 1200, { rrn: r1.rrn })];
    expect(reconcile('JPAY', totals, ours).discrepancies).toEqual([]);
  });

  it('names the operation missing on each side and a per-transaction amount mismatch', () => {
    const { p1, p2, totals } = build();
    const ours = [
      op('PURCHASE', 5000, { rrn: p1.rrn, id: 'ours-p1' }),
      op('PURCHASE', 3100, { rrn: p2.rrn, id: 'ours-p2' }),
      op('PURCHASE', 700, { rrn: '999', id: 'ours-extra' }),
    ];
    const kinds = reconcile('JPAY', totals, ours).discrepancies;
    expect(kinds).toEqual(
      expect.arrayContaining([
        { kind: 'amount_mismatch', bucket: 'purchase', ours: 3100, terminal: 3000, operationId: 'ours-p2', rrn: p2.rrn },
        { kind: 'missing_on_terminal', bucket: 'purchase', amount: 700, operationId: 'ours-extra', rrn: '999' },
        expect.objectContaining({ kind: 'missing_on_our_side', bucket: 'refund', amount: 1200 }),
        { kind: 'count_mismatch', bucket: 'purchase', ours: 3, terminal: 2, direction: 'missing_on_terminal' },
      ]),
    );
  });

  it('treats a settlement-result other than passed, or orig-amount ≠ amount, as a host mismatch', () => {
    expect(parseJpaySettlement({ sreport: { origAmount: 500, amount: 400, settlementResult: 'passed' } }).hostMismatch).toBe(true);
    expect(parseJpaySettlement({ sreport: { amount: -300, settlementResult: 'failed' } })).toMatchObject({ net: -300, hostMismatch: true });
  });
});

describe('SSI ZReport totals against the simulator', () => {
  let sim: SsiEcrSimulator;
  let client: SsiEcrClient;

  afterEach(async () => {
    client.close();
    await sim.stop();
  });

  it('reads total* keys and the detail list, and matches a purchase, a refund and a void', async () => {
    sim = new SsiEcrSimulator({ state: emptySimulatorState() });
    const { port } = await sim.start();
    client = new SsiEcrClient({
      connect: tcpTransportFactory({ host: '127.0.0.1', port, connectTimeoutMs: 500 }),
      minRequestGapMs: 0,
      responseTimeoutMs: 1000,
    });
    const runner = new SsiEcrRunner(client, { uidSupport: 'auto', pollBackoff: () => 1, busyBackoff: () => 1, operationTimeoutMs: 5000 });
    const paid = await runner.run({ method: 'Purchase', params: { transAmount: 2000, transCurrency: '980' } });
    const paid2 = await runner.run({ method: 'Purchase', params: { transAmount: 800, transCurrency: '980' } });
    const refund = await runner.run({ method: 'Refund', params: { transAmount: 300, transCurrency: '980', rrn: '1' } });
    const invoiceNum = paid2.kind === 'approved' ? paid2.result.invoiceNum! : '';
    const voided = await runner.run({ method: 'Void', params: { invoiceNum } });
    const z = await runner.runReport({ method: 'ZReport', params: { isDetailReport: true } });
    if (z.kind !== 'completed') throw new Error(`ZReport ${z.kind}`);
    const totals = parseSsiReport(z.report);
    expect(totals).toMatchObject({
      buckets: { sale: { count: 2, amount: 2800 }, refund: { count: 1, amount: 300 }, void: { count: 1, amount: 800 } },
      net: 1700,
    });
    const rrn = (o: typeof paid) => (o.kind === 'approved' ? o.result.rrn : undefined);
    const ours = [
      op('PURCHASE', 2000, { rrn: rrn(paid) }),
      op('PURCHASE', 800, { rrn: rrn(paid2) }),
      op('REFUND', 300, { rrn: rrn(refund) }),
      op('VOID', 800, { rrn: rrn(voided) }),
    ];
    expect(reconcile('SSI_ECR', totals, ours).discrepancies).toEqual([]);
  });

  it('a failed reconciliation (error: true) leaves the terminal side unavailable', () => {
    const report = { error: true, errorCode: 'E19', errorDescription: 'Reconciliation failed', transactions: [], totals: {} } as never;
    expect(() => parseSsiReport(report)).toThrow(/reconciliation failed/);
    expect(reconcile('SSI_ECR', { unavailable: 'x' }, [op('PURCHASE', 1)]).discrepancies).toEqual([{ kind: 'terminal_totals_unavailable', detail: 'x' }]);
  });
});
