import type { TerminalErrorCode } from './codes';

/**
 * Every failure the library reports, as a `code` union (STYLE C3). Callers switch on `code`, never on messages.
 *
 * Decoding codes carry the wire reaction a terminal gives (spec 4.3.3 / 5.1): `reply` is the `errorCode`
 * the terminal answers with, or `'drop'` when bytes are silently discarded.
 */
export type SsiEcrErrorCode =
  // framing (spec 1.3)
  | 'UNEXPECTED_BYTES'
  | 'WRONG_PROTOCOL_ID'
  | 'UNSUPPORTED_VERSION'
  | 'FRAME_TOO_LARGE'
  | 'BAD_CHECKSUM'
  // JSON and message validation (spec 1.2, 4.3)
  | 'BAD_JSON'
  | 'MISSING_FIELD'
  | 'UNKNOWN_METHOD'
  | 'INVALID_FIELD'
  // client / runner
  | 'TERMINAL_ERROR'
  | 'TERMINAL_BUSY'
  | 'INTERRUPT_NOT_ALLOWED'
  | 'TIMEOUT'
  | 'CONNECT_FAILED'
  | 'CONNECTION_CLOSED'
  | 'UNEXPECTED_RESPONSE'
  | 'OPERATION_IN_PROGRESS'
  | 'ABORTED'
  /** Recovery proved the request never executed (matching.ts provesNotExecuted). */
  | 'NOT_EXECUTED';

/** What a terminal does on receiving bytes that fail this check. */
export type WireReaction = TerminalErrorCode | 'drop';

export interface SsiEcrErrorDetails {
  readonly reply?: WireReaction;
  /** For INVALID_FIELD / MISSING_FIELD: the key at fault (sent as `errorParams` with E09). */
  readonly field?: string;
  /** For TERMINAL_ERROR / TERMINAL_BUSY: the terminal's errorCode and description. */
  readonly terminalErrorCode?: string;
  readonly terminalErrorDescription?: string;
  /** Free-form context safe for logs (never a PAN). */
  readonly context?: Readonly<Record<string, string | number | boolean>>;
}

export class SsiEcrError extends Error {
  override readonly name = 'SsiEcrError';

  constructor(
    readonly code: SsiEcrErrorCode,
    message: string,
    readonly details: SsiEcrErrorDetails = {},
  ) {
    super(message);
  }

  /** The terminal's reaction for decoding errors; undefined for client-side errors. */
  get reply(): WireReaction | undefined {
    return this.details.reply;
  }
}

export function isSsiEcrError(error: unknown, code?: SsiEcrErrorCode): error is SsiEcrError {
  return error instanceof SsiEcrError && (code === undefined || error.code === code);
}
