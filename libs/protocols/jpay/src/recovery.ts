/**
 * Recovery of a command whose outcome is `unknown` (connection lost or timeout after the command was
 * sent). JPAY has no "get last result" command, so we read the terminal's transaction log with a full
 * report (§8.11, `report-type=full`) and look the transaction up.
 *
 * Matching ([PAYORCH-RECOVER], our rule; the spec gives no key that links a request to a log entry):
 *  - the log entry's type corresponds to the request type (void ↔ purchasereversal | refundreversal |
 *    reversal; purchase-with-cashback ↔ purchase-with-cashback | purchasewithcashback | purchase);
 *  - its amount `aa` equals the requested amount (for cashback: amount or amount + cashback; a full
 *    void has no amount to compare).
 *
 * Deciding ([PAYORCH-RECOVER-ANCHOR]): the caller records, before sending, the last log entry it knew
 * (the anchor: `afterSeq`, with its `afterRrn` / `afterTime` to tell it from another entry with the same
 * number). §8.12 "После успешной сверки итогов из лога транзакций удаляются все записи": only a close
 * (settlement, clear) removes entries, so while the anchor is still in the log nothing was removed since,
 * and our transaction, if it ran, is there with a receipt number above the anchor's.
 *  - anchor in the log → only entries with `seq` > `afterSeq` count. None = not performed (proven);
 *    one decides; several are narrowed by `notBeforeTime`, else ambiguous (an operator decides);
 *  - no anchor, or the anchor gone (the log was emptied since: the receipt counter may have restarted,
 *    and our entry may have been closed away) → `notBeforeTime` bounds the search; one match decides,
 *    several are ambiguous, and none proves nothing (`undetermined`): a close, or a terminal clock behind
 *    ours, hides an entry from a time bound.
 */
import type { JpayClient } from './client';
import { JpayError } from './errors';
import type { ReportTransaction, TransactionRequest, XReport } from './messages';
import type { JpayStatus } from './status';

/** A log entry known before an attempt: its receipt number, and what tells it from a later namesake. */
export interface LogAnchor {
  readonly seq: string;
  readonly rrn?: string;
  /** yyMMddHHmmss, the log's `time` (a receipt's `datetime`). */
  readonly time?: string;
}

export interface RecoveryCriteria {
  readonly request: TransactionRequest;
  /** Receipt number (`seq`) of the last card transaction known before the attempt (the anchor). */
  readonly afterSeq?: string;
  /** RRN of that transaction, when known: tells the anchor from an entry numbered alike after a close. */
  readonly afterRrn?: string;
  /** Log time of that transaction (yyMMddHHmmss), when known; used when either side lacks an RRN. */
  readonly afterTime?: string;
  /** Earliest plausible log time, yyMMddHHmmss in the terminal's (till's) time zone. */
  readonly notBeforeTime?: string;
}

export type RecoveryResult =
  | { readonly resolution: 'approved' | 'declined'; readonly transaction: ReportTransaction }
  /** Not in a log that provably holds everything since the attempt: the application never completed it. */
  | { readonly resolution: 'not-found' }
  /**
   * Not found, but the log cannot prove it never ran: it was emptied since the anchor (`log-emptied`),
   * or there is no anchor to check it against (`no-anchor`). The outcome stays unknown.
   */
  | { readonly resolution: 'undetermined'; readonly why: 'log-emptied' | 'no-anchor' }
  | { readonly resolution: 'ambiguous'; readonly candidates: readonly ReportTransaction[] }
  /** The report could not be read; the outcome stays unknown, try again later. */
  | {
      readonly resolution: 'unavailable';
      readonly status?: JpayStatus;
      readonly error?: JpayError;
    };

const LOG_TYPES: Record<TransactionRequest['type'], readonly string[]> = {
  purchase: ['purchase'],
  refund: ['refund'],
  void: ['purchasereversal', 'refundreversal', 'reversal', 'void', 'purchase-reversal', 'refund-reversal'],
  'purchase-with-cashback': ['purchase-with-cashback', 'purchasewithcashback', 'purchase'],
};

function amountMatches(request: TransactionRequest, entry: ReportTransaction): boolean {
  if (request.amount === undefined) return true;
  if (entry.amount === request.amount) return true;
  return request.amountOther !== undefined && entry.amount === request.amount + request.amountOther;
}

function matchesRequest(request: TransactionRequest, entry: ReportTransaction): boolean {
  return entry.type !== undefined && LOG_TYPES[request.type].includes(entry.type) && amountMatches(request, entry);
}

const seqNumber = (seq: string | undefined): number => (seq === undefined || !/^\d+$/.test(seq.trim()) ? NaN : Number(seq));

const notBefore = (entry: ReportTransaction, time: string | undefined): boolean => time === undefined || (entry.time ?? '') >= time;

/** The anchor of an entry (a log entry or a receipt's seq/rrn/datetime). */
export function logAnchor(entry: { readonly seq?: string; readonly rrn?: string; readonly time?: string }): LogAnchor | undefined {
  if (entry.seq === undefined || Number.isNaN(seqNumber(entry.seq))) return undefined;
  return { seq: entry.seq, ...(entry.rrn ? { rrn: entry.rrn } : {}), ...(entry.time ? { time: entry.time } : {}) };
}

/**
 * [PAYORCH-RECOVER-ANCHOR] Whether this log entry is the anchor: the same receipt number and, as the
 * counter may restart after a close, the same RRN (or, when either side has none, the same time).
 */
export function isAnchorEntry(entry: ReportTransaction, anchor: LogAnchor): boolean {
  if (seqNumber(entry.seq) !== seqNumber(anchor.seq)) return false;
  if (anchor.rrn && entry.rrn) return anchor.rrn === entry.rrn;
  if (anchor.time && entry.time) return anchor.time === entry.time;
  return true;
}

/** True while the log still holds the anchor entry: nothing was closed (removed) since it was recorded. */
export function logHoldsAnchor(report: XReport, anchor: LogAnchor): boolean {
  return report.transactions.some((entry) => isAnchorEntry(entry, anchor));
}

/** [PAYORCH-RECOVER] candidates of the log that may be the transaction described by `criteria`. */
export function findTransactionCandidates(report: XReport, criteria: RecoveryCriteria): ReportTransaction[] {
  const afterSeq = criteria.afterSeq === undefined ? undefined : seqNumber(criteria.afterSeq);
  return report.transactions.filter(
    (entry) =>
      matchesRequest(criteria.request, entry) && (afterSeq === undefined || seqNumber(entry.seq) > afterSeq) && notBefore(entry, criteria.notBeforeTime),
  );
}

function verdict(transaction: ReportTransaction): RecoveryResult {
  const approved = transaction.status === 'approved' || transaction.status === 'ok';
  return { resolution: approved ? 'approved' : 'declined', transaction };
}

/** Resolves from an already fetched full report ([PAYORCH-RECOVER-ANCHOR]). */
export function resolveFromReport(report: XReport, criteria: RecoveryCriteria): RecoveryResult {
  const matching = report.transactions.filter((entry) => matchesRequest(criteria.request, entry));
  const anchor = criteria.afterSeq === undefined ? undefined : logAnchor({ seq: criteria.afterSeq, rrn: criteria.afterRrn, time: criteria.afterTime });
  // An anchor numbered 0 stands for "the log was empty": there is no entry to find.
  const anchored = anchor !== undefined && seqNumber(anchor.seq) > 0 && logHoldsAnchor(report, anchor);
  if (anchored) {
    const after = matching.filter((entry) => seqNumber(entry.seq) > seqNumber(anchor.seq));
    if (after.length === 0) return { resolution: 'not-found' };
    if (after.length === 1) return verdict(after[0]);
    // Time only breaks a tie: a terminal clock behind ours must not hide our entry.
    const recent = after.filter((entry) => notBefore(entry, criteria.notBeforeTime));
    return recent.length === 1 ? verdict(recent[0]) : { resolution: 'ambiguous', candidates: after };
  }
  const recent = matching.filter((entry) => notBefore(entry, criteria.notBeforeTime));
  if (recent.length === 0) {
    return { resolution: 'undetermined', why: anchor !== undefined && seqNumber(anchor.seq) > 0 ? 'log-emptied' : 'no-anchor' };
  }
  return recent.length === 1 ? verdict(recent[0]) : { resolution: 'ambiguous', candidates: recent };
}

/**
 * [PAYORCH-RECOVER-CLOSE] Whether a close-day (settlement) whose answer was lost closed the day. Before
 * sending it the caller recorded an entry of the log (`before`); §8.12 empties the log on a successful
 * settlement, so that entry still there means the day was not closed, and gone means it was (by this
 * close-day, or a close or clear of another client since: either way the batch is closed). Without such
 * an entry (the log was empty, or the report could not be read) nothing tells.
 */
export function closeDayFromReport(report: XReport, before: LogAnchor | undefined): 'closed' | 'not-closed' | 'undetermined' {
  if (before === undefined) return 'undetermined';
  return logHoldsAnchor(report, before) ? 'not-closed' : 'closed';
}

/** Reads the full report with the admin password and resolves the unknown transaction. */
export async function recoverTransaction(client: JpayClient, password: string, criteria: RecoveryCriteria): Promise<RecoveryResult> {
  try {
    const response = await client.report(password, 'full');
    if (response.status !== 'ok' || !response.xreport) {
      return { resolution: 'unavailable', status: response.status };
    }
    return resolveFromReport(response.xreport, criteria);
  } catch (error) {
    // Only a programming error (an invalid request) propagates; anything on the wire leaves it unknown.
    if (error instanceof JpayError && error.code !== 'INVALID_ARGUMENT') return { resolution: 'unavailable', error };
    throw error;
  }
}
