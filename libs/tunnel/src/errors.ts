import type { WireStreamErrorCode } from './codes';
import type { FrameTypeName } from './frame-types';

/**
 * Errors found while decoding one frame (docs/tunnel.md, "Decoding rules").
 * Header errors come first; once a header is valid the frame boundary is known.
 */
export type FrameErrorCode =
  /** Byte 0 high nibble is not 0xA: this is not a tunnel frame. */
  | 'BAD_MAGIC'
  /** Byte 0 low nibble is a header format we do not know. */
  | 'UNSUPPORTED_FORMAT'
  | 'UNKNOWN_FRAME_TYPE'
  /** Reserved flag bits are set (format 1 defines none). */
  | 'BAD_FLAGS'
  /** Header + announced payload exceed `maxFrameBytes`. */
  | 'FRAME_TOO_LARGE'
  /** A WebSocket message is shorter or longer than its header announces. */
  | 'LENGTH_MISMATCH'
  /** A connection frame on a stream id other than 0, or a stream frame on stream 0. */
  | 'BAD_STREAM_ID'
  /** The payload does not have the layout of its frame type (sizes, ranges, trailing bytes). */
  | 'BAD_PAYLOAD'
  | 'BAD_UTF8'
  | 'BAD_JSON'
  /** OPEN carries a link descriptor that does not match the schema. */
  | 'INVALID_LINK'
  /** CONTROL carries a message that does not match the schema. */
  | 'INVALID_CONTROL'
  /** A reason code number this protocol version does not define. */
  | 'UNKNOWN_CODE';

/** Violations of the session rules by a peer whose frames decoded fine. */
export type SessionErrorCode =
  /** A frame that is not allowed in the current connection or stream state. */
  | 'UNEXPECTED_FRAME'
  /** A frame for a stream id that was never opened. */
  | 'UNKNOWN_STREAM'
  /** OPEN with an id of the wrong parity or not above the peer's previous id. */
  | 'BAD_STREAM_ID_ALLOCATION'
  /** DATA beyond the granted window, or CREDIT that overflows 2^31-1. */
  | 'FLOW_CONTROL_VIOLATION'
  /** DATA after the peer's CLOSE on that stream. */
  | 'DATA_AFTER_CLOSE'
  /** A CONTROL message the receiving role must never get (e.g. terminal-list sent to the connector). */
  | 'CONTROL_DIRECTION'
  /** A text WebSocket message: the tunnel is binary only. */
  | 'TEXT_MESSAGE';

export type ProtocolErrorCode = FrameErrorCode | SessionErrorCode;

/**
 * The wire reaction to a protocol error, so callers never parse messages (STYLE C3/C7):
 * - `close-tunnel`: the byte stream is unusable (header error on a byte stream, handshake failure);
 * - `fail-stream`: the frame boundary is intact but one stream's frame is invalid: answer OPEN_FAIL /
 *   RESET(PROTOCOL_ERROR) on that stream and count it against the bad-message budget;
 * - `drop-frame`: drop the frame and count it against the bad-message budget.
 */
export type ProtocolErrorReaction = 'close-tunnel' | 'fail-stream' | 'drop-frame';

export class TunnelProtocolError extends Error {
  override readonly name = 'TunnelProtocolError';

  constructor(
    readonly code: ProtocolErrorCode,
    message: string,
    readonly reaction: ProtocolErrorReaction,
    readonly details: { streamId?: number; frameType?: FrameTypeName } = {},
  ) {
    super(message);
  }

  /** The same error with another reaction (byte streams escalate header errors to `close-tunnel`). */
  withReaction(reaction: ProtocolErrorReaction): TunnelProtocolError {
    return new TunnelProtocolError(this.code, this.message, reaction, this.details);
  }
}

/**
 * How a stream ended abnormally, as seen by the application: a wire code from the peer (OPEN_FAIL,
 * RESET) or from this side, or one of the local-only codes below.
 * - `TUNNEL_CLOSED`: the tunnel went away while the stream was alive. In-flight operations on the
 *   stream have an unknown outcome (STYLE C6: mark payments `unknown`, never `failed`).
 * - `NOT_READY`: the tunnel has not finished its handshake yet.
 */
export type StreamErrorCode = WireStreamErrorCode | 'TUNNEL_CLOSED' | 'NOT_READY';

export class TunnelStreamError extends Error {
  override readonly name = 'TunnelStreamError';

  constructor(
    readonly code: StreamErrorCode,
    message: string,
    /** `true` when the peer reported it (OPEN_FAIL / RESET), `false` when this side decided. */
    readonly remote: boolean,
    readonly streamId?: number,
  ) {
    super(message);
  }
}
