/**
 * Transaction outcome. Appendix A statuses and the receipt's `tstatus` mapped to what happened to the
 * money:
 *  - `ok` + receipt approved              → approved   ([JPAY-8.9-APPROVED])
 *  - `ok` + receipt not approved          → declined
 *  - `ok` without a receipt               → unknown (`no-receipt`): the spec only calls a transaction
 *                                           approved with a receipt; recover via the report
 *  - `cancelled`, `pinentrybypassed`      → canceled
 *  - any other status                     → error (the application reports it did not complete)
 *  - connection closed / timeout / protocol violation after the command was sent → unknown, never error.
 */
import type { JpayError } from './errors';
import type { Receipt, TransactionResponse } from './messages';
import { isApprovedReceipt } from './receipt';
import { classifyStatus, type JpayStatus } from './status';

export type TransactionOutcome = 'approved' | 'declined' | 'canceled' | 'error' | 'unknown';

export type UnknownReason = 'transport-closed' | 'timeout' | 'protocol-error' | 'no-receipt';

export type TransactionResult =
  | {
      readonly outcome: 'approved' | 'declined';
      readonly status: 'ok';
      readonly receipt: Receipt;
      readonly response: TransactionResponse;
    }
  | {
      readonly outcome: 'canceled' | 'error';
      readonly status: JpayStatus;
      readonly response: TransactionResponse;
    }
  /** The command never reached the application (connection could not be opened). */
  | { readonly outcome: 'error'; readonly status?: undefined; readonly error: JpayError }
  | {
      readonly outcome: 'unknown';
      readonly reason: UnknownReason;
      readonly error?: JpayError;
      readonly response?: TransactionResponse;
    };

/** Maps a decoded transaction response to its outcome. */
export function transactionOutcome(response: TransactionResponse): TransactionResult {
  const { status, receipt } = response;
  if (status === 'ok') {
    if (!receipt) return { outcome: 'unknown', reason: 'no-receipt', response };
    return {
      outcome: isApprovedReceipt(receipt) ? 'approved' : 'declined',
      status: 'ok',
      receipt,
      response,
    };
  }
  return {
    outcome: classifyStatus(status) === 'canceled' ? 'canceled' : 'error',
    status,
    response,
  };
}

/** Maps a failure after the command was sent to `unknown` with its reason. */
export function unknownOutcome(error: JpayError): TransactionResult {
  const reason: UnknownReason = error.code === 'TIMEOUT' ? 'timeout' : error.code === 'TRANSPORT_CLOSED' ? 'transport-closed' : 'protocol-error';
  return { outcome: 'unknown', reason, error };
}
