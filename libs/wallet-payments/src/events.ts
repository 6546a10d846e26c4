import type { WalletPaymentState, WalletTokenType } from '@payorch/prisma';

export interface WalletPaymentEventRow {
  readonly id: string;
  readonly amount: bigint;
  readonly currency: string;
  readonly merchantId: string;
  readonly orderNumber: string;
  readonly state: WalletPaymentState;
  readonly tokenType: WalletTokenType;
  readonly maskedPan: string | null;
  readonly testMode: boolean | null;
  readonly error: unknown;
  readonly authorizedAmount?: bigint;
  readonly capturedAmount?: bigint;
  readonly releasedAmount?: bigint;
  readonly refundedAmount?: bigint;
}

export interface WalletOperationEventRow {
  readonly id: string;
  readonly kind: string;
  readonly amount: bigint;
  readonly currency: string;
  readonly state: string;
  readonly assistBillNumber: string | null;
  readonly error: unknown;
}

/**
 * Event data goes out through the live stream and webhooks: enum values in the API's one casing, lower
 * snake_case (docs/api-changes.md), like every other response; the database keeps its own enums.
 */
const wire = <T extends string | null>(value: T): T => (value === null ? value : (value.toLowerCase().replace(/-/g, '_') as T));

/** An operation inside `wallet_payment.*` event data: ids, kind, amount (string, minor units), result code. */
export function walletOperationEventData(op: WalletOperationEventRow): Record<string, unknown> {
  const error = op.error as { code?: unknown } | null;
  return {
    id: op.id,
    kind: wire(op.kind),
    amount: op.amount.toString(),
    currency: op.currency,
    state: wire(op.state),
    assistBillNumber: op.assistBillNumber,
    errorCode: typeof error?.code === 'string' ? error.code : null,
  };
}

/**
 * `data` of `wallet_payment.created` / `wallet_payment.updated` DomainEvents: ids, state, amount and
 * masked PAN only. `amount` is a string of minor units (JSON has no 64-bit integers).
 */
export function walletPaymentEventData(row: WalletPaymentEventRow, previousState: WalletPaymentState | null): Record<string, unknown> {
  const error = row.error as { code?: unknown } | null;
  return {
    id: row.id,
    state: wire(row.state),
    previousState: wire(previousState),
    amount: row.amount.toString(),
    currency: row.currency,
    merchantId: row.merchantId,
    orderNumber: row.orderNumber,
    tokenType: wire(row.tokenType),
    maskedPan: row.maskedPan,
    testMode: row.testMode,
    errorCode: typeof error?.code === 'string' ? error.code : null,
    authorizedAmount: row.authorizedAmount?.toString() ?? null,
    capturedAmount: row.capturedAmount?.toString() ?? null,
    releasedAmount: row.releasedAmount?.toString() ?? null,
    refundedAmount: row.refundedAmount?.toString() ?? null,
  };
}
