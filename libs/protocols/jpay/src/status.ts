/**
 * Status codes, Appendix A "Коды ошибок" of both documents, and how each maps to an outcome.
 *
 * Document typos handled here (accepted on input, the corrected spelling is canonical):
 *  - `ormaterror` (both documents) is read as `formaterror`;
 *  - `pinpadmalfunctionornotprsent` (JPAY) is read as `pinpadmalfunctionornotpresent` (aQsi).
 * A status outside the table (e.g. `connectionerror`, used by the documents' own error-stack
 * example) is kept verbatim and classed as `error`.
 */

export const STATUS_CODES = [
  'ok',
  'failed',
  'communicationerror',
  'notimplemented',
  'formaterror',
  'notauthorized',
  'fileioerror',
  'verificationfailed',
  'missingdata',
  'systemerror',
  'timeout',
  'invalidarguments',
  'transactionnotfound',
  'notreversible',
  'alreadyreversed',
  'notapproved',
  'emverror',
  'notdetected',
  'notallowedinterface',
  'cancelled',
  'tryagain',
  'usechip',
  'batchuploadfailed',
  'readerdisabled',
  'preprocessingfailed',
  'readernotavailable',
  'readererror',
  'tryanotherinterface',
  'pinpadmalfunctionornotpresent',
  'pinentrybypassed',
] as const;

export type KnownStatus = (typeof STATUS_CODES)[number];
/** A known Appendix A code, or any other string the application sends. */
export type JpayStatus = KnownStatus | (string & {});

const ALIASES: Record<string, KnownStatus> = {
  ormaterror: 'formaterror',
  pinpadmalfunctionornotprsent: 'pinpadmalfunctionornotpresent',
};

const KNOWN = new Set<string>(STATUS_CODES);

export function normalizeStatus(raw: string): JpayStatus {
  const trimmed = raw.trim();
  return ALIASES[trimmed] ?? trimmed;
}

export function isKnownStatus(status: string): status is KnownStatus {
  return KNOWN.has(status);
}

/** Coarse class of a status: what a caller does with a non-`ok` answer. */
export type StatusClass =
  /** `ok`. */
  | 'success'
  /** The operation was aborted by the operator or the cardholder. */
  | 'canceled'
  /** Card could not be read: the same operation may be retried (maybe with another interface). */
  | 'card-retry'
  /** Admin password or token rejected. */
  | 'auth'
  /** Anything else: the operation did not complete. */
  | 'error';

export function classifyStatus(status: JpayStatus): StatusClass {
  switch (status) {
    case 'ok':
      return 'success';
    case 'cancelled':
    case 'pinentrybypassed':
      return 'canceled';
    case 'tryagain':
    case 'usechip':
    case 'tryanotherinterface':
    case 'notdetected':
      return 'card-retry';
    case 'notauthorized':
      return 'auth';
    default:
      return 'error';
  }
}

/**
 * [PAYORCH-NOT-PERFORMED] Non-`ok` statuses that prove the transaction did not reach authorisation: the
 * request was refused before anything ran (format, password, arguments, the original of a void), or the
 * card could not be read, its interface was refused or the PIN could not be entered — all before the
 * terminal asks the host. The spec says only "Чек в ответе может отсутствовать если значение тэга status
 * отличается от ok"; any other status (`failed`, `communicationerror`, `timeout`, `systemerror`,
 * `fileioerror`, `verificationfailed`, `emverror`, `readererror`, `batchuploadfailed`, or one outside
 * Appendix A) can come after the host approved (a lost host answer, a kernel or storage error after it),
 * so without a receipt it leaves the outcome unknown. `cancelled` and `pinentrybypassed` are the
 * terminal's own word that it stopped (classifyStatus → `canceled`).
 */
const NOT_PERFORMED = new Set<string>([
  'notimplemented',
  'formaterror',
  'notauthorized',
  'missingdata',
  'invalidarguments',
  'transactionnotfound',
  'notreversible',
  'alreadyreversed',
  'notapproved',
  'notdetected',
  'notallowedinterface',
  'tryagain',
  'usechip',
  'readerdisabled',
  'preprocessingfailed',
  'readernotavailable',
  'tryanotherinterface',
  'pinpadmalfunctionornotpresent',
] satisfies KnownStatus[]);

/** [PAYORCH-NOT-PERFORMED] True when `status` (normalised) proves the transaction was not performed. */
export function provesNotPerformed(status: JpayStatus): boolean {
  return NOT_PERFORMED.has(normalizeStatus(status));
}
