/**
 * @payorch/jpay — client of the JPAY / aQsi cardcore banking application (terminal = TCP server,
 * default port 4433; packets = 4-byte big-endian length + XML). See docs/protocols/jpay.md.
 */
export { JpayClient, DEFAULT_IDLE_TIMEOUT_MS, type CommandOptions, type JpayClientOptions } from './client';
export {
  recoverTransaction,
  resolveFromReport,
  findTransactionCandidates,
  closeDayFromReport,
  logAnchor,
  logHoldsAnchor,
  isCardEntry,
  paymentMethodsOf,
  type LogAnchor,
  type RecoveryCriteria,
  type RecoveryResult,
} from './recovery';
export { transactionOutcome, type TransactionOutcome, type TransactionResult, type UnknownReason } from './outcome';
export { tcpConnector, transportFromDuplex, DEFAULT_JPAY_PORT, type JpayConnect, type JpayTransport, type TcpConnectOptions } from './transport';
export { runExchange, type ExchangeOptions, type ExchangeResult } from './exchange';
export {
  DEFAULT_HANDLERS,
  mergeHandlers,
  type JpayMessageHandlers,
  type CardReply,
  type SmartcardReply,
  type DexMessage,
  type CardMessage,
  type SmartcardMessage,
} from './handlers';
export { redactEmvTags, type JpayEvent, type JpayEventListener } from './events';
export { JpayError, isJpayError, type JpayErrorCode, type JpayWireReaction } from './errors';
export { FrameDecoder, encodeFrame, DEFAULT_MAX_FRAME_BYTES, LENGTH_PREFIX_BYTES, type DecodeEvent, type FrameDecoderOptions } from './framing';
export { parseXml, parseXmlBytes, writeXml, writeXmlBytes, el, isXmlName, type XmlElement } from './xml';
export { encodeCommand, decodeCommand, isCommandName } from './codec-commands';
export { encodeResponse, decodeResponse } from './codec-responses';
export { encodeMessage, decodeMessage, encodeReply, decodeReply, notImplementedReply, parseSmartcardDescriptor, isKnownMessageRoot } from './codec-messages';
export { decodeReceipt, encodeReceipt, resolveApplicationName, isApprovedReceipt, type EncodeReceiptOptions } from './receipt';
export { sealElement, openElement, isSealed } from './envelope';
export {
  JpayEcdhe,
  JpaySessionKey,
  JPAY_CRYPTO_ASSUMPTIONS,
  encodeClientHandshake,
  decodeClientHandshake,
  encodeServerHandshake,
  decodeServerHandshake,
} from './crypto';
export { encodeAmount, decodeAmount, encodeSignedAmount, decodeSignedAmount, MAX_AMOUNT_MINOR } from './amounts';
export { maskFrame, type MaskedFrame } from './masked-frame';
export { maskPan } from './pan';
export {
  STATUS_CODES,
  classifyStatus,
  normalizeStatus,
  isKnownStatus,
  provesNotPerformed,
  type JpayStatus,
  type KnownStatus,
  type StatusClass,
} from './status';
export * from './messages';
