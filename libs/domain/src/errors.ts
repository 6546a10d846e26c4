/**
 * Domain errors. Framework-free: the gateway's single exception filter maps `code` to an HTTP
 * status with an exhaustive switch (apps/api-gateway/src/common/error.filter.ts).
 */
export class PayorchError<C extends string = string> extends Error {
  readonly code: C;
  readonly details?: unknown;

  constructor(code: C, message: string, details?: unknown) {
    super(message);
    this.name = new.target.name;
    this.code = code;
    this.details = details;
  }
}

export type ApiErrorCode =
  | 'AGENT_REVOKED'
  | 'AMOUNT_EXCEEDS_ORIGINAL'
  | 'ASSIST_MERCHANT_DUPLICATE'
  | 'CONFLICT'
  | 'EGRESS_DENIED'
  | 'FORBIDDEN'
  | 'IDEMPOTENCY_KEY_IN_PROGRESS'
  | 'IDEMPOTENCY_KEY_REQUIRED'
  | 'IDEMPOTENCY_KEY_REUSED'
  | 'INTERNAL'
  | 'NOT_FOUND'
  | 'ORIGINAL_ALREADY_CLOSED'
  | 'RATE_LIMITED'
  | 'RESOURCE_IN_USE'
  | 'SERVICE_UNAVAILABLE'
  | 'TERMINAL_DISABLED'
  | 'TERMINAL_RECOVERING'
  | 'TOO_MANY_STREAMS'
  | 'UNAUTHENTICATED'
  | 'UNPROCESSABLE'
  | 'VALIDATION_FAILED'
  | 'WALLET_AMOUNT_EXCEEDS_AUTHORIZED'
  | 'WALLET_AMOUNT_EXCEEDS_CAPTURED'
  | 'WALLET_OPERATION_IN_PROGRESS'
  | 'WALLET_OPERATION_NOT_UNKNOWN'
  | 'WALLET_PAYMENT_ALREADY_CANCELED'
  | 'WALLET_PAYMENT_NOT_CAPTURABLE'
  | 'WALLET_PAYMENT_NOT_CANCELABLE'
  | 'WALLET_PAYMENT_NOT_UNKNOWN'
  | 'WALLET_PAYMENT_ONE_STAGE'
  | 'WALLET_RESOLUTION_STATE_MISMATCH';

export class ApiError extends PayorchError<ApiErrorCode> {}

export const notFound = (resource: string, id: string) => new ApiError('NOT_FOUND', `${resource} ${id} was not found`, { resource, id });

export function assertUnreachable(value: never): never {
  throw new Error(`unreachable: ${JSON.stringify(value)}`);
}
