/**
 * Error codes (spec 4.3.3), terminal statuses (spec 4.3.4) and transaction result values (spec 4.3.2).
 */

/** Category column of table 4.3.3: a fault of the request, or an outcome of the transaction. */
export type ErrorCategory = 'request' | 'transaction';

export interface ErrorCodeInfo {
  readonly description: string;
  readonly category: ErrorCategory;
}

/** Table 4.3.3, `errorCode` values with the spec's `errorDescription` and category. */
export const ERROR_CODES = {
  E00: { description: 'General error', category: 'request' },
  E01: { description: 'Protocol version is not supported by the terminal', category: 'request' },
  E02: { description: 'Checksum error', category: 'request' },
  E03: { description: 'Json message format error', category: 'request' },
  E04: { description: 'Required fields are missing', category: 'request' },
  E05: { description: 'Unknown method', category: 'request' },
  E06: { description: 'Terminal Busy', category: 'request' },
  E07: { description: 'Merchant Id is not found', category: 'request' },
  E08: { description: 'Interrupt prohibited', category: 'request' },
  E09: { description: 'Format error', category: 'request' },
  E10: { description: 'Connection error', category: 'transaction' },
  E11: { description: 'Verification error (pin, signature)', category: 'transaction' },
  E12: { description: 'Transaction canceled', category: 'transaction' },
  E13: { description: 'MAC Error', category: 'transaction' },
  E14: { description: 'Key error', category: 'transaction' },
  E15: { description: 'Need z report', category: 'transaction' },
  E16: { description: 'Card error', category: 'transaction' },
  E17: { description: 'EMV error', category: 'transaction' },
  E18: { description: 'Printer is out of paper or inoperational', category: 'request' },
  E19: { description: 'Transaction amount out of limit', category: 'request' },
  E20: { description: 'No last transactions found', category: 'transaction' },
  E21: { description: 'General error in transaction', category: 'transaction' },
} as const satisfies Record<string, ErrorCodeInfo>;

export type TerminalErrorCode = keyof typeof ERROR_CODES;

export function isTerminalErrorCode(value: unknown): value is TerminalErrorCode {
  return typeof value === 'string' && Object.prototype.hasOwnProperty.call(ERROR_CODES, value);
}

/**
 * Spec 5.1 allows any code E00–E99 of category "request"; codes above E21 are not in the table.
 * They are kept as strings and treated as request faults.
 */
export function errorCategory(code: string): ErrorCategory {
  return isTerminalErrorCode(code) ? ERROR_CODES[code].category : 'request';
}

/** Table 4.3.4 plus S08 (later revision, see ssi-ecr-notes.md). */
export const TERMINAL_STATUSES = {
  S00: { description: 'Idle', phase: 'idle' },
  S01: { description: 'Transaction in progress, terminal busy', phase: 'processing' },
  S02: { description: 'Waiting for the card', phase: 'waiting_for_card' },
  S03: { description: 'Waiting for the PIN', phase: 'waiting_for_pin' },
  S04: { description: 'Connecting to the bank', phase: 'contacting_bank' },
  S05: { description: 'Printing the receipt', phase: 'printing' },
  S06: { description: 'Z report required', phase: 'z_report_required' },
  S07: { description: 'Take the card out of the reader', phase: 'take_card' },
  /** Later revision: waiting for the second step of the current operation. */
  S08: { description: 'Waiting for the second step', phase: 'waiting_for_second_step' },
} as const;

export type TerminalStatus = keyof typeof TERMINAL_STATUSES;
export type TerminalPhase = (typeof TERMINAL_STATUSES)[TerminalStatus]['phase'];

export function isTerminalStatus(value: unknown): value is TerminalStatus {
  return typeof value === 'string' && Object.prototype.hasOwnProperty.call(TERMINAL_STATUSES, value);
}

/** Spec 5.4.2: Interrupt stops the operation only in S02 and S03; later revisions also allow S08. */
export const INTERRUPTIBLE_STATUSES: readonly TerminalStatus[] = ['S02', 'S03', 'S08'];

/** Spec 4.3.2 `transactionResult` values, plus FIRST_STEP_COMPLETED (later revision). */
export const TRANSACTION_RESULTS = [
  'APPROVED_ONLINE',
  'APPROVED_OFFLINE',
  'CANCELLED',
  'DECLINED_OFFLINE',
  'DECLINED_ONLINE',
  'FAILED',
  'NO_CONNECTION',
  'CONNECTION_ERROR',
  'CONNECTION_TIMEOUT',
  'PIN_ERROR',
  'SIGNATURE_VERIFICATION_ERROR',
  'FIRST_STEP_COMPLETED',
] as const;

export type TransactionResultValue = (typeof TRANSACTION_RESULTS)[number];

/**
 * The spec spells results both `APPROVED_ONLINE` (table 4.3.2) and `APPROVED-ONLINE` (example 5.5.1);
 * we normalise `-` to `_` and upper-case. Unknown values return undefined (the raw text is kept by callers).
 */
export function normaliseTransactionResult(raw: string): TransactionResultValue | undefined {
  const normalised = raw.trim().toUpperCase().replace(/-/g, '_');
  return (TRANSACTION_RESULTS as readonly string[]).includes(normalised) ? (normalised as TransactionResultValue) : undefined;
}

/** Spec 4.3.2 `posEntryMode` values. */
export const POS_ENTRY_MODES = ['CONTACT_EMV', 'CONTACT_FALLBACK', 'CONTACTLESS', 'MAGSTRIPE', 'MANUAL'] as const;
export type PosEntryMode = (typeof POS_ENTRY_MODES)[number];
