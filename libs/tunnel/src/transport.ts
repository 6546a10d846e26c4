/**
 * What a Multiplexer needs from the connection under it: a message-oriented, ordered, reliable
 * channel (a WebSocket; an in-memory pipe in tests). One `send` is one frame.
 */
export interface FrameTransport {
  /**
   * Sends one frame as one binary message. `onFlushed` runs once the bytes left this process (or
   * failed); the Multiplexer counts unflushed bytes to stop feeding DATA into a slow connection.
   */
  send(frame: Uint8Array, onFlushed: (error?: Error) => void): void;
  /**
   * `true` when the transport no longer reads a frame's bytes once `onFlushed` ran (they were copied to
   * the socket): the Multiplexer then reuses full-size DATA buffers (FramePool). An in-memory pipe hands
   * the frame itself to the peer, so it leaves this unset.
   */
  readonly releasesOnFlush?: boolean;
  /** Closes the connection with a close handshake after the frames already sent. */
  close(code: number, reason: string): void;
  /** Drops the connection at once (the peer is presumed dead). `close` is used when absent. */
  terminate?(): void;
}

/** Why a tunnel closed (docs/tunnel.md §5.4). */
export type TunnelCloseCode =
  /** `Multiplexer.close()` was called. */
  | 'LOCAL_CLOSE'
  /** The connection under the tunnel closed (peer closed, network error). */
  | 'TRANSPORT_CLOSED'
  /** No inbound frame for too long. */
  | 'HEARTBEAT_TIMEOUT'
  /** HELLO / HELLO_ACK did not arrive in time. */
  | 'HANDSHAKE_TIMEOUT'
  /** The handshake broke the protocol (wrong first frame, invalid HELLO_ACK). */
  | 'HANDSHAKE_FAILED'
  /** Version negotiation failed or the peer's policy refused us (HELLO_ACK rejected). */
  | 'VERSION_REJECTED'
  /** The bad-message budget or the connection frame budget was exhausted. */
  | 'PROTOCOL_ERROR'
  /** More than `maxTransportUnflushedBytes` waited to be flushed: the peer does not read what it is sent. */
  | 'SEND_OVERFLOW';

export interface TunnelCloseInfo {
  code: TunnelCloseCode;
  message: string;
}

/**
 * WebSocket close codes used when the Multiplexer closes the transport (RFC 6455 §7.4: 1000
 * normal, 1002 protocol error; 4000-4999 are for applications).
 */
export const WS_CLOSE_CODES: Readonly<Record<TunnelCloseCode, number>> = {
  LOCAL_CLOSE: 1000,
  TRANSPORT_CLOSED: 1006,
  PROTOCOL_ERROR: 1002,
  HANDSHAKE_FAILED: 4400,
  HANDSHAKE_TIMEOUT: 4408,
  HEARTBEAT_TIMEOUT: 4409,
  SEND_OVERFLOW: 4413,
  VERSION_REJECTED: 4426,
};
