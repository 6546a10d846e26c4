import { type CloseDayResponse, decodeMessage, decodeTlvs, encodeTlvs } from '@payorch/joinproto';
import { JOINPROTO_VECTORS } from '@payorch/joinproto/testing';
import { decodeResponse as decodeJpayResponse, parseXml, type ReportResponse, type SettlementResponse } from '@payorch/jpay';
import { decodeResponse as decodeSsiResponse, parseReport } from '@payorch/ssi-ecr';

import { closeDayOutcome, type CloseDayOperation } from './close-day';
import { parseJoinprotoCloseDay, parseJpaySettlement, parseSsiReport, TotalsUnavailable } from './parse';
import { reconcile } from './reconcile';
import type { RecordedOperation } from './totals';

/**
 * One test per totals form each protocol's spec allows (docs/reconciliation.md "Totals forms"), each built from the
 * spec's own example: Joinproto 5.6.x frames (tag tables in @payorch/joinproto/testing), JPAY §8.11/§8.12 XML,
 * SSI 5.5.4 GetLastReport JSON.
 */

let n = 0;
const op = (type: string, amount: number, extra: Partial<RecordedOperation> = {}): RecordedOperation => ({ id: `op-${++n}`, type, amount, ...extra });

// ---------- Joinproto ----------

/** The spec's 5.6.x answer with DF0A replaced (and tags added), decoded by the codec, as the driver stores it. */
function joinprotoAnswer(section: '5.6.1' | '5.6.2' | '5.6.3', change: { receipt?: string; add?: [string, string][] } = {}): CloseDayOperation {
  const vector = JOINPROTO_VECTORS.find((v) => v.section.startsWith(`${section} `))!;
  let tlvs = decodeTlvs(Buffer.from(vector.data_hex, 'hex'));
  if (change.receipt !== undefined)
    tlvs = tlvs.map((t) => (t.tag === 'DF0A' ? { tag: t.tag, value: new Uint8Array(Buffer.from(change.receipt!, 'utf8')) } : t));
  for (const [tag, value] of change.add ?? []) tlvs.push({ tag, value: new Uint8Array(Buffer.from(value, 'ascii')) });
  const message = decodeMessage(encodeTlvs(tlvs), 'terminal->till') as CloseDayResponse;
  expect(message.type).toBe('CloseDayResponse');
  return {
    // libs/protocols/joinproto response-codes: 000 approved, 915 declined, XX error.
    state: message.responseCode === '000' ? 'APPROVED' : message.responseCode === 'XX' ? 'FAILED' : 'DECLINED',
    responseCode: message.responseCode ?? null,
    responseMessage: message.message ?? null,
    receiptText: message.receipt ? Buffer.from(message.receipt).toString('utf8') : null,
    receiptFields: message.shiftNo ? { shiftNo: message.shiftNo } : null,
    amount: message.amount ?? null,
  };
}

const joinproto = (answer: CloseDayOperation) =>
  parseJoinprotoCloseDay({
    responseCode: answer.responseCode ?? undefined,
    receiptText: answer.receiptText ?? undefined,
    ...(typeof answer.amount === 'number' ? { amount: answer.amount } : {}),
    ...(typeof answer.receiptFields?.shiftNo === 'string' ? { shiftNo: answer.receiptFields.shiftNo } : {}),
  });

describe('Joinproto 09 close-day totals forms (spec 5.6, DF0A free-form per 1.4.1)', () => {
  it('5.6.3 as the spec prints it (DF0A "данные"): the day is closed, its totals are unavailable — never guessed', () => {
    const answer = joinprotoAnswer('5.6.3');
    expect(answer.receiptText).toBe('данные');
    expect(() => joinproto(answer)).toThrow(TotalsUnavailable);
    expect(closeDayOutcome('JOINPROTO', answer)).toEqual({
      closed: true,
      kind: 'closed_without_totals',
      unavailable: expect.stringMatching(/no totals/),
      hostMismatch: false,
    });
  });

  it('5.6.1 (XX FAILED, host answer incorrect): the day is not closed', () => {
    expect(closeDayOutcome('JOINPROTO', joinprotoAnswer('5.6.1'))).toMatchObject({ closed: false, kind: 'not_closed' });
  });

  it('receipt-lines: DEBIT / CREDIT / TOTAL in minor units; voids counted inside CREDIT', () => {
    const answer = joinprotoAnswer('5.6.3', { receipt: 'CLOSE DAY\nDEBIT 2 4000\nCREDIT 2 1200\nTOTAL 2800', add: [['DF12', '000007']] });
    const totals = joinproto(answer);
    expect(totals).toEqual({
      protocol: 'JOINPROTO',
      buckets: { debit: { count: 2, amount: 4000 }, credit: { count: 2, amount: 1200 } },
      net: 2800,
      hostMismatch: false,
      form: 'receipt-lines',
      batchNumber: '000007',
    });
    // A void is a refund on the wire (DF06 + DF08): the terminal's CREDIT holds our REFUND and our VOID.
    const ours = [op('PURCHASE', 1500), op('PURCHASE', 2500), op('REFUND', 700), op('VOID', 500, { originalType: 'PURCHASE' })];
    expect(reconcile('JOINPROTO', totals, ours).discrepancies).toEqual([]);
    expect(reconcile('JOINPROTO', totals, ours).ours.buckets.void).toEqual({ count: 1, amount: 500 });
  });

  it('receipt-lines with a VOID line: voids in their own bucket', () => {
    const totals = joinproto(joinprotoAnswer('5.6.3', { receipt: 'DEBIT 1 1000\nCREDIT 0 0\nVOID 1 300\nTOTAL 700' }));
    expect(totals.buckets).toEqual({ debit: { count: 1, amount: 1000 }, credit: { count: 0, amount: 0 }, void: { count: 1, amount: 300 } });
    expect(reconcile('JOINPROTO', totals, [op('PURCHASE', 1000), op('VOID', 300)]).discrepancies).toEqual([]);
    expect(reconcile('JOINPROTO', totals, [op('PURCHASE', 1000), op('REFUND', 300)]).discrepancies).toEqual([
      { kind: 'count_mismatch', bucket: 'credit', ours: 1, terminal: 0, direction: 'missing_on_terminal' },
      { kind: 'amount_mismatch', bucket: 'credit', ours: 300, terminal: 0 },
      { kind: 'count_mismatch', bucket: 'void', ours: 0, terminal: 1, direction: 'missing_on_our_side' },
      { kind: 'amount_mismatch', bucket: 'void', ours: 0, terminal: 300 },
    ]);
  });

  it('receipt-ru: ОПЛАТА / ВОЗВРАТ / ОТМЕНА / ИТОГО in roubles (thousands separated, comma decimals)', () => {
    const receipt = [
      'СВЕРКА ИТОГОВ',
      'СМЕНА 000012',
      'ОПЛАТА     3 шт.  1 234,50 руб',
      'ВОЗВРАТ    1 шт.     10,00 руб',
      'ОТМЕНА     1 шт.      0,50 руб',
      'ИТОГО      1 224,00 руб',
      'ИТОГИ СОВПАЛИ',
    ].join('\n');
    const totals = joinproto(joinprotoAnswer('5.6.3', { receipt }));
    expect(totals).toMatchObject({
      buckets: { debit: { count: 3, amount: 123450 }, credit: { count: 1, amount: 1000 }, void: { count: 1, amount: 50 } },
      net: 122400,
      form: 'receipt-ru',
    });
    const ours = [
      op('PURCHASE', 100000),
      op('PURCHASE_WITH_CASHBACK', 20000, { cashbackAmount: 5000 }),
      op('PREAUTH_CAPTURE', 3450),
      op('REFUND', 1000),
      op('VOID', 50),
    ];
    expect(reconcile('JOINPROTO', totals, ours).discrepancies).toEqual([]);
  });

  it('receipt-ru with a negative ИТОГО', () => {
    expect(joinproto(joinprotoAnswer('5.6.3', { receipt: 'ОПЛАТА 0 0.00\nВОЗВРАТ 1 5.00\nИТОГО -5.00' }))).toMatchObject({ net: -500 });
  });

  it('receipt-empty: a shift without operations is an empty day', () => {
    const answer = joinprotoAnswer('5.6.3', { receipt: 'СВЕРКА ИТОГОВ\nНЕТ ОПЕРАЦИЙ' });
    expect(joinproto(answer)).toMatchObject({ net: 0, form: 'receipt-empty', buckets: { debit: { count: 0, amount: 0 } } });
    expect(closeDayOutcome('JOINPROTO', answer)).toMatchObject({ closed: true, kind: 'empty_day' });
    expect(closeDayOutcome('JOINPROTO', answer, { closedOutsideSince: true })).toMatchObject({ closed: true, kind: 'already_closed' });
  });

  it('tlv-amount: no totals on the receipt, DF05 on the answer: the balance only, buckets not compared', () => {
    const totals = joinproto(joinprotoAnswer('5.6.3', { add: [['DF05', '000000002800']] }));
    expect(totals).toMatchObject({ bucketsReported: false, net: 2800, form: 'tlv-amount' });
    expect(reconcile('JOINPROTO', totals, [op('PURCHASE', 4000), op('REFUND', 1200)]).discrepancies).toEqual([]);
    expect(reconcile('JOINPROTO', totals, [op('PURCHASE', 4000)]).discrepancies).toEqual([
      { kind: 'amount_mismatch', bucket: 'net', ours: 4000, terminal: 2800 },
    ]);
  });

  it('5.6.2 (DF16 915, totals differ from the host): the day is closed and the mismatch is a reconciliation finding', () => {
    const answer = joinprotoAnswer('5.6.2', { receipt: 'DEBIT 1 100\nCREDIT 0 0\nTOTAL 100' });
    expect(answer.state).toBe('DECLINED');
    const outcome = closeDayOutcome('JOINPROTO', answer);
    expect(outcome).toMatchObject({ closed: true, kind: 'closed_with_mismatch', totals: { hostMismatch: true, net: 100 } });
    const totals = outcome.closed && outcome.kind !== 'closed_without_totals' ? outcome.totals : null;
    expect(reconcile('JOINPROTO', totals!, [op('PURCHASE', 100)]).discrepancies).toEqual([{ kind: 'host_mismatch', detail: expect.any(String) }]);
  });

  it('5.6.2 exactly as the spec prints it (915 + "данные"): closed, mismatch known, totals unavailable', () => {
    expect(closeDayOutcome('JOINPROTO', joinprotoAnswer('5.6.2'))).toEqual({
      closed: true,
      kind: 'closed_without_totals',
      unavailable: expect.stringMatching(/DF16 915/),
      hostMismatch: true,
    });
  });

  it('a decline other than 915 (e.g. 904) leaves the day open', () => {
    const answer = { ...joinprotoAnswer('5.6.3'), state: 'DECLINED', responseCode: '904' };
    expect(closeDayOutcome('JOINPROTO', answer)).toMatchObject({ closed: false, kind: 'not_closed' });
  });
});

// ---------- JPAY ----------

/** cardcore §8.11 example (typos corrected as in libs/protocols/jpay spec-examples), reduced to the grand totals and one transaction. */
const REPORT_8_11 = `<report><status>ok</status><xreport>
  <header><mid>M123456789012345</mid><tid>1000000001</tid><title><line1>Header line 1</line1></title><cur>643</cur><time>189329120002</time></header>
  <transactions><t><status>approved</status><state>active</state><type>refund</type><seq>000009</seq><aa>000000001000</aa><ao>000000000100</ao>
    <rrn>647394847384</rrn><time>180322121408</time><apn>AFJ879</apn><arc>000</arc><cur>643</cur><pan>*****1234</pan></t></transactions>
  <totals/>
  <grand-totals>
    <purchase-total-count>100</purchase-total-count><purchase-total-sum>000000010000</purchase-total-sum>
    <refund-total-count>100</refund-total-count><refund-total-sum>000000010000</refund-total-sum>
    <purchase-with-cashback-total-count>100</purchase-with-cashback-total-count><purchase-with-cashback-total-sum>000000010000</purchase-with-cashback-total-sum>
    <purchase-reversal-total-count>100</purchase-reversal-total-count><purchase-reversal-total-sum>000000010000</purchase-reversal-total-sum>
    <refund-reversal-total-count>2</refund-reversal-total-count><refund-reversal-total-sum>000000010000</refund-reversal-total-sum>
    <total-sum>C000000010000</total-sum><total-count>400</total-count>
  </grand-totals></xreport></report>`;

/** cardcore §8.12 example. */
const SETTLEMENT_8_12 = (
  origAmount = 'D003030001000',
  amount = 'D003030001000',
  result = 'passed',
) => `<settlement><status>ok</status><bank-name>BANK</bank-name>
  <sreport><resp-code>000</resp-code><approval-number>ASD002</approval-number><rrn>837495759322</rrn>
  <orig-amount>${origAmount}</orig-amount><amount>${amount}</amount><datetime>180322102354</datetime><tid>1000000001</tid><mid>123456789012345</mid>
  <cur>643</cur><from>190101100000</from><to>190102110000</to><tnum>100</tnum><batch-upload>passed</batch-upload><art-resp-code>00</art-resp-code>
  <cov-resp-code>00</cov-resp-code><cov-rrn>123456789012</cov-rrn><settlement-result>${result}</settlement-result></sreport></settlement>`;

const jpayReport = () => (decodeJpayResponse('report', parseXml(REPORT_8_11)) as ReportResponse).xreport!;
const jpaySreport = (...args: Parameters<typeof SETTLEMENT_8_12>) =>
  (decodeJpayResponse('settlement', parseXml(SETTLEMENT_8_12(...args))) as SettlementResponse).sreport!;

describe('JPAY settlement totals forms (cardcore §8.11 report, §8.12 sreport)', () => {
  it('xreport+sreport: per-type grand totals, and the terminal balance from orig-amount', () => {
    const totals = parseJpaySettlement({ xreport: jpayReport(), sreport: jpaySreport() });
    expect(totals).toMatchObject({
      buckets: {
        purchase: { count: 100, amount: 10000 },
        refund: { count: 100, amount: 10000 },
        purchase_with_cashback: { count: 100, amount: 10000 },
        purchase_reversal: { count: 100, amount: 10000 },
        refund_reversal: { count: 2, amount: 10000 },
      },
      net: 3030001000,
      hostNet: 3030001000,
      hostMismatch: false,
      reportedTransactionCount: 100,
      form: 'xreport+sreport',
      transactions: [{ bucket: 'refund', amount: 1000, rrn: '647394847384', authCode: 'AFJ879', reference: '000009' }],
    });
    expect(Object.keys(totals.buckets)).not.toContain('sbp_payment');
  });

  it('sreport only: the balance is orig-amount (the terminal figure), not amount (the host figure)', () => {
    const totals = parseJpaySettlement({ sreport: jpaySreport('D000000005000', 'D000000004000') });
    expect(totals).toMatchObject({ bucketsReported: false, net: 5000, hostNet: 4000, hostMismatch: true, form: 'sreport' });
    // Our 5000 matches the terminal: the only finding is the host's difference, not an amount_mismatch.
    expect(reconcile('JPAY', totals, [op('PURCHASE', 5000)]).discrepancies).toEqual([
      { kind: 'host_mismatch', detail: "the terminal's balance 5000 differs from the host's 4000" },
    ]);
    expect(closeDayOutcome('JPAY', { state: 'APPROVED', data: { report: jpaySreport('D000000005000', 'D000000004000') } })).toMatchObject({
      closed: true,
      kind: 'closed_with_mismatch',
    });
  });

  it('settlement-result failed (§8.12: "операция не выполнена"): the day is not closed', () => {
    const sreport = jpaySreport(undefined, undefined, 'failed');
    expect(parseJpaySettlement({ sreport }).hostMismatch).toBe(true);
    expect(closeDayOutcome('JPAY', { state: 'APPROVED', data: { report: sreport } })).toMatchObject({ closed: false, kind: 'not_closed' });
  });

  it('an empty log settles as an empty day', () => {
    const sreport = jpaySreport('D000000000000', 'D000000000000');
    expect(closeDayOutcome('JPAY', { state: 'APPROVED', data: { report: sreport } })).toMatchObject({ closed: true, kind: 'empty_day' });
  });

  it('SBP payments and refunds are in their own buckets, listed on our side, never compared with the card totals', () => {
    const totals = parseJpaySettlement({ sreport: { origAmount: 1000, amount: 1000, settlementResult: 'passed' } });
    const result = reconcile('JPAY', totals, [op('PURCHASE', 1000), op('SBP_PAYMENT', 700), op('SBP_REFUND', 200)]);
    expect(result.discrepancies).toEqual([]);
    expect(result.ours.buckets).toMatchObject({
      purchase: { count: 1, amount: 1000 },
      sbp_payment: { count: 1, amount: 700 },
      sbp_refund: { count: 1, amount: 200 },
    });
    expect(result.ours.net).toBe(1000);
  });

  it('an aQsi partial void (§8.9: void with an amount) is a reversal of the part voided', () => {
    const totals = parseJpaySettlement({
      xreport: {
        header: { title: [] },
        transactions: [],
        totals: [],
        grandTotals: {
          purchase: { count: 1, sum: 5000 },
          refund: { count: 0, sum: 0 },
          purchaseWithCashback: { count: 0, sum: 0 },
          purchaseReversal: { count: 1, sum: 1500 },
          refundReversal: { count: 0, sum: 0 },
          totalSum: 3500,
        },
      },
    });
    expect(reconcile('JPAY', totals, [op('PURCHASE', 5000), op('PARTIAL_VOID', 1500, { originalType: 'PURCHASE' })]).discrepancies).toEqual([]);
  });

  it('a full report listing its voids as `void` (Appendix B) or `reversal` (aQsi: a reversal of an unnamed kind) pairs them with ours', () => {
    const listed = (type: string, seq: string, amount: string, rrn: string) =>
      `<t><status>approved</status><state>active</state><type>${type}</type><seq>${seq}</seq><aa>${amount}</aa><rrn>${rrn}</rrn><arc>000</arc><cur>643</cur></t>`;
    const xml = REPORT_8_11.replace(
      /<transactions>[\s\S]*<\/transactions>/,
      `<transactions>${[
        listed('purchase', '000001', '000000005000', '000000000001'),
        listed('void', '000002', '000000001500', '000000000002'),
        listed('refund', '000003', '000000000700', '000000000003'),
        listed('reversal', '000004', '000000000700', '000000000004'),
        listed('purchase', '000005', '000000002000', '000000000005'),
        listed('reversal', '000006', '000000000400', ''),
      ].join('')}</transactions>`,
    ).replace(
      /<grand-totals>[\s\S]*<\/grand-totals>/,
      `<grand-totals>
        <purchase-total-count>2</purchase-total-count><purchase-total-sum>000000007000</purchase-total-sum>
        <refund-total-count>1</refund-total-count><refund-total-sum>000000000700</refund-total-sum>
        <purchase-with-cashback-total-count>0</purchase-with-cashback-total-count><purchase-with-cashback-total-sum>000000000000</purchase-with-cashback-total-sum>
        <purchase-reversal-total-count>2</purchase-reversal-total-count><purchase-reversal-total-sum>000000001900</purchase-reversal-total-sum>
        <refund-reversal-total-count>1</refund-reversal-total-count><refund-reversal-total-sum>000000000700</refund-reversal-total-sum>
        <total-sum>D000000005100</total-sum><total-count>6</total-count>
      </grand-totals>`,
    );
    const xreport = (decodeJpayResponse('report', parseXml(xml)) as ReportResponse).xreport!;
    const totals = parseJpaySettlement({ xreport, sreport: jpaySreport('D000000005100', 'D000000005100') });
    const ours = [
      op('PURCHASE', 5000, { rrn: '000000000001' }),
      op('PARTIAL_VOID', 1500, { originalType: 'PURCHASE', rrn: '000000000002' }),
      op('REFUND', 700, { rrn: '000000000003' }),
      op('VOID', 700, { originalType: 'REFUND', rrn: '000000000004' }),
      op('PURCHASE', 2000, { rrn: '000000000005' }),
      // No RRN on either side: paired by amount, a `reversal` listing taking a purchase reversal as well as a refund one.
      op('PARTIAL_VOID', 400, { originalType: 'PURCHASE' }),
    ];
    expect(reconcile('JPAY', totals, ours).discrepancies).toEqual([]);
    // A listed reversal we have no operation for is still reported, as what the terminal called it.
    expect(reconcile('JPAY', totals, ours.slice(0, 5)).discrepancies).toEqual([
      { kind: 'count_mismatch', bucket: 'purchase_reversal', ours: 1, terminal: 2, direction: 'missing_on_our_side' },
      { kind: 'amount_mismatch', bucket: 'purchase_reversal', ours: 1500, terminal: 1900 },
      { kind: 'missing_on_our_side', bucket: 'reversal', amount: 400, reference: '000006' },
    ]);
  });
});

// ---------- SSI ----------

/** SSI spec 5.5.4 GetLastReport answer (curly quotes of the document straightened). */
const GET_LAST_REPORT_5_5_4 = {
  method: 'GetLastReport',
  error: false,
  errorCode: '',
  errorDescription: '',
  params: {
    transactions: [
      {
        originalTrnName: 'Purchase',
        transAmount: '24500',
        authCode: '123456',
        date: '08/11/2023',
        time: '11:34:14',
        invoiceNum: '999999',
        pan: '4725XXXXXXXX1627',
        responseCode: '0000',
        rrn: '9999999999999',
        binName: 'VISA',
      },
    ],
    responseCode: '',
    totalSaleCount: '2',
    totalSaleAmount: '123',
    totalFinAuthCount: '0',
    totalFinAuthAmount: '0',
    totalRefundCount: '0',
    totalRefundAmount: '0',
    totalCashCount: '1',
    totalCashAmount: '23',
    totalPaymentCount: '1',
    totalPaymentAmount: '11',
    totalVoidCount: '0',
    totalVoidAmount: '0',
    isBatchEmpty: true,
    batchNumber: '999',
  },
};

const ssiReport = (change: { error?: boolean; errorCode?: string; params?: Record<string, unknown> } = {}) =>
  parseReport(
    decodeSsiResponse({
      ...GET_LAST_REPORT_5_5_4,
      ...(change.error !== undefined ? { error: change.error } : {}),
      ...(change.errorCode !== undefined ? { errorCode: change.errorCode } : {}),
      params: { ...GET_LAST_REPORT_5_5_4.params, ...change.params },
    } as never),
  );

describe('SSI Z report totals forms (spec 5.5.4)', () => {
  it('zreport-detail: total* keys and the detail list (response code "0000" is a success)', () => {
    const totals = parseSsiReport(ssiReport());
    expect(totals).toMatchObject({
      buckets: {
        sale: { count: 2, amount: 123 },
        fin_auth: { count: 0, amount: 0 },
        cash: { count: 1, amount: 23 },
        refund: { count: 0, amount: 0 },
        payment: { count: 1, amount: 11 },
        void: { count: 0, amount: 0 },
      },
      net: 135,
      batchNumber: '999',
      hostMismatch: false,
      form: 'zreport-detail',
      transactions: [{ bucket: 'sale', amount: 24500, rrn: '9999999999999', reference: '999999' }],
    });
  });

  it('zreport-95: error true with response code 95 carries the real totals; the batch is closed with a mismatch', () => {
    const report = ssiReport({ error: true, params: { responseCode: '95', transactions: [] } });
    expect(parseSsiReport(report)).toMatchObject({ buckets: { sale: { count: 2, amount: 123 } }, hostMismatch: true, form: 'zreport-95' });
    expect(closeDayOutcome('SSI_ECR', { state: 'DECLINED', data: { report } })).toMatchObject({ closed: true, kind: 'closed_with_mismatch' });
  });

  it('a failed reconciliation other than 95 (zeros, error true): not closed', () => {
    const zeros = Object.fromEntries(
      Object.keys(GET_LAST_REPORT_5_5_4.params)
        .filter((k) => k.startsWith('total'))
        .map((k) => [k, '0']),
    );
    const report = ssiReport({ error: true, errorCode: 'E10', params: { ...zeros, transactions: [] } });
    expect(() => parseSsiReport(report)).toThrow(TotalsUnavailable);
    expect(closeDayOutcome('SSI_ECR', { state: 'DECLINED', data: { report } })).toMatchObject({ closed: false, kind: 'not_closed' });
  });

  it('zreport-empty: an empty reconciliation (zeros, error false, isBatchEmpty) is an empty day', () => {
    const zeros = Object.fromEntries(
      Object.keys(GET_LAST_REPORT_5_5_4.params)
        .filter((k) => k.startsWith('total'))
        .map((k) => [k, '0']),
    );
    const report = ssiReport({ params: { ...zeros, transactions: [] } });
    expect(parseSsiReport(report)).toMatchObject({ net: 0, form: 'zreport-empty' });
    expect(closeDayOutcome('SSI_ECR', { state: 'APPROVED', data: { report } })).toMatchObject({ closed: true, kind: 'empty_day' });
  });

  it('zreport (totals only): a cashback counts its card part as a sale; a preauth cancel is no void', () => {
    const totals = parseSsiReport(
      ssiReport({
        params: {
          transactions: [],
          totalSaleCount: '2',
          totalSaleAmount: '3000',
          totalCashCount: '0',
          totalCashAmount: '0',
          totalPaymentCount: '0',
          totalPaymentAmount: '0',
        },
      }),
    );
    expect(totals.form).toBe('zreport');
    const ours = [op('PURCHASE', 1000), op('PURCHASE_WITH_CASHBACK', 2500, { cashbackAmount: 500 }), op('PREAUTH', 900), op('PREAUTH_CANCEL', 900)];
    expect(reconcile('SSI_ECR', totals, ours).discrepancies).toEqual([]);
  });
});
