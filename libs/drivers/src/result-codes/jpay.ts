import { type JpayStatus, normalizeStatus, STATUS_CODES } from '@payorch/jpay';

import { indexTable, type ReasonCode, type ResultCodeEntry, type ResultCodeTable } from './types';

/**
 * Appendix A statuses of both documents (aQsi cardcore, JPAY 1.0.14) with their texts, and the
 * receipt's `tstatus` / `decline-reason` (§8.10). The reason codes only: whether a status proves the
 * transaction was not performed (`failed`) or leaves it `unknown` is @payorch/jpay's `provesNotPerformed`.
 */
const STATUSES: Readonly<Record<(typeof STATUS_CODES)[number], { reasonCode: ReasonCode; message: string }>> = {
  ok: { reasonCode: 'approved', message: 'Operation completed (the receipt tells approved or declined)' },
  failed: { reasonCode: 'terminal_error', message: 'Operation completed with an error' },
  communicationerror: { reasonCode: 'host_unreachable', message: 'Communication error (including a failed network connection)' },
  notimplemented: { reasonCode: 'not_supported', message: 'The requested function is not implemented' },
  formaterror: { reasonCode: 'invalid_request', message: 'Data format error' },
  notauthorized: { reasonCode: 'not_authorized', message: 'Invalid login or password' },
  fileioerror: { reasonCode: 'terminal_error', message: 'File access error' },
  verificationfailed: { reasonCode: 'terminal_error', message: 'Checksum or certificate verification failed' },
  missingdata: { reasonCode: 'invalid_request', message: 'Data needed for the operation is missing' },
  systemerror: { reasonCode: 'terminal_error', message: 'System error' },
  timeout: { reasonCode: 'terminal_error', message: 'The operation did not complete in time' },
  invalidarguments: { reasonCode: 'invalid_request', message: 'Invalid operation parameters' },
  transactionnotfound: { reasonCode: 'original_not_found', message: 'The transaction to void is not in the log' },
  notreversible: { reasonCode: 'original_not_reversible', message: 'The transaction cannot be voided' },
  alreadyreversed: { reasonCode: 'original_not_reversible', message: 'The transaction is already voided' },
  notapproved: { reasonCode: 'original_not_reversible', message: 'The transaction to void was not approved' },
  emverror: { reasonCode: 'card_read_error', message: 'EMV kernel error (including initialisation)' },
  notdetected: { reasonCode: 'card_read_error', message: 'Card detection error' },
  notallowedinterface: { reasonCode: 'card_read_error', message: 'This card interface is not allowed for the operation' },
  cancelled: { reasonCode: 'canceled', message: 'Canceled on the terminal (cardholder or operator cancel)' },
  tryagain: { reasonCode: 'card_read_error', message: 'Card read error; try again' },
  usechip: { reasonCode: 'card_read_error', message: 'A contact EMV transaction is required (use the chip)' },
  batchuploadfailed: { reasonCode: 'reconciliation_failed', message: 'Transaction log upload failed' },
  readerdisabled: { reasonCode: 'card_read_error', message: 'The card reader is disabled' },
  preprocessingfailed: { reasonCode: 'card_read_error', message: 'EMV kernel pre-processing failed' },
  readernotavailable: { reasonCode: 'card_read_error', message: 'No card reader' },
  readererror: { reasonCode: 'card_read_error', message: 'Card reader error' },
  tryanotherinterface: { reasonCode: 'card_read_error', message: 'Card read error; use another interface' },
  pinpadmalfunctionornotpresent: { reasonCode: 'pin_unavailable', message: 'PIN entry error (PIN pad faulty or missing)' },
  pinentrybypassed: { reasonCode: 'pin_unavailable', message: 'PIN entry canceled by the cardholder' },
};

/** §8.10 `decline-reason` of a receipt with `tstatus` declined. */
const DECLINE_REASONS: Readonly<Record<string, { reasonCode: ReasonCode; message: string }>> = {
  onlinedeclined: { reasonCode: 'declined_by_issuer', message: 'Declined by the issuer (online)' },
  offlinedeclined: { reasonCode: 'declined_by_issuer', message: 'Declined by the card (offline)' },
  unabletoonline: { reasonCode: 'host_unreachable', message: 'Declined: the host could not be reached and the card refused offline' },
  systemerror: { reasonCode: 'terminal_error', message: 'Declined: system error' },
  cardprocessingerror: { reasonCode: 'card_read_error', message: 'Declined: card processing error' },
};

const entries: ResultCodeEntry[] = [
  { code: 'ok/approved', spec: '§8.10 (status ok, receipt tstatus approved)', state: 'approved', reasonCode: 'approved', message: 'Approved' },
  { code: 'ok/declined', spec: '§8.10 (status ok, receipt tstatus declined)', state: 'declined', reasonCode: 'declined_by_issuer', message: 'Declined' },
  ...Object.entries(DECLINE_REASONS).map(([reason, row]) => ({
    code: `ok/declined/${reason}`,
    spec: '§8.10 decline-reason',
    state: 'declined' as const,
    ...row,
  })),
  {
    code: 'ok/no-receipt',
    spec: '§8.10 ("approved only with a receipt")',
    state: 'unknown',
    reasonCode: 'in_progress',
    message: 'ok without a receipt: the outcome is read from the report',
  },
  ...STATUS_CODES.filter((s) => s !== 'ok').map((status) => ({
    code: status,
    spec: 'Appendix A',
    // A cancel and a bypassed PIN end the transaction by the cardholder's or operator's choice.
    state: status === 'cancelled' || status === 'pinentrybypassed' ? ('canceled' as const) : ('failed' as const),
    ...STATUSES[status],
  })),
];

export const JPAY_RESULT_CODES: ResultCodeTable = {
  protocol: 'JPAY',
  title: 'JPAY / aQsi cardcore (status, receipt tstatus and decline-reason)',
  lookup:
    "`status` of the transaction response (Appendix A; the documents' typos `ormaterror`, `pinpadmalfunctionornotprsent` read as corrected); with `ok`, the receipt's `tstatus` and `decline-reason` (written `ok/…`).",
  entries,
};

const BY_CODE = indexTable(JPAY_RESULT_CODES);

/** The row of a non-`ok` status; a status outside Appendix A failed with the terminal's own word. */
export function jpayStatusResult(status: JpayStatus): ResultCodeEntry {
  const code = normalizeStatus(status);
  return BY_CODE.get(code) ?? { code, spec: 'not in Appendix A', state: 'failed', reasonCode: 'terminal_error', message: `terminal answered ${code}` };
}

/** The row of an `ok` answer with a receipt: approved, or declined with its decline-reason. */
export function jpayReceiptResult(approved: boolean, declineReason: string | undefined): ResultCodeEntry {
  if (approved) return BY_CODE.get('ok/approved')!;
  return (declineReason && BY_CODE.get(`ok/declined/${declineReason.trim()}`)) || BY_CODE.get('ok/declined')!;
}
