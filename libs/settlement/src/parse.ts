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
  | { protocol: 'JOINPROTO'; closeDay: { responseCode?: string; message?: string; receiptText?: string } }
  | { protocol: 'JPAY'; xreport?: XReport; sreport?: SettlementReport }
  | { protocol: 'SSI_ECR'; report: TerminalReport };

/** Why the terminal's totals could not be read. */
export class TotalsUnavailable extends Error {
  constructor(readonly reason: string) {
    super(reason);
    this.name = 'TotalsUnavailable';
  }
}

/**
 * Joinproto 09 (spec 5.6): the protocol does not impose a receipt layout. We read `DEBIT <count> <sum>`,
 * `CREDIT <count> <sum>` and `TOTAL <signed sum>` lines (the reference terminal and our simulator);
 * DF16 `915` means the terminal's and the host's totals differ.
 */
export function parseJoinprotoCloseDay(closeDay: { responseCode?: string; receiptText?: string }): Totals {
  const text = closeDay.receiptText ?? '';
  const line = (name: string) => new RegExp(`^\\s*${name}\\s+(\\d+)\\s+(\\d+)\\s*$`, 'mi').exec(text);
  const debit = line('DEBIT');
  const credit = line('CREDIT');
  if (!debit || !credit) {
    throw new TotalsUnavailable(`close-day receipt has no DEBIT/CREDIT totals (DF16 ${closeDay.responseCode ?? 'absent'})`);
  }
  const buckets = emptyBuckets('JOINPROTO');
  buckets.debit = { count: Number(debit[1]), amount: Number(debit[2]) };
  buckets.credit = { count: Number(credit[1]), amount: Number(credit[2]) };
  const total = /^\s*TOTAL\s+(-?\d+)\s*$/im.exec(text);
  return {
    protocol: 'JOINPROTO',
    buckets,
    net: total ? Number(total[1]) : netOf('JOINPROTO', buckets),
    hostMismatch: closeDay.responseCode === '915',
  };
}

const JPAY_TYPES: Record<string, string> = {
  purchase: 'purchase',
  refund: 'refund',
  'purchase-with-cashback': 'purchase_with_cashback',
  purchasereversal: 'purchase_reversal',
  'purchase-reversal': 'purchase_reversal',
  refundreversal: 'refund_reversal',
  'refund-reversal': 'refund_reversal',
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
 * JPAY (§8.11–8.12): per-type counts and sums from the xreport grand totals taken right before the
 * settlement; the signed balance from the sreport (`amount`, D/C signed; `orig-amount` is the
 * terminal's own balance: a difference, or a settlement-result other than `passed`, is a host mismatch).
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
  const sreport = data.sreport;
  const net = sreport?.amount ?? grand?.totalSum ?? netOf('JPAY', buckets);
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
    ...(transactions ? { transactions } : {}),
    hostMismatch,
    ...(sreport?.tnum !== undefined ? { reportedTransactionCount: sreport.tnum } : {}),
  };
}

const SSI_METHODS: Record<string, string> = {
  Purchase: 'sale',
  CashBack: 'sale',
  SalePreauth: 'fin_auth',
  Refund: 'refund',
  Cash: 'cash',
  Deposit: 'payment',
  Void: 'void',
  VoidPreauth: 'void',
  PartialVoid: 'void',
};

/** SSI ZReport / GetLastReport (spec 5.5.4): `total*Count` / `total*Amount`; `error: true` = reconciliation failed (zero totals). */
export function parseSsiReport(report: TerminalReport): Totals {
  if (report.error) {
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
      if (bucket === undefined || tx.transAmount === undefined) return null;
      if (tx.responseCode !== undefined && tx.responseCode !== '00' && tx.responseCode !== '') return null;
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

/** What a driver's OperationOutcome (libs/drivers) of a `settlement` carries, as stored on the operation. */
export interface SettlementOutcomeFields {
  responseCode?: string | null;
  /** OperationOutcome.receipt.text (Joinproto DF0A as UTF-8). */
  receiptText?: string | null;
  /** OperationOutcome.data: JPAY `{ report: SettlementReport, xreport? }`, SSI `{ report: TerminalReport }`. */
  data?: Record<string, unknown> | null;
}

/**
 * Maps the drivers' settlement outcomes to SettlementRawData: Joinproto → DF16 + DF0A text;
 * JPAY → `data.report` is the sreport (and `data.xreport` the report taken before it, when the driver sends one);
 * SSI → `data.report` is the ZReport's TerminalReport.
 */
export function settlementRawFromOutcome(protocol: SettlementProtocol, outcome: SettlementOutcomeFields): SettlementRawData {
  const data = outcome.data ?? {};
  switch (protocol) {
    case 'JOINPROTO':
      return {
        protocol,
        closeDay: {
          ...(outcome.responseCode ? { responseCode: outcome.responseCode } : {}),
          ...(outcome.receiptText ? { receiptText: outcome.receiptText } : {}),
        },
      };
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
