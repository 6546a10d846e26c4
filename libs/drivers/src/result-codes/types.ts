import type { FinalState } from '../types';

/**
 * Protocol-neutral reason of an outcome: the same situation gets the same code on every protocol
 * (a cardholder's cancel is `canceled` whether Joinproto says `XX CANCELED`, JPAY `cancelled` or SSI `E12`).
 */
export const REASON_CODES = {
  approved: 'The host (or the card offline) approved the operation.',
  declined_by_issuer: 'The issuer or the processing centre refused the operation.',
  insufficient_funds: 'Not enough funds on the account.',
  limit_exceeded: 'An amount or count limit of the card or account was reached.',
  card_expired: 'The card has expired.',
  card_invalid: 'The card is invalid, restricted or unknown to the issuer.',
  card_lost_stolen: 'The card is reported lost or stolen, or must be picked up.',
  pin_invalid: 'PIN or signature verification failed.',
  pin_unavailable: 'The PIN could not be entered (PIN pad missing or faulty, PIN entry bypassed).',
  card_read_error: 'The card could not be read or processed (EMV kernel, reader, interface).',
  issuer_unavailable: 'The issuer or its network did not answer.',
  host_unreachable: 'The terminal could not reach its processing centre.',
  original_not_found: 'The original operation to refund, void or complete was not found.',
  original_not_reversible: 'The original operation cannot be voided (not approved, already voided, not reversible).',
  amount_mismatch: 'The amount does not match the original operation.',
  duplicate: 'The host saw the same operation twice.',
  canceled: 'The cardholder or the operator canceled, or nobody presented a card in time.',
  invalid_request: 'The terminal or the processing centre refused the request as malformed or invalid.',
  not_supported: 'The terminal does not implement the command.',
  not_authorized: 'The admin password or token was refused.',
  terminal_busy: 'The terminal was running another command.',
  batch_close_required: 'The terminal needs a close-day (Z report) first.',
  reconciliation_failed: 'The close-day / reconciliation did not balance or failed.',
  terminal_error: 'The terminal reported an internal error; the operation did not complete.',
  in_progress: 'The result is not final yet; recovery decides.',
} as const;

export type ReasonCode = keyof typeof REASON_CODES;

/** One code of a protocol's specification and what it means for an operation. */
export interface ResultCodeEntry {
  /** As on the wire (Joinproto DF16 [+ DF1A], JPAY `status` / `tstatus` / `decline-reason`, SSI `errorCode` / `transactionResult`). */
  readonly code: string;
  /** Where the specification defines it. */
  readonly spec: string;
  readonly state: FinalState;
  readonly reasonCode: ReasonCode;
  /** The text an operation carries as its reason. */
  readonly message: string;
}

export interface ResultCodeTable {
  readonly protocol: 'JOINPROTO' | 'JPAY' | 'SSI_ECR';
  readonly title: string;
  /** How the driver reads the protocol's answer into a code of this table. */
  readonly lookup: string;
  readonly entries: readonly ResultCodeEntry[];
}

/** A table's entries by code; `of(code)` is undefined for a code the specification does not list. */
export function indexTable(table: ResultCodeTable): ReadonlyMap<string, ResultCodeEntry> {
  return new Map(table.entries.map((entry) => [entry.code, entry]));
}
