/**
 * Transaction outcome. Appendix A statuses and the receipt's `tstatus` mapped to what happened to the
 * money ([JPAY-8.9-APPROVED]: "Транзакция успешно выполнена и одобрена, если в ответе имеется чек и тэг
 * чека tstatus = approved. Чек в ответе может отсутствовать если значение тэга status отличается от ok"):
 *  - a receipt approved, whatever the status  → approved (the receipt is the spec's proof; a non-`ok`
 *                                               status beside it does not undo the approval)
 *  - a receipt declined, or `ok` + a receipt  → declined
 *    without an approval
 *  - `ok` without a receipt                   → unknown (`no-receipt`): recover via the report
 *  - `cancelled`, `pinentrybypassed`          → canceled
 *  - a status that proves non-execution       → error ([PAYORCH-NOT-PERFORMED]: refused request, card
 *                                               or PIN not read, all before the host is asked)
 *  - any other status without a receipt       → unknown (`status-unproven`): `communicationerror`,
 *                                               `timeout`, `systemerror`… can follow a host approval
 *  - connection closed / timeout / protocol violation after the command was sent → unknown, never error.
 */
import type { JpayError } from './errors';
import type { Receipt, TransactionResponse } from './messages';
import { isApprovedReceipt } from './receipt';
import { classifyStatus, provesNotPerformed, type JpayStatus } from './status';

export type TransactionOutcome = 'approved' | 'declined' | 'canceled' | 'error' | 'unknown';

export type UnknownReason = 'transport-closed' | 'timeout' | 'protocol-error' | 'no-receipt' | 'status-unproven';

export type TransactionResult =
  | {
      readonly outcome: 'approved' | 'declined';
      /** Usually `ok`; a receipt decides even beside another status. */
      readonly status: JpayStatus;
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
      /** The status answered, for `status-unproven`. */
      readonly status?: JpayStatus;
    };

function isDeclinedReceipt(receipt: Receipt): boolean {
  return (receipt.tstatus ?? receipt.status) === 'declined';
}

/** Maps a decoded transaction response to its outcome. */
export function transactionOutcome(response: TransactionResponse): TransactionResult {
  const { status, receipt } = response;
  // [JPAY-8.9-APPROVED] A receipt's verdict decides whatever the status says.
  if (receipt && isApprovedReceipt(receipt)) return { outcome: 'approved', status, receipt, response };
  if (receipt && (status === 'ok' || isDeclinedReceipt(receipt))) return { outcome: 'declined', status, receipt, response };
  if (status === 'ok') return { outcome: 'unknown', reason: 'no-receipt', response };
  if (classifyStatus(status) === 'canceled') return { outcome: 'canceled', status, response };
  if (provesNotPerformed(status)) return { outcome: 'error', status, response };
  return { outcome: 'unknown', reason: 'status-unproven', status, response };
}

/** Maps a failure after the command was sent to `unknown` with its reason. */
export function unknownOutcome(error: JpayError): TransactionResult {
  const reason: UnknownReason = error.code === 'TIMEOUT' ? 'timeout' : error.code === 'TRANSPORT_CLOSED' ? 'transport-closed' : 'protocol-error';
  return { outcome: 'unknown', reason, error };
}
