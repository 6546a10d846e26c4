import type { FirstCodeName, IntegrityErrorCode, ProtocolErrorCode, TransportErrorCode } from '@payorch/assist-tokenpay';

/** payorch's own conclusions about a wallet payment or operation (`error.source: "payorch"`). */
export type PayorchWalletErrorCode =
  /** Assist lists no order under the payment's number WALLET_NOT_FOUND_GRACE_MS after it: never reached Assist (`rejected`). */
  | 'ORDER_NOT_FOUND'
  /** The order under the payment's number is not provably its own (ownership.ts): `unknown`, for a person. */
  | 'ORDER_NOT_PROVEN'
  /** The order under the number is provably another's and nothing was charged for this payment (`rejected`). */
  | 'ORDER_NUMBER_TAKEN'
  /** Assist lists no record of a capture / release / refund WALLET_NOT_FOUND_GRACE_MS after it was sent (`failed`). */
  | 'OPERATION_NOT_FOUND'
  /** The records like the operation may be the ones a verdict without billnumber stands for (operation-claims.ts): `unknown`, for a person. */
  | 'OPERATION_NOT_PROVEN'
  /** A person's verdict that went nowhere (declined / rejected payment, failed operation): the message is their note. */
  | 'RESOLVED_MANUALLY'
  /** The request broke a rule of Assist's parameter table and was never sent (`rejected` / `failed`). */
  | 'VALIDATION_FAILED';

/**
 * Every `error.code` a wallet payment or operation can carry: payorch's own, Assist's first codes (`source: "assist"`),
 * and why an answer was lost or not trusted (`transport`, `protocol`, `integrity`). `PaymentErrorBody.code` is this
 * type, so a new code is a compile error until it is listed in {@link WALLET_ERROR_CODES}; the API documents the list as
 * the enum `WalletErrorCode`, from which the console's hints are typed (apps/console wallet-errors.ts).
 */
export type WalletErrorCode = PayorchWalletErrorCode | FirstCodeName | TransportErrorCode | ProtocolErrorCode | IntegrityErrorCode;

/** A Record, so a code missing here (or one too many) fails the typecheck. */
const CODES: Record<WalletErrorCode, true> = {
  // payorch
  ORDER_NOT_FOUND: true,
  ORDER_NOT_PROVEN: true,
  ORDER_NUMBER_TAKEN: true,
  OPERATION_NOT_FOUND: true,
  OPERATION_NOT_PROVEN: true,
  RESOLVED_MANUALLY: true,
  VALIDATION_FAILED: true,
  // Assist's first codes (libs/assist-tokenpay codes.ts)
  SUCCESS: true,
  ERROR: true,
  INTERNAL_ERROR: true,
  MISSING_PARAMETER: true,
  INVALID_FORMAT: true,
  INVALID_VALUE: true,
  INCOMPATIBLE_VERSION: true,
  AUTHENTICATION_FAILED: true,
  AUTHORIZATION_FAILED: true,
  ENCRYPTION_ERROR: true,
  OBJECT_NOT_FOUND: true,
  DUPLICATE_OBJECT: true,
  OBJECT_LOCKED: true,
  FORBIDDEN_OBJECT: true,
  FORBIDDEN_OPERATION: true,
  OPERATION_TIMED_OUT: true,
  LIMIT_EXCEEDED: true,
  SUSPECTED_FRAUD: true,
  ACCESS_DENIED: true,
  THREE_DS_FAILED: true,
  OPERATION_DECLINED: true,
  UNRECOGNIZED: true,
  // transport
  TIMEOUT: true,
  NETWORK: true,
  HTTP_STATUS: true,
  RESPONSE_TOO_LARGE: true,
  // protocol
  MALFORMED_RESPONSE: true,
  UNRECOGNIZED_VALUE: true,
  // integrity
  CHECKVALUE_MISSING: true,
  CHECKVALUE_MISMATCH: true,
  ORDER_MISMATCH: true,
  SIGNATURE_MISSING: true,
  SIGNATURE_MISMATCH: true,
};

/** {@link WalletErrorCode} at runtime, sorted (the API's `WalletErrorCode` enum). */
export const WALLET_ERROR_CODES = Object.keys(CODES).sort() as [WalletErrorCode, ...WalletErrorCode[]];

/**
 * The codes that leave an UNKNOWN wallet payment or capture / cancel / refund to a person: the resolution job keeps
 * reading Assist's order state and never adopts what it finds (docs/wallet-payments.md "Human resolution").
 * `ORDER_NOT_PROVEN`: the order under the payment's number is not provably its own (ownership.ts); `ORDER_MISMATCH`:
 * every answer describes another order (libs/assist-tokenpay, an integrity failure); `OPERATION_NOT_PROVEN`: the records
 * like a capture / cancel / refund may be the ones an operation settled by hand without a billnumber stands for
 * (operation-claims.ts). One list: the worker counts them (`payorch_unknown_outcomes_needing_human`), the contract
 * names them (`x-left-to-a-person` of `WalletErrorCode`), and the console's hints are checked against the contract.
 */
export const WALLET_PERSON_ERROR_CODES: readonly WalletErrorCode[] = ['ORDER_NOT_PROVEN', 'ORDER_MISMATCH', 'OPERATION_NOT_PROVEN'];
