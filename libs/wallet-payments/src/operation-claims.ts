/**
 * Which of the order's records an operation of ours may NOT be matched to (docs/wallet-payments.md §5, item 8): the
 * ones our other operations hold by billnumber, the payment's own (`.1`), and — counted, not named — the ones our
 * operations settled without a billnumber may stand for (a person's verdict given without one). Shared by the gateway
 * (matching the charge / cancel answer) and the resolution job (matching orderstate), so both claim the same way.
 */
import type { OperationType, UnnamedClaim } from '@payorch/assist-tokenpay';
import type { WalletOperationKind, WalletOperationState } from '@payorch/prisma';

/** The operationtype Assist records for each kind: a release and a refund are both PaymentCancel (300). */
export const ASSIST_TYPE_OF_KIND: Readonly<Record<WalletOperationKind, Extract<OperationType, 'Charge' | 'PaymentCancel'>>> = {
  CAPTURE: 'Charge',
  CANCEL_AUTHORIZATION: 'PaymentCancel',
  REFUND: 'PaymentCancel',
};

/** The columns of a payment's operation the claims are read from. */
export interface ClaimingOperation {
  readonly id: string;
  readonly kind: WalletOperationKind;
  /** Minor units. */
  readonly amount: bigint;
  readonly state: WalletOperationState;
  readonly assistBillNumber: string | null;
  readonly sentAt: Date | null;
  readonly createdAt: Date;
  readonly completedAt: Date | null;
}

export interface OperationClaims {
  /** Billnumbers already ours (never matched again), with the payment's own `<order>.1`. */
  readonly knownBillNumbers: string[];
  /** Our other settled operations of the same Assist type and amount that hold no billnumber. */
  readonly unnamedClaims: UnnamedClaim[];
}

/**
 * The claims of the payment's other operations against `op`'s match. A settled operation without a billnumber (a
 * person's `succeeded` / `failed` verdict without one, or a failure with no record: refused, never reached Assist) of
 * the same Assist type and amount may stand for a record no billnumber claims; `findOperation` never takes such a
 * record for `op`, and does not decide when it cannot tell which records are free.
 */
export function operationClaims(
  operations: readonly ClaimingOperation[],
  op: Pick<ClaimingOperation, 'id' | 'kind' | 'amount'>,
  orderBillNumber: string,
  now: Date = new Date(),
): OperationClaims {
  const others = operations.filter((o) => o.id !== op.id);
  return {
    knownBillNumbers: [...others.flatMap((o) => (o.assistBillNumber === null ? [] : [o.assistBillNumber])), `${orderBillNumber}.1`],
    unnamedClaims: others
      .filter(
        (o) =>
          o.assistBillNumber === null &&
          (o.state === 'SUCCEEDED' || o.state === 'FAILED') &&
          ASSIST_TYPE_OF_KIND[o.kind] === ASSIST_TYPE_OF_KIND[op.kind] &&
          o.amount === op.amount,
      )
      .map((o) => ({
        result: o.state === 'SUCCEEDED' ? ('succeeded' as const) : ('failed' as const),
        sentAt: o.sentAt ?? o.createdAt,
        settledAt: o.completedAt ?? now,
      })),
  };
}
