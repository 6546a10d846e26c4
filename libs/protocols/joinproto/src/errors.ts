/**
 * Every failure the Joinproto library reports, as a `code` union (STYLE C3).
 * Callers switch on `code`, never on message text.
 *
 * Decoding failures carry the wire reaction (`reply`): the DF1A text the receiving side answers
 * with in an `XX` response (spec 3 «Обработка ошибок»), or `null` when nothing is sent back.
 */
export type JoinprotoErrorCode =
  // framing (spec 2 «Структура сообщения», 3)
  | 'NO_STX'
  | 'EMPTY_DATA'
  | 'BAD_LRC'
  | 'BAD_TLV'
  | 'TRUNCATED_TLV'
  | 'INCOMPLETE_FRAME'
  | 'FRAME_TOO_LARGE'
  // TLV values and message shape (spec 2, tag table)
  | 'BAD_TAG_LENGTH'
  | 'BAD_TAG_FORMAT'
  | 'MISSING_TAG'
  | 'DUPLICATE_TAG'
  | 'UNKNOWN_COMMAND'
  | 'INVALID_MESSAGE'
  // till session
  | 'SESSION_CLOSED'
  | 'ID_CONFLICT';

/** DF1A text of the `XX` answer to a bad frame (spec 3), or null: no answer. */
export type WireReply = 'other err' | 'UNKNOWN COMMAND' | null;

export interface JoinprotoErrorDetails {
  readonly reply?: WireReply;
  /** Offset of the fault in the frame or DATA, where known. */
  readonly offset?: number;
  /** Tag at fault, e.g. `DF05`. */
  readonly tag?: string;
  /** Raw DF00 / DF01 of the offending frame when they could be read: needed to build the answer. */
  readonly command?: string;
  readonly id?: string;
}

export class JoinprotoError extends Error {
  override readonly name = 'JoinprotoError';

  constructor(
    readonly code: JoinprotoErrorCode,
    message: string,
    readonly details: JoinprotoErrorDetails = {},
  ) {
    super(message);
  }

  /** The receiver's reaction on the wire; `other err` unless stated otherwise (spec 3). */
  get reply(): WireReply {
    return this.details.reply === undefined ? 'other err' : this.details.reply;
  }
}

export function isJoinprotoError(error: unknown, code?: JoinprotoErrorCode): error is JoinprotoError {
  return error instanceof JoinprotoError && (code === undefined || error.code === code);
}
