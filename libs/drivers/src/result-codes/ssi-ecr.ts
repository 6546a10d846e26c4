import { ERROR_CODES, TRANSACTION_RESULTS } from '@payorch/ssi-ecr';

import type { FinalState } from '../types';
import { indexTable, type ReasonCode, type ResultCodeEntry, type ResultCodeTable } from './types';

/** Table 4.3.3 `errorCode`: a request fault (the terminal did nothing) or a transaction outcome. */
const ERRORS: Readonly<Record<keyof typeof ERROR_CODES, { state: FinalState; reasonCode: ReasonCode }>> = {
  E00: { state: 'failed', reasonCode: 'terminal_error' },
  E01: { state: 'failed', reasonCode: 'invalid_request' },
  E02: { state: 'failed', reasonCode: 'invalid_request' },
  E03: { state: 'failed', reasonCode: 'invalid_request' },
  E04: { state: 'failed', reasonCode: 'invalid_request' },
  E05: { state: 'failed', reasonCode: 'not_supported' },
  E06: { state: 'failed', reasonCode: 'terminal_busy' },
  E07: { state: 'failed', reasonCode: 'invalid_request' },
  // The answer to Interrupt: the operation goes on and its own result decides.
  E08: { state: 'unknown', reasonCode: 'in_progress' },
  E09: { state: 'failed', reasonCode: 'invalid_request' },
  E10: { state: 'declined', reasonCode: 'host_unreachable' },
  E11: { state: 'declined', reasonCode: 'pin_invalid' },
  E12: { state: 'canceled', reasonCode: 'canceled' },
  E13: { state: 'declined', reasonCode: 'terminal_error' },
  E14: { state: 'declined', reasonCode: 'terminal_error' },
  E15: { state: 'declined', reasonCode: 'batch_close_required' },
  E16: { state: 'declined', reasonCode: 'card_read_error' },
  E17: { state: 'declined', reasonCode: 'card_read_error' },
  E18: { state: 'failed', reasonCode: 'terminal_error' },
  E19: { state: 'failed', reasonCode: 'limit_exceeded' },
  // GetLastResult / GetResultByUid: the terminal has no such transaction — it was not performed.
  E20: { state: 'failed', reasonCode: 'original_not_found' },
  E21: { state: 'declined', reasonCode: 'terminal_error' },
};

/** Table 4.3.2 `transactionResult` (GetLastResult) of a transaction the terminal ran and journaled. */
const RESULTS: Readonly<Record<(typeof TRANSACTION_RESULTS)[number], { state: FinalState; reasonCode: ReasonCode; message: string }>> = {
  APPROVED_ONLINE: { state: 'approved', reasonCode: 'approved', message: 'Approved online' },
  APPROVED_OFFLINE: { state: 'approved', reasonCode: 'approved', message: 'Approved offline' },
  CANCELLED: { state: 'canceled', reasonCode: 'canceled', message: 'Canceled on the terminal (cardholder or operator cancel)' },
  DECLINED_OFFLINE: { state: 'declined', reasonCode: 'declined_by_issuer', message: 'Declined by the card (offline)' },
  DECLINED_ONLINE: { state: 'declined', reasonCode: 'declined_by_issuer', message: 'Declined by the issuer (online)' },
  FAILED: { state: 'declined', reasonCode: 'terminal_error', message: 'The transaction ran and failed (journaled by the terminal)' },
  NO_CONNECTION: { state: 'declined', reasonCode: 'host_unreachable', message: 'No connection to the host' },
  CONNECTION_ERROR: { state: 'declined', reasonCode: 'host_unreachable', message: 'Connection error with the host' },
  CONNECTION_TIMEOUT: { state: 'declined', reasonCode: 'issuer_unavailable', message: 'The host did not answer in time' },
  PIN_ERROR: { state: 'declined', reasonCode: 'pin_invalid', message: 'PIN error' },
  SIGNATURE_VERIFICATION_ERROR: { state: 'declined', reasonCode: 'pin_invalid', message: 'Signature verification failed' },
  // Only valid while the two-step operation runs; an idle terminal still saying so is inconsistent.
  FIRST_STEP_COMPLETED: { state: 'unknown', reasonCode: 'in_progress', message: 'First step completed; the second step decides' },
};

const entries: ResultCodeEntry[] = [
  ...(Object.keys(RESULTS) as (keyof typeof RESULTS)[]).map((code) => ({ code, spec: '4.3.2 transactionResult', ...RESULTS[code] })),
  ...(Object.keys(ERRORS) as (keyof typeof ERROR_CODES)[]).map((code) => ({
    code,
    spec: `4.3.3 errorCode (${ERROR_CODES[code].category})`,
    ...ERRORS[code],
    message: ERROR_CODES[code].description,
  })),
];

export const SSI_RESULT_CODES: ResultCodeTable = {
  protocol: 'SSI_ECR',
  title: 'SSI ECR (transactionResult, errorCode)',
  lookup:
    'A financial result (GetLastResult) by its `transactionResult` (spelling `APPROVED-ONLINE` normalised); without one, by its `errorCode`. A request refused outright (error of category "request") by its `errorCode`.',
  entries,
};

const BY_CODE = indexTable(SSI_RESULT_CODES);

/** The row of a financial result: its transactionResult, else its errorCode; undefined for a code the spec does not list. */
export function ssiResult(transactionResult: string | undefined, errorCode: string | undefined): ResultCodeEntry | undefined {
  return (transactionResult && BY_CODE.get(transactionResult)) || (errorCode && BY_CODE.get(errorCode)) || undefined;
}
