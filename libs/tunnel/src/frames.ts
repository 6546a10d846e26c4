import type { CloseCode, HelloRejectCode, WireStreamErrorCode } from './codes';
import type { ControlMessage } from './control';
import type { LinkDescriptor } from './link';

/**
 * The decoded frame union (docs/tunnel.md, "Frame types"). Connection frames (HELLO, HELLO_ACK,
 * PING, PONG, CONTROL) travel on stream 0 and have no `streamId`; stream frames carry one (>= 1).
 */

/** First frame of the agent: the protocol versions and limits it supports. */
export interface HelloFrame {
  type: 'HELLO';
  /** Protocol versions, strictly ascending, 1..16 entries. */
  versions: number[];
  /** Largest frame (header + payload) the sender accepts. */
  maxFrameBytes: number;
  /** Sender software and version, printable ASCII, e.g. `payorch-agent/1.4.0`. */
  software: string;
  /** Optional features, e.g. `serial`; the session uses the intersection. */
  capabilities: string[];
}

export interface HelloAcceptedFrame {
  type: 'HELLO_ACK';
  accepted: true;
  version: number;
  maxFrameBytes: number;
  software: string;
  capabilities: string[];
}

export interface HelloRejectedFrame {
  type: 'HELLO_ACK';
  accepted: false;
  code: HelloRejectCode;
  /** The versions the rejecting side supports (for the upgrade hint in logs). */
  versions: number[];
  message: string;
}

export type HelloAckFrame = HelloAcceptedFrame | HelloRejectedFrame;

export interface OpenFrame {
  type: 'OPEN';
  streamId: number;
  /** Bytes the opener lets the acceptor send before the first CREDIT. */
  window: number;
  link: LinkDescriptor;
  terminalId?: string;
}

export interface OpenOkFrame {
  type: 'OPEN_OK';
  streamId: number;
  /** Bytes the acceptor lets the opener send before the first CREDIT. */
  window: number;
}

export interface OpenFailFrame {
  type: 'OPEN_FAIL';
  streamId: number;
  code: WireStreamErrorCode;
  message: string;
}

export interface DataFrame {
  type: 'DATA';
  streamId: number;
  /** At least one byte. */
  data: Uint8Array;
}

export interface CreditFrame {
  type: 'CREDIT';
  streamId: number;
  /** Bytes added to the receiver's send credit, >= 1. */
  increment: number;
}

/** Half-close: the sender will send no more DATA on this stream. */
export interface CloseFrame {
  type: 'CLOSE';
  streamId: number;
  code: CloseCode;
  message: string;
}

/** Abort both directions of a stream at once. */
export interface ResetFrame {
  type: 'RESET';
  streamId: number;
  code: WireStreamErrorCode;
  message: string;
}

export interface PingFrame {
  type: 'PING';
  /** Sender clock in ms since the epoch; echoed by PONG. */
  timestamp: number;
}

export interface PongFrame {
  type: 'PONG';
  timestamp: number;
}

export interface ControlFrame {
  type: 'CONTROL';
  message: ControlMessage;
}

export type ConnectionFrame = HelloFrame | HelloAckFrame | PingFrame | PongFrame | ControlFrame;
export type StreamFrame = OpenFrame | OpenOkFrame | OpenFailFrame | DataFrame | CreditFrame | CloseFrame | ResetFrame;
export type Frame = ConnectionFrame | StreamFrame;
