import type { ReportTransaction as JpayReportTransaction, SettlementReport, XReport } from '@payorch/jpay';
import type { TerminalReport } from '@payorch/ssi-ecr';

import { emptyBuckets, netOf, type SettlementProtocol, type Totals, type TotalsTransaction } from './totals';

/**
 * What a driver returns in `OperationOutcome.data` for an operation of type `settlement`
 * (the contract with libs/drivers; JSON-serialisable, no secrets, masked PANs only).
 *  - JOINPROTO: the 09 close-day answer: DF16, DF1A and the DF0A receipt as UTF-8 text.
 *  - JPAY: the `report` (xreport, `full` when available) taken right before `settlement`, and its `sreport`.
 *  - SSI_ECR: the ZReport result (`GetLastReport`, detail report when supported).
 */
export type SettlementRawData =
  | { protocol: 'JOINPROTO'; closeDay: JoinprotoCloseDay }
  | { protocol: 'JPAY'; xreport?: XReport; sreport?: SettlementReport }
  | { protocol: 'SSI_ECR'; report: TerminalReport };

/** Why the terminal's totals could not be read. */
export class TotalsUnavailable extends Error {
  constructor(readonly reason: string) {
    super(reason);
    this.name = 'TotalsUnavailable';
  }
}

/** The Joinproto 09 answer as stored on the close-day operation (libs/drivers joinproto.driver.ts `toOutcome`). */
export interface JoinprotoCloseDay {
  /** DF16. */
  responseCode?: string;
  /** DF1A. */
  message?: string;
  /** DF0A as UTF-8 text (the protocol imposes no layout, spec 1.4.1). */
  receiptText?: string;
  /** DF05, when the terminal adds it: the day's balance in minor units. */
  amount?: number;
  /** DF12: the terminal's shift (batch) number. */
  shiftNo?: string;
}

/** Joinproto DF16 of the 09 answer "terminal and host totals differ" (spec 5.6.2). */
export const JOINPROTO_TOTALS_MISMATCH = '915';

/** `ОПЛАТА 3 40.00`: a count, then an amount in roubles with two decimals (space/nbsp thousands separators allowed). */
const RU_LINE = (words: string) => new RegExp(`^[ \\t]*(?:${words})(?=[\\s:.])[^\\d\\n]*(\\d+)[^\\d\\n]+?(\\d[\\d \\u00a0]*[.,]\\d{2})[^\\n]*$`, 'im');
const RU_TOTAL = /^[ \t]*ИТОГО(?=[\s:.])[^\d\n-]*(-?)\s*(\d[\d \u00a0]*[.,]\d{2})[^\n]*$/im;
const EMPTY_DAY = /НЕТ ОПЕРАЦИЙ|ОПЕРАЦИЙ НЕТ|NO TRANSACTIONS|BATCH EMPTY/i;

/** `1 234,56` → 123456 (exact: the digits are read as text, never through a float). */
function roublesToMinor(text: string): number {
  const [whole, fraction] = text.replace(/[ \u00a0]/g, '').split(/[.,]/);
  return Number(whole) * 100 + Number(fraction);
}

/**
 * Joinproto 09 (spec 5.6): the protocol does not impose a layout on DF0A (1.4.1), so we read every form we know and
 * never guess (docs/reconciliation.md "Totals forms"):
 *  - `receipt-lines`: `DEBIT n sum`, `CREDIT n sum`, optional `VOID n sum`, optional `TOTAL ±net` (minor units);
 *  - `receipt-ru`: `ОПЛАТА|ПОКУПКА|ПРОДАЖА n 40.00`, `ВОЗВРАТ n 7.00`, optional `ОТМЕНА n 5.00`, optional `ИТОГО ±33.00`;
 *  - `receipt-empty`: a receipt that says the shift had no operations (`НЕТ ОПЕРАЦИЙ`, `NO TRANSACTIONS`);
 *  - `tlv-amount`: no totals on the receipt but DF05 on the answer: the balance only (buckets not compared).
 * DF16 `915` (5.6.2) = the terminal's and the host's totals differ: the day is closed, the mismatch is recorded.
 * A receipt in none of these forms (the spec's own examples carry `данные`) throws {@link TotalsUnavailable}.
 */
export function parseJoinprotoCloseDay(closeDay: JoinprotoCloseDay): Totals {
  const text = closeDay.receiptText ?? '';
  const hostMismatch = closeDay.responseCode === JOINPROTO_TOTALS_MISMATCH;
  const batch = closeDay.shiftNo !== undefined ? { batchNumber: closeDay.shiftNo } : {};
  const buckets = emptyBuckets('JOINPROTO');
  const done = (form: string, net: number | undefined, reportsVoid: boolean): Totals => {
    if (!reportsVoid) delete buckets.void;
    return { protocol: 'JOINPROTO', buckets, net: net ?? netOf('JOINPROTO', buckets), hostMismatch, form, ...batch };
  };

  const line = (name: string) => new RegExp(`^\\s*${name}\\s+(\\d+)\\s+(\\d+)\\s*$`, 'mi').exec(text);
  const debit = line('DEBIT');
  const credit = line('CREDIT');
  if (debit && credit) {
    const voids = line('VOID');
    buckets.debit = { count: Number(debit[1]), amount: Number(debit[2]) };
    buckets.credit = { count: Number(credit[1]), amount: Number(credit[2]) };
    if (voids) buckets.void = { count: Number(voids[1]), amount: Number(voids[2]) };
    const total = /^\s*TOTAL\s+(-?\d+)\s*$/im.exec(text);
    return done('receipt-lines', total ? Number(total[1]) : undefined, voids !== null);
  }

  const sale = RU_LINE('ОПЛАТА|ПОКУПКА|ПРОДАЖА').exec(text);
  const refund = RU_LINE('ВОЗВРАТ').exec(text);
  if (sale || refund) {
    const voids = RU_LINE('ОТМЕНА').exec(text);
    if (sale) buckets.debit = { count: Number(sale[1]), amount: roublesToMinor(sale[2]!) };
    if (refund) buckets.credit = { count: Number(refund[1]), amount: roublesToMinor(refund[2]!) };
    if (voids) buckets.void = { count: Number(voids[1]), amount: roublesToMinor(voids[2]!) };
    const total = RU_TOTAL.exec(text);
    return done('receipt-ru', total ? (total[1] === '-' ? -1 : 1) * roublesToMinor(total[2]!) : undefined, voids !== null);
  }

  if (EMPTY_DAY.test(text)) return done('receipt-empty', 0, true);

  if (closeDay.amount !== undefined) {
    return { protocol: 'JOINPROTO', buckets, bucketsReported: false, net: closeDay.amount, hostMismatch, form: 'tlv-amount', ...batch };
  }
  throw new TotalsUnavailable(`the close-day answer carries no totals in a known form (DF16 ${closeDay.responseCode ?? 'absent'})`);
}

const JPAY_TYPES: Record<string, string> = {
  purchase: 'purchase',
  refund: 'refund',
  purchasewithcashback: 'purchase_with_cashback',
  'purchase-with-cashback': 'purchase_with_cashback',
  purchasereversal: 'purchase_reversal',
  'purchase-reversal': 'purchase_reversal',
  refundreversal: 'refund_reversal',
  'refund-reversal': 'refund_reversal',
  // Appendix B lists a void as `void`, the aQsi receipt as `reversal`: a reversal of either kind (LISTED_ALIASES).
  void: 'reversal',
  reversal: 'reversal',
};

function jpayTransaction(t: JpayReportTransaction): TotalsTransaction | null {
  if (t.status !== undefined && t.status !== 'approved') return null;
  const bucket = t.type === undefined ? undefined : JPAY_TYPES[t.type];
  if (bucket === undefined || t.amount === undefined) return null;
  return {
    bucket,
    amount: t.amount,
    ...(t.rrn ? { rrn: t.rrn } : {}),
    ...(t.authNumber ? { authCode: t.authNumber } : {}),
    ...(t.seq ? { reference: t.seq } : {}),
  };
}

/**
 * JPAY (cardcore §8.11–8.12): per-type counts and sums from the xreport grand totals taken right before the
 * settlement (a partial void is a `purchasereversal` of the part voided, §8.9); the terminal's signed balance is
 * the sreport's `orig-amount` ("итоговая сумма подсчитанная на терминале"), `amount` is the host's and is kept as
 * `hostNet`. `orig-amount ≠ amount`, a `settlement-result` other than `passed` or a resp-code other than 000 is a
 * host mismatch: the day is closed, the mismatch is recorded. SBP is settled by the SBP agent and is not in these totals.
 */
export function parseJpaySettlement(data: { xreport?: XReport; sreport?: SettlementReport }): Totals {
  const grand = data.xreport?.grandTotals;
  if (!grand && !data.sreport) throw new TotalsUnavailable('neither a report nor a settlement report was returned');
  const buckets = emptyBuckets('JPAY');
  if (grand) {
    const put = (bucket: string, cs: { count?: number; sum?: number }) => (buckets[bucket] = { count: cs.count ?? 0, amount: cs.sum ?? 0 });
    put('purchase', grand.purchase);
    put('purchase_with_cashback', grand.purchaseWithCashback);
    put('refund', grand.refund);
    put('purchase_reversal', grand.purchaseReversal);
    put('refund_reversal', grand.refundReversal);
  }
  delete buckets.sbp_payment;
  delete buckets.sbp_refund;
  const sreport = data.sreport;
  const net = sreport?.origAmount ?? sreport?.amount ?? grand?.totalSum ?? netOf('JPAY', buckets);
  const transactions =
    data.xreport && data.xreport.transactions.length > 0
      ? data.xreport.transactions.map(jpayTransaction).filter((t): t is TotalsTransaction => t !== null)
      : undefined;
  const result = sreport?.settlementResult;
  const hostMismatch =
    (result !== undefined && result !== 'passed') ||
    (sreport?.origAmount !== undefined && sreport.amount !== undefined && sreport.origAmount !== sreport.amount) ||
    (sreport?.respCode !== undefined && sreport.respCode !== '000' && sreport.respCode !== '00');
  return {
    protocol: 'JPAY',
    buckets,
    bucketsReported: grand !== undefined,
    net,
    ...(sreport?.amount !== undefined ? { hostNet: sreport.amount } : {}),
    ...(transactions ? { transactions } : {}),
    hostMismatch,
    ...(sreport?.tnum !== undefined ? { reportedTransactionCount: sreport.tnum } : {}),
    form: grand ? 'xreport+sreport' : 'sreport',
  };
}

/** Methods of the SSI detail report (`originalTrnName`) → bucket; VoidPreauth / Preauthorization are in no total. */
const SSI_METHODS: Record<string, string> = {
  Purchase: 'sale',
  CashBack: 'sale',
  SalePreauth: 'fin_auth',
  Refund: 'refund',
  Cash: 'cash',
  Deposit: 'payment',
  Void: 'void',
  PartialVoid: 'void',
};

/** SSI response code of a reconciliation whose totals differ from the host's (spec 5.5.4: totals are filled all the same). */
export const SSI_TOTALS_MISMATCH = 95;

/** "95", "095", "0095" → 95; anything else → NaN. */
const numericCode = (code: string | undefined) => (code !== undefined && /^\d+$/.test(code) ? Number(code) : Number.NaN);
const isSuccessCode = (code: string | undefined) => code === undefined || code === '' || numericCode(code) === 0;

/**
 * SSI ZReport / GetLastReport (spec 5.5.4): `total*Count` / `total*Amount`. `error: true` = reconciliation failed and
 * the totals are zeros — **except** with response code 95 (totals differ from the host's): then they are the real
 * totals, the batch is closed, and the mismatch is recorded. `isBatchEmpty` + zeros = an empty (or already closed) day.
 */
export function parseSsiReport(report: TerminalReport): Totals {
  const mismatch = numericCode(report.responseCode) === SSI_TOTALS_MISMATCH || numericCode(report.errorCode) === SSI_TOTALS_MISMATCH;
  if (report.error && !mismatch) {
    throw new TotalsUnavailable(`terminal reconciliation failed: ${report.errorCode} ${report.errorDescription}`.trim());
  }
  const t = report.totals;
  const buckets = emptyBuckets('SSI_ECR');
  buckets.sale = { count: t.saleCount, amount: t.saleAmount };
  buckets.fin_auth = { count: t.finAuthCount, amount: t.finAuthAmount };
  buckets.cash = { count: t.cashCount, amount: t.cashAmount };
  buckets.refund = { count: t.refundCount, amount: t.refundAmount };
  buckets.payment = { count: t.paymentCount, amount: t.paymentAmount };
  buckets.void = { count: t.voidCount, amount: t.voidAmount };
  const transactions = report.transactions
    .map((tx): TotalsTransaction | null => {
      const bucket = tx.originalTrnName === undefined ? undefined : SSI_METHODS[tx.originalTrnName];
      if (bucket === undefined || tx.transAmount === undefined || !isSuccessCode(tx.responseCode)) return null;
      return {
        bucket,
        amount: tx.transAmount,
        ...(tx.rrn ? { rrn: tx.rrn } : {}),
        ...(tx.authCode ? { authCode: tx.authCode } : {}),
        ...(tx.invoiceNum ? { reference: tx.invoiceNum } : {}),
      };
    })
    .filter((tx): tx is TotalsTransaction => tx !== null);
  return {
    protocol: 'SSI_ECR',
    buckets,
    net: netOf('SSI_ECR', buckets),
    ...(transactions.length > 0 ? { transactions } : {}),
    ...(report.batchNumber !== undefined ? { batchNumber: report.batchNumber } : {}),
    hostMismatch: mismatch,
    form: mismatch
      ? 'zreport-95'
      : report.isBatchEmpty && Object.values(buckets).every((b) => b.count === 0)
        ? 'zreport-empty'
        : transactions.length > 0
          ? 'zreport-detail'
          : 'zreport',
  };
}

/** The terminal's totals from a driver's settlement data, whatever the protocol. */
export function parseTerminalTotals(raw: SettlementRawData): Totals {
  switch (raw.protocol) {
    case 'JOINPROTO':
      return parseJoinprotoCloseDay(raw.closeDay);
    case 'JPAY':
      return parseJpaySettlement(raw);
    case 'SSI_ECR':
      return parseSsiReport(raw.report);
  }
}

/** What a driver's OperationOutcome (libs/drivers) of a `settlement` / `report_z` carries, as stored on the operation. */
export interface SettlementOutcomeFields {
  responseCode?: string | null;
  responseMessage?: string | null;
  /** OperationOutcome.receipt.text (Joinproto DF0A as UTF-8). */
  receiptText?: string | null;
  /** OperationOutcome.receipt.fields (Joinproto: `shiftNo` = DF12). */
  receiptFields?: Record<string, unknown> | null;
  /** OperationOutcome.amount (Joinproto DF05 of the 09 answer, when present). */
  amount?: number | null;
  /** OperationOutcome.data: JPAY `{ report: SettlementReport, xreport? }`, SSI `{ report: TerminalReport }`. */
  data?: Record<string, unknown> | null;
}

/**
 * Maps the drivers' settlement outcomes to SettlementRawData: Joinproto → DF16, DF1A, DF0A text, DF05, DF12;
 * JPAY → `data.report` is the sreport (and `data.xreport` the report taken before it, when the driver sends one);
 * SSI → `data.report` is the ZReport's TerminalReport.
 */
export function settlementRawFromOutcome(protocol: SettlementProtocol, outcome: SettlementOutcomeFields): SettlementRawData {
  const data = outcome.data ?? {};
  switch (protocol) {
    case 'JOINPROTO': {
      const shiftNo = outcome.receiptFields?.shiftNo;
      return {
        protocol,
        closeDay: {
          ...(outcome.responseCode ? { responseCode: outcome.responseCode } : {}),
          ...(outcome.responseMessage ? { message: outcome.responseMessage } : {}),
          ...(outcome.receiptText ? { receiptText: outcome.receiptText } : {}),
          ...(typeof outcome.amount === 'number' ? { amount: outcome.amount } : {}),
          ...(typeof shiftNo === 'string' ? { shiftNo } : {}),
        },
      };
    }
    case 'JPAY': {
      const sreport = (data.sreport ?? data.report ?? undefined) as SettlementReport | undefined;
      const xreport = (data.xreport ?? undefined) as XReport | undefined;
      return { protocol, ...(sreport ? { sreport } : {}), ...(xreport ? { xreport } : {}) };
    }
    case 'SSI_ECR': {
      const report = data.report as TerminalReport | undefined;
      if (!report) throw new TotalsUnavailable('the ZReport outcome carries no report');
      return { protocol, report };
    }
  }
}
