/** Joinproto: the till (касса) side of the POS terminal ↔ till protocol. See README.md and docs/protocols/joinproto.md. */
export { JoinprotoError, isJoinprotoError, type JoinprotoErrorCode, type JoinprotoErrorDetails, type WireReply } from './errors';
export { DEFAULT_MAX_FRAME_BYTES, encodeFrame, ETX, FrameDecoder, lrc, STX, type DecodeEvent, type FrameDecoderOptions } from './framing';
export { decodeTlvs, encodeTlvs, MAX_TLV_VALUE_BYTES, type Tlv } from './tlv';
export { checkTagValue, PROTOCOL_ERROR_CODE, TAGS, type TagFormat, type TagSpec } from './tags';
export { commandByCode, COMMANDS, type CommandCode, type CommandName, type Direction, type TerminalCommandName, type TillCommandName } from './commands';
export {
  CANCELED_MEANING,
  CANCELED_TEXT,
  describeResponseCode,
  isCanceledText,
  RESPONSE_CODE_MEANINGS,
  type ResponseCategory,
  type ResponseCodeInfo,
} from './response-codes';
export { commandOfType, decodeMessage, encodeMessage, encodeMessageFrame, MAX_AMOUNT, type EncodeOptions } from './codec';
export { maskFrame, type MaskedFrame } from './masked-frame';
export { maskPan } from './pan';
export type * from './messages';
export { duplexTransport, type ByteTransport } from './session/transport';
export { createSequentialIdAllocator, type IdAllocator, type SequentialIdOptions } from './session/ids';
export {
  connectRelaySocket,
  parseRelayTarget,
  RELAY_ERROR_TEXT,
  RelayConnection,
  RelayConnections,
  RelayError,
  TcpRelayPort,
  unavailableRelay,
  type RelayConnectionLimits,
  type RelayErrorCode,
  type RelayPort,
  type RelayStop,
  type RelayTarget,
  type TcpRelayPortOptions,
} from './session/relay';
export { toOperationResult, type CommandOutcome, type OperationResult, type RecoveryOutcome, type UnknownReason } from './session/outcome';
export {
  allowAllCards,
  cardListPolicy,
  DEFAULT_TIMEOUTS_MS,
  TillSession,
  type CardCheckPolicy,
  type CardListVerdict,
  type ResponseOf,
  type TillCommandInput,
  type TillSessionEvent,
  type TillSessionOptions,
} from './session/till-session';
