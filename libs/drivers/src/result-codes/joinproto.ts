import { CANCELED_MEANING, CANCELED_TEXT, PROTOCOL_ERROR_CODE, RESPONSE_CODE_MEANINGS } from '@payorch/joinproto';

import type { FinalState } from '../types';
import { indexTable, type ReasonCode, type ResultCodeEntry, type ResultCodeTable } from './types';

/** DF16 → reason code of the answers the spec lists (spec 2, «Коды ответа (DF16)»); the state follows from the code. */
const REASONS: Readonly<Record<string, ReasonCode>> = {
  XX: 'terminal_error',
  '000': 'approved',
  '001': 'approved',
  '005': 'declined_by_issuer',
  '020': 'insufficient_funds',
  '095': 'reconciliation_failed',
  '100': 'declined_by_issuer',
  '101': 'card_expired',
  '103': 'declined_by_issuer',
  '104': 'card_invalid',
  '105': 'declined_by_issuer',
  '106': 'pin_invalid',
  '107': 'declined_by_issuer',
  '109': 'declined_by_issuer',
  '110': 'limit_exceeded',
  '111': 'card_invalid',
  '116': 'insufficient_funds',
  '117': 'pin_invalid',
  '118': 'declined_by_issuer',
  '119': 'declined_by_issuer',
  '120': 'declined_by_issuer',
  '121': 'limit_exceeded',
  '123': 'limit_exceeded',
  '125': 'card_invalid',
  '126': 'pin_invalid',
  '127': 'pin_invalid',
  '128': 'pin_invalid',
  '200': 'card_invalid',
  '201': 'card_expired',
  '202': 'card_invalid',
  '203': 'declined_by_issuer',
  '204': 'card_invalid',
  '205': 'declined_by_issuer',
  '206': 'pin_invalid',
  '208': 'card_lost_stolen',
  '209': 'card_lost_stolen',
  '901': 'invalid_request',
  '902': 'declined_by_issuer',
  '903': 'declined_by_issuer',
  '904': 'invalid_request',
  '905': 'card_invalid',
  '907': 'issuer_unavailable',
  '908': 'card_invalid',
  '909': 'issuer_unavailable',
  '910': 'issuer_unavailable',
  '911': 'declined_by_issuer',
  '912': 'issuer_unavailable',
  '913': 'duplicate',
  '914': 'original_not_found',
  '915': 'amount_mismatch',
  '916': 'declined_by_issuer',
  '920': 'pin_invalid',
  '923': 'in_progress',
  '940': 'card_lost_stolen',
};

/** `XX` + DF1A `CANCELED`: the cardholder's cancel, a 90 interrupt or the card timeout (spec 5.1.1, 5.5.1). */
export const JOINPROTO_CANCELED_CODE = `${PROTOCOL_ERROR_CODE}/${CANCELED_TEXT}`;

function stateOf(code: string): FinalState {
  if (code === '000' || code === '001') return 'approved';
  // A protocol-level refusal: the terminal did not run a transaction, nothing is in its journal.
  if (code === PROTOCOL_ERROR_CODE) return 'failed';
  // «Request in process»: not final, recovery (95) decides.
  if (code === '923') return 'unknown';
  // Any other DF16 is the processing centre's answer to a transaction that ran: declined.
  return 'declined';
}

const entries: ResultCodeEntry[] = [
  ...Object.entries(RESPONSE_CODE_MEANINGS).map(([code, meaning]) => ({
    code,
    spec: code === PROTOCOL_ERROR_CODE ? '2, 4.x.1 (DF16 XX)' : '2 (DF16)',
    state: stateOf(code),
    reasonCode: REASONS[code] ?? 'declined_by_issuer',
    message: meaning,
  })),
  { code: JOINPROTO_CANCELED_CODE, spec: '5.1.1, 5.5.1 (DF16 XX, DF1A CANCELED)', state: 'canceled', reasonCode: 'canceled', message: CANCELED_MEANING },
];

export const JOINPROTO_RESULT_CODES: ResultCodeTable = {
  protocol: 'JOINPROTO',
  title: 'Joinproto (DF16 response code, DF1A text)',
  lookup:
    'DF16 of the answer; `XX` with DF1A `CANCELED` is its own row. 10 LoadConfig / 11 UpdateApp answer `001` for "not ok": there `000` is success and any other code failed (spec 4.6, 4.7).',
  entries,
};

const BY_CODE = indexTable(JOINPROTO_RESULT_CODES);
const UNLISTED: Omit<ResultCodeEntry, 'code'> = {
  spec: '2 (not listed)',
  state: 'declined',
  reasonCode: 'declined_by_issuer',
  message: 'Unknown response code',
};

/** The row of a DF16 answer (with its DF1A); a code the spec does not list is the processing centre's refusal. */
export function joinprotoResult(code: string, canceled: boolean): ResultCodeEntry {
  if (canceled) return BY_CODE.get(JOINPROTO_CANCELED_CODE)!;
  return BY_CODE.get(code) ?? { code, ...UNLISTED };
}
