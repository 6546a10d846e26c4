/**
 * Numeric reason codes carried on the wire (docs/tunnel.md, "Reason codes"). Every table is a
 * bijection name <-> u16; decoding an unknown number is a protocol error (the peer negotiated the
 * same protocol version, so it cannot legitimately send a code we do not know).
 */

function reverse<K extends string>(table: Record<K, number>): Map<number, K> {
  return new Map((Object.entries(table) as [K, number][]).map(([name, value]) => [value, name]));
}

/** Why a stream could not be opened (OPEN_FAIL) or was aborted (RESET). */
export const STREAM_ERROR_CODES = {
  /** The endpoint refused the link (TCP RST, port in use, serial port busy). */
  REFUSED: 1,
  /** The endpoint is not reachable (DNS failure, no route, no such serial device). */
  UNREACHABLE: 2,
  /** Connecting, accepting or an idle link timed out. */
  TIMEOUT: 3,
  /** Policy refused the link (egress allowlist, unknown terminal). */
  NOT_ALLOWED: 4,
  /** The receiving side does not implement this link kind. */
  UNSUPPORTED_LINK: 5,
  /** Too many streams or a buffer bound was hit. */
  LIMIT_EXCEEDED: 6,
  /** The peer broke the tunnel protocol on this stream. */
  PROTOCOL_ERROR: 7,
  /** The peer sent more DATA than its credit allowed, or overflowed a window. */
  FLOW_CONTROL_ERROR: 8,
  /** I/O error on an established link (socket error, serial port unplugged). */
  LINK_ERROR: 9,
  /** The application aborted the stream. */
  CANCELLED: 10,
  /** Unexpected failure inside the sending side. */
  INTERNAL: 11,
} as const;

export type WireStreamErrorCode = keyof typeof STREAM_ERROR_CODES;
export const STREAM_ERROR_BY_NUMBER = reverse(STREAM_ERROR_CODES);

/** Why a side half-closed its direction of a stream (CLOSE). */
export const CLOSE_CODES = {
  /** The application ended its side. */
  NORMAL: 0,
  /** The link endpoint (terminal socket, serial port) ended its side. */
  LINK_ENDED: 1,
  /** The side is shutting down gracefully. */
  SHUTDOWN: 2,
} as const;

export type CloseCode = keyof typeof CLOSE_CODES;
export const CLOSE_CODE_BY_NUMBER = reverse(CLOSE_CODES);

/** Why a HELLO was rejected (HELLO_ACK with status 0). */
export const HELLO_REJECT_CODES = {
  /** No protocol version in common; the ACK lists the versions the answering side supports. */
  NO_COMMON_VERSION: 1,
  /** The answering side's policy refused the peer (e.g. agent software too old). */
  POLICY: 2,
} as const;

export type HelloRejectCode = keyof typeof HELLO_REJECT_CODES;
export const HELLO_REJECT_BY_NUMBER = reverse(HELLO_REJECT_CODES);

/**
 * WebSocket close codes (RFC 6455 §7.4.2: 4000-4999 belong to the application) that the connector
 * sends on an agent's socket for reasons of its own, beside the Multiplexer's `WS_CLOSE_CODES`
 * (docs/tunnel.md §2). An agent must not retry with the same credential after `AGENT_REVOKED`.
 */
export const AGENT_CLOSE_CODES = {
  /** A newer connection of the same agent replaced this one. */
  REPLACED: 4000,
  /** The credential no longer authenticates the agent: revoked, replaced by a re-enrollment, or the agent was deleted. */
  AGENT_REVOKED: 4401,
  /**
   * The connector could not set the tunnel up (its database or Redis failed or is overloaded), or could not
   * record the agent's presence after retrying: the agent reconnects after its backoff, counted as a failed
   * dial (not at once, as after a tunnel that worked), so a storm of refusals thins out instead of repeating.
   */
  SETUP_FAILED: 4503,
} as const;

export type AgentCloseCode = keyof typeof AGENT_CLOSE_CODES;
