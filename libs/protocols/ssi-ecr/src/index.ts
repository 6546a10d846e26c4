// Public API of the SSI ECR JSON protocol library (spec rev. 1.1.10 + labelled later-revision extensions).
export { SsiEcrChannel } from './channel';
export { SsiEcrClient, terminalError, type CallOptions, type RequestLink, type SsiEcrClientOptions } from './client';
export { exponentialBackoff, systemClock, type Backoff, type Clock } from './clock';
export { decodeMessage, decodeRequest, decodeResponse, encodeMessage, encodeRequest, encodeResponse, receiptLrc, type SsiResponse } from './codec';
export {
  ERROR_CODES,
  INTERRUPTIBLE_STATUSES,
  POS_ENTRY_MODES,
  TERMINAL_STATUSES,
  TRANSACTION_RESULTS,
  errorCategory,
  isTerminalErrorCode,
  isTerminalStatus,
  normaliseTransactionResult,
  type ErrorCategory,
  type PosEntryMode,
  type TerminalErrorCode,
  type TerminalPhase,
  type TerminalStatus,
  type TransactionResultValue,
} from './codes';
export { SsiEcrError, isSsiEcrError, type SsiEcrErrorCode, type SsiEcrErrorDetails, type WireReaction } from './errors';
export { MAX_AMOUNT, type OperationStep } from './fields';
export { FrameDecoder, MAX_DATA_BYTES, MAX_FRAME_BYTES, encodeFrame, type DecodeEvent, type FrameDecoderOptions, type RawFrame } from './framing';
export { parseJsonData, serialiseJsonData, type JsonObject, type JsonValue } from './json';
export { xorLrc } from './lrc';
export {
  matchResult,
  provesNotExecuted,
  resultFingerprint,
  type IdleEvidence,
  type MatchContext,
  type MatchVerdict,
  type MismatchReason,
  type NotExecutedVerdict,
} from './matching';
export {
  METHODS,
  isFinancialMethod,
  isReportMethod,
  isSsiMethod,
  methodGroup,
  type AsyncMethod,
  type BalanceParams,
  type CashBackParams,
  type CashParams,
  type DepositParams,
  type EchoParams,
  type FinancialMethod,
  type MethodGroup,
  type PartialVoidParams,
  type PreauthorizationParams,
  type PrintPdfUrlParams,
  type PrintXmlParams,
  type PurchaseParams,
  type RefundParams,
  type ReportMethod,
  type ReportParams,
  type RequestParams,
  type SalePreauthParams,
  type SsiMethod,
  type SsiRequest,
  type VoidParams,
  type VoidPreauthParams,
} from './messages';
export {
  FinancialOperation,
  SsiEcrRunner,
  type OperationOptions,
  type OperationOutcome,
  type OperationTicket,
  type ReportOutcome,
  type RunnerOptions,
  type SecondStepDecision,
  type StatusEvent,
  type UnknownReason,
} from './operation';
export { maskFrame, type MaskedFrame } from './masked-frame';
export { maskPan } from './pan';
export {
  encodeReportParams,
  encodeTransactionResultParams,
  parseMerchantList,
  parseReceipt,
  parseReport,
  parseTerminalInfo,
  parseTransactionResult,
  type AppInfo,
  type MerchantList,
  type ReportTotals,
  type ReportTransaction,
  type TerminalInfo,
  type TerminalReport,
  type TransactionResult,
} from './results';
export { duplexTransport, tcpTransportFactory, type ByteTransport, type TcpTransportOptions, type TransportFactory } from './transport';
