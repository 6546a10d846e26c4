/**
 * Typed errors of the JPAY / aQsi cardcore client. Every error carries a `code` and the
 * reaction the caller (or the session) takes on the wire, so nobody parses message strings.
 * Messages never contain a PAN, a password, a token or decrypted XML.
 */

/** What happens on the wire when this error is raised. */
export type JpayWireReaction =
  /** The frame decoder dropped the bytes and is scanning for the next plausible header. */
  | 'resync'
  /** The connection can no longer be trusted: close it (an in-flight transaction becomes `unknown`). */
  | 'close-connection'
  /** The request was rejected locally before anything was sent. */
  | 'reject-request'
  /** The packet was understood as a message we cannot handle: answer `notimplemented`. */
  | 'reply-notimplemented';

export type JpayErrorCode =
  // framing (§4 "Формат данных")
  | 'FRAME_EMPTY'
  | 'FRAME_TOO_LARGE'
  | 'FRAME_NOT_XML'
  // XML
  | 'XML_MALFORMED'
  | 'XML_DTD_FORBIDDEN'
  | 'XML_NOT_UTF8'
  // codec
  | 'UNKNOWN_COMMAND'
  | 'UNKNOWN_MESSAGE'
  | 'FIELD_MISSING'
  | 'FIELD_INVALID'
  // encryption (§9 "Шифрование команд")
  | 'HANDSHAKE_INVALID'
  | 'DECRYPT_FAILED'
  | 'NOT_ENCRYPTED_SESSION'
  | 'ENCRYPTION_MISMATCH'
  // session
  | 'BUSY'
  | 'CONNECT_FAILED'
  | 'NOT_LOGGED_IN'
  | 'UNEXPECTED_PACKET'
  | 'TRANSPORT_CLOSED'
  | 'TIMEOUT'
  | 'INVALID_ARGUMENT';

const REACTIONS: Record<JpayErrorCode, JpayWireReaction> = {
  FRAME_EMPTY: 'resync',
  FRAME_TOO_LARGE: 'resync',
  FRAME_NOT_XML: 'resync',
  XML_MALFORMED: 'close-connection',
  XML_DTD_FORBIDDEN: 'close-connection',
  XML_NOT_UTF8: 'close-connection',
  UNKNOWN_COMMAND: 'close-connection',
  UNKNOWN_MESSAGE: 'reply-notimplemented',
  FIELD_MISSING: 'close-connection',
  FIELD_INVALID: 'close-connection',
  HANDSHAKE_INVALID: 'close-connection',
  DECRYPT_FAILED: 'close-connection',
  NOT_ENCRYPTED_SESSION: 'reject-request',
  ENCRYPTION_MISMATCH: 'close-connection',
  BUSY: 'reject-request',
  CONNECT_FAILED: 'reject-request',
  NOT_LOGGED_IN: 'reject-request',
  UNEXPECTED_PACKET: 'close-connection',
  TRANSPORT_CLOSED: 'close-connection',
  TIMEOUT: 'close-connection',
  INVALID_ARGUMENT: 'reject-request',
};

export interface JpayErrorDetails {
  /** Byte offset in the stream/frame, when known. */
  readonly offset?: number;
  /** Name of the offending XML element or request field (never its value). */
  readonly field?: string;
  /** Declared frame length, for framing errors. */
  readonly length?: number;
}

export class JpayError extends Error {
  override readonly name = 'JpayError';
  readonly reaction: JpayWireReaction;

  constructor(
    readonly code: JpayErrorCode,
    message: string,
    readonly details: JpayErrorDetails = {},
    options?: { cause?: unknown },
  ) {
    super(message, options);
    this.reaction = REACTIONS[code];
  }
}

export function isJpayError(value: unknown, code?: JpayErrorCode): value is JpayError {
  return value instanceof JpayError && (code === undefined || value.code === code);
}

/**
 * [PAYORCH-AFTER-SEND] An error raised once the command may have reached the application. The
 * `reject-request` reaction promises that nothing was sent, so such an error (an answer we cannot
 * echo, a response we cannot decode, anything not a JpayError) becomes `UNEXPECTED_PACKET`: the
 * connection is closed and the command's outcome is unknown, to be recovered — never "not sent".
 */
export function afterSendError(error: unknown): JpayError {
  if (error instanceof JpayError && error.reaction !== 'reject-request') return error;
  const message = error instanceof Error ? error.message : String(error);
  const details = error instanceof JpayError ? error.details : {};
  return new JpayError('UNEXPECTED_PACKET', `after the command was sent: ${message}`, details, { cause: error });
}
