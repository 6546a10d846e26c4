/**
 * @payorch/tunnel: frames and multiplexing for the agent <-> device-connector WebSocket tunnel.
 * Specification: docs/tunnel.md.
 */

// Multiplexer and streams
export { Multiplexer } from './multiplexer';
export type { IncomingOpen, MultiplexerOptions, MultiplexerState, TunnelSession, TunnelStats } from './multiplexer';
export { TunnelStream } from './stream';
export type { StreamState } from './stream';
export { toDuplex } from './duplex';
export { attachWebSocket } from './ws-adapter';
export { createMemoryPipe, MemoryTransport } from './memory-pipe';
export type { MemoryPipeOptions } from './memory-pipe';
export { WS_CLOSE_CODES } from './transport';
export type { FrameTransport, TunnelCloseCode, TunnelCloseInfo } from './transport';
export type { HeartbeatOptions } from './heartbeat';
export { RateBudget } from './budget';
export type { BadMessageBudgetOptions, RateBudgetOptions } from './budget';
export type { TimerApi } from './timers';
export type { Unsubscribe } from './listeners';

// Link descriptors and control messages
export { LinkDescriptorSchema, parseLinkDescriptor } from './link';
export type { LinkDescriptor, LinkKind } from './link';
export { ControlMessageSchema, mayReceiveControl, parseControlMessage } from './control';
export type { ControlMessage, ControlMessageType, LinkStatus, TerminalEntry, TerminalProtocol, TunnelRole } from './control';

// Errors and codes
export { TunnelProtocolError, TunnelStreamError } from './errors';
export type { FrameErrorCode, ProtocolErrorCode, ProtocolErrorReaction, SessionErrorCode, StreamErrorCode } from './errors';
export { AGENT_CLOSE_CODES } from './codes';
export type { AgentCloseCode, CloseCode, HelloRejectCode, WireStreamErrorCode } from './codes';

// Frame codec
export { decodeFrame, encodeFrame } from './codec';
export type { CodecOptions, DecodeEvent } from './codec';
export { FrameDecoder } from './framing';
export type * from './frames';
export { DEFAULT_MAX_FRAME_BYTES, FRAME_HEADER_BYTES, SUPPORTED_PROTOCOL_VERSIONS } from './constants';
