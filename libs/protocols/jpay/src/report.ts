/**
 * Report (§8.11 `xreport`) and settlement/clear (§8.12–8.13 `sreport`) bodies.
 *
 *  - [JPAY-8.11-SIGN] `total-card-sum` / `total-sum`, `orig-amount` / `amount` are D/C signed.
 *  - [JPAY-8.11-TYPO] the documents' example misspells some tags (`purchase-with-cashback-stotal-sum`,
 *    `refund-ctotal-ount`, `line1`); a real terminal sends the documented names, which are the ones we
 *    read and write. Title lines are read from any child, whatever its name.
 */
import { decodeAmount, decodeCount, decodeSignedAmount, encodeAmount, encodeSignedAmount } from './amounts';
import { compact, decodeLines, encodeLines, mapOptional } from './codec-util';
import type { CardTypeTotals, CountSum, GrandTotals, ReportTransaction, SettlementReport, XReport } from './messages';
import { child, childrenNamed, el, opt, textOf, type XmlElement } from './xml';

type CounterKey = 'purchase' | 'refund' | 'purchaseWithCashback' | 'purchaseReversal' | 'refundReversal';
const COUNTERS: ReadonlyArray<readonly [string, CounterKey]> = [
  ['purchase', 'purchase'],
  ['refund', 'refund'],
  ['purchase-with-cashback', 'purchaseWithCashback'],
  ['purchase-reversal', 'purchaseReversal'],
  ['refund-reversal', 'refundReversal'],
];

/** Tag names differ between card-type totals (`purchase-count`) and grand totals (`purchase-total-count`). */
interface TotalsNaming {
  readonly counter: (prefix: string, what: 'count' | 'sum') => string;
  readonly totalSum: string;
  readonly totalCount: string;
}
const CARD_TOTALS: TotalsNaming = {
  counter: (prefix, what) => `${prefix}-${what}`,
  totalSum: 'total-card-sum',
  totalCount: 'total-card-count',
};
const GRAND_TOTALS: TotalsNaming = {
  counter: (prefix, what) => `${prefix}-total-${what}`,
  totalSum: 'total-sum',
  totalCount: 'total-count',
};

function decodeTotals(block: XmlElement, naming: TotalsNaming): GrandTotals {
  const counters = {} as Record<CounterKey, CountSum>;
  for (const [prefix, key] of COUNTERS) {
    const count = naming.counter(prefix, 'count');
    const sum = naming.counter(prefix, 'sum');
    counters[key] = compact({
      count: mapOptional(textOf(block, count), (v) => decodeCount(v, count)),
      sum: mapOptional(textOf(block, sum), (v) => decodeAmount(v, sum)),
    });
  }
  return compact({
    ...counters,
    totalSum: mapOptional(textOf(block, naming.totalSum), (v) => decodeSignedAmount(v, naming.totalSum)),
    totalCount: mapOptional(textOf(block, naming.totalCount), (v) => decodeCount(v, naming.totalCount)),
  });
}

function encodeTotals(totals: GrandTotals, naming: TotalsNaming): XmlElement[] {
  const out: (XmlElement | undefined)[] = [];
  for (const [prefix, key] of COUNTERS) {
    const counter = totals[key];
    out.push(
      opt(naming.counter(prefix, 'count'), counter.count?.toString()),
      opt(naming.counter(prefix, 'sum'), counter.sum === undefined ? undefined : encodeAmount(counter.sum)),
    );
  }
  out.push(
    opt(naming.totalSum, totals.totalSum === undefined ? undefined : encodeSignedAmount(totals.totalSum)),
    opt(naming.totalCount, totals.totalCount?.toString()),
  );
  return out.filter((e): e is XmlElement => e !== undefined);
}

const TRANSACTION_TEXT: ReadonlyArray<readonly [string, Exclude<keyof ReportTransaction, 'amount' | 'amountOther'>]> = [
  ['status', 'status'],
  ['state', 'state'],
  ['type', 'type'],
  ['seq', 'seq'],
  ['rrn', 'rrn'],
  ['time', 'time'],
  ['apn', 'authNumber'],
  ['arc', 'respCode'],
  ['cur', 'currency'],
  ['pan', 'pan'],
  ['aed', 'aed'],
  ['aid', 'aid'],
  ['tvr', 'tvr'],
  ['tsi', 'tsi'],
];

function decodeReportTransaction(t: XmlElement): ReportTransaction {
  const out: Record<string, unknown> = {};
  for (const [tag, key] of TRANSACTION_TEXT) out[key] = textOf(t, tag);
  out.amount = mapOptional(textOf(t, 'aa'), (v) => decodeAmount(v, 'aa'));
  out.amountOther = mapOptional(textOf(t, 'ao'), (v) => decodeAmount(v, 'ao'));
  return compact(out) as ReportTransaction;
}

function encodeReportTransaction(t: ReportTransaction): XmlElement {
  const fields: (XmlElement | undefined)[] = [];
  for (const [tag, key] of TRANSACTION_TEXT) {
    fields.push(opt(tag, t[key]));
    if (tag === 'seq') {
      fields.push(
        opt('aa', t.amount === undefined ? undefined : encodeAmount(t.amount)),
        opt('ao', t.amountOther === undefined ? undefined : encodeAmount(t.amountOther)),
      );
    }
  }
  return el('t', fields);
}

export function decodeXReport(block: XmlElement): XReport {
  const header = child(block, 'header');
  const totals = child(block, 'totals');
  const grand = child(block, 'grand-totals');
  const transactions = child(block, 'transactions');
  return compact({
    header: compact({
      mid: header && textOf(header, 'mid'),
      tid: header && textOf(header, 'tid'),
      title: decodeLines(header && child(header, 'title')),
      currency: header && textOf(header, 'cur'),
      time: header && textOf(header, 'time'),
    }),
    transactions: transactions ? childrenNamed(transactions, 't').map(decodeReportTransaction) : [],
    totals: totals
      ? childrenNamed(totals, 'card-type').map((ct) =>
          compact({
            rid: textOf(ct, 'rid'),
            name: textOf(ct, 'name'),
            ...decodeTotals(ct, CARD_TOTALS),
          }),
        )
      : [],
    grandTotals: grand && decodeTotals(grand, GRAND_TOTALS),
  });
}

export function encodeXReport(report: XReport): XmlElement {
  const { header } = report;
  return el('xreport', [
    el('header', [opt('mid', header.mid), opt('tid', header.tid), encodeLines('title', header.title), opt('cur', header.currency), opt('time', header.time)]),
    report.transactions.length > 0 ? el('transactions', report.transactions.map(encodeReportTransaction)) : undefined,
    el(
      'totals',
      report.totals.map((ct: CardTypeTotals) => el('card-type', [opt('rid', ct.rid), opt('name', ct.name), ...encodeTotals(ct, CARD_TOTALS)])),
    ),
    report.grandTotals ? el('grand-totals', encodeTotals(report.grandTotals, GRAND_TOTALS)) : undefined,
  ]);
}

const SREPORT_TEXT: ReadonlyArray<readonly [string, Exclude<keyof SettlementReport, 'origAmount' | 'amount' | 'tnum'>]> = [
  ['resp-code', 'respCode'],
  ['approval-number', 'approvalNumber'],
  ['rrn', 'rrn'],
  ['datetime', 'datetime'],
  ['tid', 'tid'],
  ['mid', 'mid'],
  ['cur', 'currency'],
  ['from', 'from'],
  ['to', 'to'],
  ['batch-upload', 'batchUpload'],
  ['art-resp-code', 'artRespCode'],
  ['cov-resp-code', 'covRespCode'],
  ['cov-rrn', 'covRrn'],
  ['settlement-result', 'settlementResult'],
];

export function decodeSettlementReport(block: XmlElement): SettlementReport {
  const out: Record<string, unknown> = {};
  for (const [tag, key] of SREPORT_TEXT) out[key] = textOf(block, tag);
  out.origAmount = mapOptional(textOf(block, 'orig-amount'), (v) => decodeSignedAmount(v, 'orig-amount'));
  out.amount = mapOptional(textOf(block, 'amount'), (v) => decodeSignedAmount(v, 'amount'));
  out.tnum = mapOptional(textOf(block, 'tnum'), (v) => decodeCount(v, 'tnum'));
  return compact(out) as SettlementReport;
}

export function encodeSettlementReport(report: SettlementReport): XmlElement {
  const fields: (XmlElement | undefined)[] = [];
  for (const [tag, key] of SREPORT_TEXT) {
    fields.push(opt(tag, report[key]));
    if (tag === 'rrn') {
      fields.push(
        opt('orig-amount', report.origAmount === undefined ? undefined : encodeSignedAmount(report.origAmount)),
        opt('amount', report.amount === undefined ? undefined : encodeSignedAmount(report.amount)),
      );
    }
    if (tag === 'to') fields.push(opt('tnum', report.tnum?.toString()));
  }
  return el('sreport', fields);
}
