/**
 * Recovery of a transaction whose outcome is `unknown` (connection lost or timeout after the command
 * was sent). JPAY has no "get last result" command, so we read the terminal's transaction log with a
 * full report (§8.11, `report-type=full`) and look the transaction up.
 *
 * Matching ([PAYORCH-RECOVER], our rule; the spec gives no key that links a request to a log entry):
 *  - the log entry's type corresponds to the request type (void ↔ purchasereversal | refundreversal |
 *    reversal; purchase-with-cashback ↔ purchase-with-cashback | purchasewithcashback | purchase);
 *  - its amount `aa` equals the requested amount (for cashback: amount or amount + cashback; a full
 *    void has no amount to compare);
 *  - it is newer than what the caller knew before the attempt: `afterSeq` (receipt number of the last
 *    transaction seen) and/or `notBeforeTime` (yyMMddHHmmss in the terminal's time zone).
 * Exactly one match decides; none means the transaction never reached the log (not performed); more
 * than one stays unresolved for an operator.
 */
import type { JpayClient } from './client';
import { JpayError } from './errors';
import type { ReportTransaction, TransactionRequest, XReport } from './messages';
import type { JpayStatus } from './status';

export interface RecoveryCriteria {
  readonly request: TransactionRequest;
  /** Receipt number (`seq`) of the last transaction known before the attempt. */
  readonly afterSeq?: string;
  /** Earliest plausible log time, yyMMddHHmmss in the terminal's (till's) time zone. */
  readonly notBeforeTime?: string;
}

export type RecoveryResult =
  | { readonly resolution: 'approved' | 'declined'; readonly transaction: ReportTransaction }
  /** Not in the log: the application never completed it. */
  | { readonly resolution: 'not-found' }
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

/** [PAYORCH-RECOVER] candidates of the log that may be the transaction described by `criteria`. */
export function findTransactionCandidates(report: XReport, criteria: RecoveryCriteria): ReportTransaction[] {
  const types = LOG_TYPES[criteria.request.type];
  const afterSeq = criteria.afterSeq === undefined ? undefined : Number(criteria.afterSeq);
  return report.transactions.filter(
    (entry) =>
      entry.type !== undefined &&
      types.includes(entry.type) &&
      amountMatches(criteria.request, entry) &&
      (afterSeq === undefined || Number(entry.seq) > afterSeq) &&
      (criteria.notBeforeTime === undefined || (entry.time ?? '') >= criteria.notBeforeTime),
  );
}

/** Resolves from an already fetched full report. */
export function resolveFromReport(report: XReport, criteria: RecoveryCriteria): RecoveryResult {
  const candidates = findTransactionCandidates(report, criteria);
  if (candidates.length === 0) return { resolution: 'not-found' };
  if (candidates.length > 1) return { resolution: 'ambiguous', candidates };
  const [transaction] = candidates;
  const approved = transaction.status === 'approved' || transaction.status === 'ok';
  return { resolution: approved ? 'approved' : 'declined', transaction };
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
