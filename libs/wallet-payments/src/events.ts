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
}

/**
 * `data` of `wallet_payment.created` / `wallet_payment.updated` DomainEvents: ids, state, amount and
 * masked PAN only. `amount` is a string of minor units (JSON has no 64-bit integers).
 */
export function walletPaymentEventData(row: WalletPaymentEventRow, previousState: WalletPaymentState | null): Record<string, unknown> {
  const error = row.error as { code?: unknown } | null;
  return {
    id: row.id,
    state: row.state,
    previousState,
    amount: row.amount.toString(),
    currency: row.currency,
    merchantId: row.merchantId,
    orderNumber: row.orderNumber,
    tokenType: row.tokenType,
    maskedPan: row.maskedPan,
    testMode: row.testMode,
    errorCode: typeof error?.code === 'string' ? error.code : null,
  };
}
