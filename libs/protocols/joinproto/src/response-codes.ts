import type { CommandName } from './commands';
import { PROTOCOL_ERROR_CODE } from './tags';

/** Outcome class of a completed command. */
export type ResponseCategory = 'approved' | 'declined' | 'error' | 'canceled';

/** Response codes and their meaning (spec 2, «Коды ответа (DF16)»). */
export const RESPONSE_CODE_MEANINGS: Readonly<Record<string, string>> = {
  XX: 'Protocol level error',
  '000': 'Successful transaction',
  '001': 'Approved',
  '005': 'System Error',
  '020': 'Negative balance',
  '095': 'Reconcile error',
  '100': "Don't honor transaction",
  '101': 'Expired card',
  '103': 'Call issuer',
  '104': 'Card is restricted',
  '105': 'Call Security',
  '106': 'Excessive pin failures',
  '107': 'Call issuer',
  '109': 'Invalid merchant ID',
  '110': 'Cannot process amount',
  '111': 'Invalid account – retry',
  '116': 'Insufficient funds – retry',
  '117': 'Pin err',
  '118': 'Forced post',
  '119': 'Not permit by law',
  '120': 'Not permit',
  '121': 'Withdrawal limit – retry',
  '123': 'Limit reached in cycle',
  '125': 'Bad Card',
  '126': 'Pin Process error',
  '127': 'Pin Process error',
  '128': 'Pin Process error',
  '200': 'Invalid card',
  '201': 'Card expired',
  '202': 'Invalid card',
  '203': 'Call security',
  '204': 'Account restricted',
  '205': 'Call security',
  '206': 'Invalid pin',
  '208': 'Lost card',
  '209': 'Stolen card',
  '901': 'Invalid parameters',
  '902': 'Invalid transaction – retry',
  '903': 'Enter again',
  '904': 'Message not within Standard',
  '905': 'Unknown issuing Institution',
  '907': 'Issuer inoperative',
  '908': 'Unknown issuing institution',
  '909': 'System malfunction',
  '910': 'Issuer inoperative',
  '911': 'Transaction denied',
  '912': 'Time out',
  '913': 'Duplicate trans received',
  '914': 'Not find original transaction',
  '915': 'Amount not match original',
  '916': 'Debts not found',
  '920': 'Pin process error',
  '923': 'Request in process',
  '940': 'Pick up card',
};

/** DF1A of an `XX` answer when the cardholder pressed Cancel or nobody acted in time (spec 5.x.1). */
export const CANCELED_TEXT = 'CANCELED';

export interface ResponseCodeInfo {
  readonly code: string;
  readonly meaning: string;
  readonly category: ResponseCategory;
}

/**
 * Meaning and category of DF16 (with DF1A for `XX`).
 * - `XX` + `CANCELED` → canceled (cardholder cancel or card timeout, spec 5.1.1, 5.5.1); other `XX` → error.
 * - LoadConfig / UpdateApp (spec 4.6, 4.7): `000` succeeded, anything else (incl. `001` «not ok») is an error.
 * - Otherwise `000` / `001` approved; any other code is an answer of the processing centre that did not
 *   approve: declined. `923 Request in process` is the exception: the result is not final → error.
 */
export function describeResponseCode(code: string, message?: string, command?: CommandName): ResponseCodeInfo {
  const category = categorize(code, message, command);
  // `XX` + CANCELED is the cardholder's cancel or the card timeout, not a protocol error (spec 5.1.1).
  const meaning = category === 'canceled' ? CANCELED_MEANING : (RESPONSE_CODE_MEANINGS[code] ?? 'Unknown response code');
  return { code, meaning, category };
}

/** Meaning of `XX` + DF1A `CANCELED`. */
export const CANCELED_MEANING = 'Canceled on the terminal (cardholder cancel, interrupt or card timeout)';

/**
 * DF1A of a cancel. The spec writes `CANCELED`; terminals pad the text (DF1A is `an`, up to 40 chars) or
 * spell it `Canceled` / `CANCELLED`, and such a cancel must not read as a protocol error.
 */
export function isCanceledText(message: string | undefined): boolean {
  return message !== undefined && message.trim().toUpperCase().replace('CANCELLED', CANCELED_TEXT) === CANCELED_TEXT;
}

function categorize(code: string, message: string | undefined, command: CommandName | undefined): ResponseCategory {
  if (code === PROTOCOL_ERROR_CODE) return isCanceledText(message) ? 'canceled' : 'error';
  if (command === 'LoadConfig' || command === 'UpdateApp') return code === '000' ? 'approved' : 'error';
  if (code === '000' || code === '001') return 'approved';
  if (code === '923') return 'error';
  return 'declined';
}
