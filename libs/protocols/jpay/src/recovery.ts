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
 * Deciding ([PAYORCH-RECOVER-ANCHOR]): the caller records, before sending, the last log entries it knew
 * (the anchors: `afterSeq`, with its `afterRrn` / `afterTime` to tell it from another entry with the same
 * number). Card and SBP receipts are numbered apart (§8.10 "Номер транзакции в поле seq назначается
 * независимо от номеров карточных транзакций"), so there are two: the last card entry (`afterSeq`…) and,
 * for a request that may run as SBP (a purchase without `force-sbp` offers the QR beside the card, §8.10),
 * the last SBP entry (`afterSbpSeq`…). §8.12 "После успешной сверки итогов из лога транзакций удаляются
 * все записи": only a close (settlement, clear) removes entries, of both kinds, so while an anchor is still
 * in the log nothing was removed since, and our transaction, if it ran, is there.
 *  - an anchor in the log → the entries that count are those numbered above the anchor of their kind:
 *    card entries above the card anchor (if the request may run by card), SBP entries above the SBP anchor
 *    (if it may run as SBP; 000000 = the log had none, all count). None = not performed (proven); one
 *    decides; several are narrowed by `notBeforeTime`, else ambiguous (an operator decides). A kind with no
 *    anchor of its own (refs recorded before 2026-12-07 have no SBP anchor) cannot tell an older entry from
 *    ours: its entries are bounded by `notBeforeTime`, and while any exists, none in the bound proves nothing
 *    (`undetermined`);
 *  - no anchor in the log (the log was emptied since: the receipt counters may have restarted, and our
 *    entry may have been closed away), or none recorded → `notBeforeTime` bounds the search; one match
 *    decides, several are ambiguous, and none proves nothing (`undetermined`): a close, or a terminal clock
 *    behind ours, hides an entry from a time bound.
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
  /** Receipt number (`seq`) of the last card transaction known before the attempt (the card anchor). */
  readonly afterSeq?: string;
  /** RRN of that transaction, when known: tells the anchor from an entry numbered alike after a close. */
  readonly afterRrn?: string;
  /** Log time of that transaction (yyMMddHHmmss), when known; used when either side lacks an RRN. */
  readonly afterTime?: string;
  /**
   * Receipt number of the last SBP transaction known before the attempt (the SBP anchor; 000000: the log
   * had none), for a request that may run as SBP: SBP receipts are numbered apart from card ones (§8.10).
   * Absent (refs recorded before 2026-12-07): SBP entries are bounded by `notBeforeTime` alone.
   */
  readonly afterSbpSeq?: string;
  /** RRN of that SBP transaction, when known. */
  readonly afterSbpRrn?: string;
  /** Log time of that SBP transaction (yyMMddHHmmss), when known. */
  readonly afterSbpTime?: string;
  /** Earliest plausible log time, yyMMddHHmmss in the terminal's (till's) time zone. */
  readonly notBeforeTime?: string;
}

export type RecoveryResult =
  | { readonly resolution: 'approved' | 'declined'; readonly transaction: ReportTransaction }
  /** Not in a log that provably holds everything since the attempt: the application never completed it. */
  | { readonly resolution: 'not-found' }
  /**
   * Not found, but the log cannot prove it never ran: it was emptied since the anchors (`log-emptied`),
   * there is no anchor to check it against (`no-anchor`), or the log is unbroken but holds entries of a
   * kind (card or SBP) that has no anchor of its own, any of them possibly ours (`kind-unanchored`). The
   * outcome stays unknown.
   */
  | { readonly resolution: 'undetermined'; readonly why: 'log-emptied' | 'no-anchor' | 'kind-unanchored' }
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

/**
 * [PAYORCH-RECOVER] candidates of the log that may be the transaction described by `criteria`, above the
 * card anchor `afterSeq` whatever their kind (resolveFromReport tells card entries from SBP ones).
 */
export function findTransactionCandidates(report: XReport, criteria: RecoveryCriteria): ReportTransaction[] {
  const afterSeq = criteria.afterSeq === undefined ? undefined : seqNumber(criteria.afterSeq);
  return report.transactions.filter(
    (entry) =>
      matchesRequest(criteria.request, entry) && (afterSeq === undefined || seqNumber(entry.seq) > afterSeq) && notBefore(entry, criteria.notBeforeTime),
  );
}

/** A card entry of the log names its card (`pan`, `aid`); an SBP entry (§8.10) has neither. */
export function isCardEntry(entry: Pick<ReportTransaction, 'pan' | 'aid'>): boolean {
  return entry.pan !== undefined || entry.aid !== undefined;
}

/**
 * How a request may run (§8.10): `force-sbp` true = SBP only; a purchase without it offers every method
 * the terminal's configuration allows, SBP too (`false` = no SBP); a refund runs as SBP only with it
 * ("Иначе возврат будет производиться по карте"); a void and a purchase with cashback are card transactions.
 */
export function paymentMethodsOf(request: TransactionRequest): { readonly card: boolean; readonly sbp: boolean } {
  switch (request.type) {
    case 'purchase':
      return { card: request.forceSbp !== true, sbp: request.forceSbp !== false };
    case 'refund':
      return { card: request.forceSbp !== true, sbp: request.forceSbp === true };
    default:
      return { card: true, sbp: false };
  }
}

function verdict(transaction: ReportTransaction): RecoveryResult {
  const approved = transaction.status === 'approved' || transaction.status === 'ok';
  return { resolution: approved ? 'approved' : 'declined', transaction };
}

const anchorOf = (seq: string | undefined, rrn: string | undefined, time: string | undefined): LogAnchor | undefined =>
  seq === undefined ? undefined : logAnchor({ seq, rrn, time });

/** An anchor numbered 0 stands for "the log had no entry of its kind": there is no entry to find. */
const namesEntry = (anchor: LogAnchor | undefined): anchor is LogAnchor => anchor !== undefined && seqNumber(anchor.seq) > 0;

/** Resolves from an already fetched full report ([PAYORCH-RECOVER-ANCHOR]). */
export function resolveFromReport(report: XReport, criteria: RecoveryCriteria): RecoveryResult {
  const matching = report.transactions.filter((entry) => matchesRequest(criteria.request, entry));
  const card = anchorOf(criteria.afterSeq, criteria.afterRrn, criteria.afterTime);
  const sbp = anchorOf(criteria.afterSbpSeq, criteria.afterSbpRrn, criteria.afterSbpTime);
  // A close empties the log of both kinds (§8.12): either anchor still there proves nothing was removed since.
  const held = (anchor: LogAnchor | undefined) => namesEntry(anchor) && logHoldsAnchor(report, anchor);
  if (held(card) || held(sbp)) return resolveInUnbrokenLog(report, matching, criteria, card, sbp);
  const recent = matching.filter((entry) => notBefore(entry, criteria.notBeforeTime));
  if (recent.length === 0) return { resolution: 'undetermined', why: namesEntry(card) || namesEntry(sbp) ? 'log-emptied' : 'no-anchor' };
  return recent.length === 1 ? verdict(recent[0]) : { resolution: 'ambiguous', candidates: recent };
}

/**
 * The log holds an anchor: our entry, if the transaction ran, is in it. Each way the request may have run
 * gives the entries of its kind numbered above that kind's anchor (the receipt counters are apart, §8.10).
 * A kind without a usable anchor (an SBP anchor absent from refs recorded before 2026-12-07, or an anchor
 * closed away before the other was recorded) cannot tell an older entry from ours: its entries count only
 * within `notBeforeTime`, and while it has any, finding none proves nothing.
 */
function resolveInUnbrokenLog(
  report: XReport,
  matching: readonly ReportTransaction[],
  criteria: RecoveryCriteria,
  card: LogAnchor | undefined,
  sbp: LogAnchor | undefined,
): RecoveryResult {
  const methods = paymentMethodsOf(criteria.request);
  const kinds: { readonly entries: readonly ReportTransaction[]; readonly anchor: LogAnchor | undefined }[] = [];
  // A card-only request counts every entry above the card anchor, as it always has.
  if (methods.card) kinds.push({ entries: methods.sbp ? matching.filter(isCardEntry) : matching, anchor: card });
  if (methods.sbp) kinds.push({ entries: matching.filter((entry) => !isCardEntry(entry)), anchor: sbp });
  const proven = new Set<ReportTransaction>();
  const unanchored = new Set<ReportTransaction>();
  for (const { entries, anchor } of kinds) {
    if (anchor !== undefined && (!namesEntry(anchor) || logHoldsAnchor(report, anchor))) {
      for (const entry of entries) if (seqNumber(entry.seq) > seqNumber(anchor.seq)) proven.add(entry);
    } else {
      for (const entry of entries) unanchored.add(entry);
    }
  }
  const inBound = (entry: ReportTransaction) => notBefore(entry, criteria.notBeforeTime);
  // In log order; an entry of an unanchored kind may be an older namesake as well as ours: time bounds it.
  const candidates = matching.filter((entry) => proven.has(entry) || (unanchored.has(entry) && inBound(entry)));
  if (candidates.length === 0) return unanchored.size === 0 ? { resolution: 'not-found' } : { resolution: 'undetermined', why: 'kind-unanchored' };
  if (candidates.length === 1) return verdict(candidates[0]);
  // Time only breaks a tie: a terminal clock behind ours must not hide our entry.
  const recent = candidates.filter(inBound);
  return recent.length === 1 ? verdict(recent[0]) : { resolution: 'ambiguous', candidates };
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
