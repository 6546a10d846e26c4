/** Assist TokenPay client: public API. */
export {
  AssistTokenPayClient,
  ORDERSTATE_PATH,
  type AfterPaymentOutcome,
  type OperationNotFoundOutcome,
  type OperationNotProvenOutcome,
  type OperationOutcome,
  type OperationRejectedOutcome,
  type OperationResolution,
  ORDER_STATUS_BY_STATE,
  TOKENPAY_PATH,
  isPending,
  type AssistClientOptions,
  type DuplicateOutcome,
  type ExpectedOrder,
  type IntegrityContext,
  type NotFoundOutcome,
  type OrderOutcome,
  type OrderResolution,
  type OrderStatus,
  type PaymentStatus,
  type RejectedOutcome,
  type RequiresActionOutcome,
  type TokenPayOutcome,
  type UnknownOutcome,
} from './client';
export { buildTokenPayFields, type BuildOptions, type MerchantCredentials, type TokenPayFields, type TokenPayRequest } from './request';
export type { ChequeItem } from './cheque';
export { CURRENCY_EXPONENTS, currencyExponent, orderAmountToMinorUnits, sameAmount, toOrderAmount } from './amount';
export {
  CANCEL_PATH,
  CHARGE_PATH,
  CLOCK_SKEW_MS,
  findOperation,
  matchOperation,
  OPERATION_TYPE_OF_KIND,
  operationResultOf,
  parseOperationDate,
  type AfterPaymentKind,
  type AfterPaymentRequest,
  type OperationCriteria,
  type OperationMatch,
  type OperationResult,
  type UnnamedClaim,
} from './operations';
export { createRsaMd5Signer, createRsaMd5Verifier, signatureBaseString, type SignatureFields, type Signer } from './signature';
export { computeCheckValue, verifyCheckValue, type CheckValueFields } from './checkvalue';
export {
  parseOrderStateResponse,
  parseTokenPayResponse,
  type AssistAnswer,
  type AssistOperation,
  type AnswerSignatureVerifier,
  type AssistOrder,
  type VerifyContext,
} from './response';
export {
  AMBIGUOUS_FIRST_CODES,
  FIRST_CODES,
  SECOND_CODES,
  describeCodes,
  firstCodeName,
  type FirstCode,
  type FirstCodeName,
  type SecondCodeInfo,
} from './codes';
export {
  MEAN_TYPES,
  OPERATION_STATES,
  OPERATION_TYPES,
  ORDER_STATES,
  TAX_RATES,
  TOKEN_TYPES,
  type FpMode,
  type MeanType,
  type OperationState,
  type OperationType,
  type OrderState,
  type TaxRate,
  type TaxationSystem,
  type TokenType,
} from './enums';
export {
  AssistError,
  AssistIntegrityError,
  AssistProtocolError,
  AssistServerError,
  AssistTransportError,
  AssistValidationError,
  type IntegrityErrorCode,
  type ProtocolErrorCode,
  type TransportErrorCode,
  type ValidationIssue,
  type ValidationIssueCode,
} from './errors';
export { maskPan, redactFields, toSafeJSON } from './redact';
export type { FetchLike } from './transport';
