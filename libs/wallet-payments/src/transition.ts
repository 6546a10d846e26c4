import type { OrderState } from '@payorch/assist-tokenpay';
import { compareAndSetLifecycle, Prisma, publishEvent, type PublishedEvent, type TransactionClient } from '@payorch/db';
import { PayorchError } from '@payorch/domain';
import type { WalletPayment, WalletPaymentState, WalletTokenType } from '@payorch/prisma';

import { walletPaymentEventData } from './events';
import type { PaymentChange, PaymentErrorBody } from './outcome';

/**
 * THE writer of `WalletPayment.state`: {@link insertWalletPayment} creates the PENDING row and
 * {@link transitionWalletPayment} makes every later change, each with its `wallet_payment.*` DomainEvent in
 * the caller's transaction. The gateway (which pays) and the worker's resolution job (which reads Assist's
 * order state) both call it; `architecture.spec.ts` in libs/operations fails on any other writer.
 */

/**
 * Every allowed change of a wallet payment, and why. A state mapped to itself is a write that keeps the state
 * (a resolution attempt that could not tell, Assist still "In Process", a partial cancel keeping it paid).
 * APPROVED and AUTHORIZED are final for the payment flow (`FINAL_STATES`: the resolution job stops), but
 * Assist's after-payment operations still move them — `/charge/charge.cfm` (confirm a two-stage payment) and
 * `/cancel/wscancel.cfm` (cancel, full or partial); payorch has no API for them yet, the rows are here so that
 * the issue adding capture / cancel / refund only has to call the owner.
 */
export const WALLET_TRANSITIONS: Readonly<Record<WalletPaymentState, Readonly<Partial<Record<WalletPaymentState, string>>>>> = {
  PENDING: {
    PENDING: 'a resolution attempt could not tell (the row stays, the attempt is counted)',
    PROCESSING: 'the gateway is about to send tokenpay.cfm',
    APPROVED: 'resolution: Assist has the order (a gateway that crashed after sending) — Approved, PartialApproved, PartialDelayed, PartialCanceled',
    AUTHORIZED: 'resolution: Delayed',
    DECLINED: 'resolution: Declined, Timeout',
    CANCELED: 'resolution: Canceled',
    REJECTED: 'resolution: Assist has no such order (ORDER_NOT_FOUND): it never reached Assist',
  },
  PROCESSING: {
    PROCESSING: 'Assist says In Process (or a resolution attempt could not tell)',
    REQUIRES_ACTION: 'tokenpay.cfm: the payer must open continueUrl (non-tokenized Google Pay card)',
    UNKNOWN: 'tokenpay.cfm: the answer was lost or untrusted; it may have been charged',
    APPROVED: 'Approved, PartialApproved, PartialDelayed, PartialCanceled',
    AUTHORIZED: 'Delayed (two-stage payment authorized)',
    DECLINED: 'Declined, Timeout',
    CANCELED: 'Canceled',
    REJECTED: 'Assist refused the request (firstcode/secondcode), our validation refused it, or ORDER_NOT_FOUND after the grace period',
  },
  REQUIRES_ACTION: {
    REQUIRES_ACTION: 'the payer has not finished 3-D Secure / CVC yet (Assist: In Process)',
    APPROVED: 'resolution: Approved, PartialApproved, PartialDelayed, PartialCanceled',
    AUTHORIZED: 'resolution: Delayed',
    DECLINED: 'resolution: Declined, Timeout (the payer never finished)',
    CANCELED: 'resolution: Canceled',
    REJECTED: 'resolution: ORDER_NOT_FOUND after the grace period',
  },
  UNKNOWN: {
    UNKNOWN: 'a resolution attempt could not tell (its error is recorded, the attempt counted)',
    PROCESSING: 'resolution: Assist says In Process',
    APPROVED: 'resolution: Approved, PartialApproved, PartialDelayed, PartialCanceled',
    AUTHORIZED: 'resolution: Delayed',
    DECLINED: 'resolution: Declined, Timeout',
    CANCELED: 'resolution: Canceled',
    REJECTED: 'resolution: ORDER_NOT_FOUND after the grace period (the request never reached Assist)',
  },
  AUTHORIZED: {
    APPROVED: 'charge.cfm confirmed the two-stage payment: Delayed → Approved, or PartialDelayed (part of it)',
    CANCELED: 'wscancel.cfm before the charge: Delayed → Canceled',
  },
  APPROVED: {
    APPROVED: 'wscancel.cfm for part of the amount: PartialCanceled (the rest stays charged; assistOrder keeps the detail)',
    CANCELED: 'wscancel.cfm for the whole amount: Canceled',
  },
  DECLINED: {},
  CANCELED: {},
  REJECTED: {},
};

/**
 * Every Assist `orderstate` (TokenPay document, "Статусы заказа orderstate") → our state; `assistOrder.orderState`
 * keeps the exact one. Must agree with `stateOfOrderStatus` (outcome.ts); transition.spec.ts checks it.
 */
export const STATE_OF_ORDER_STATE: Readonly<Record<OrderState, WalletPaymentState>> = {
  'In Process': 'PROCESSING',
  Delayed: 'AUTHORIZED',
  Approved: 'APPROVED',
  PartialApproved: 'APPROVED',
  PartialDelayed: 'APPROVED',
  Canceled: 'CANCELED',
  PartialCanceled: 'APPROVED',
  Declined: 'DECLINED',
  Timeout: 'DECLINED',
};

export function canTransitionWalletPayment(from: WalletPaymentState, to: WalletPaymentState): boolean {
  return WALLET_TRANSITIONS[from][to] !== undefined;
}

export class WalletPaymentTransitionError extends PayorchError<'ILLEGAL_TRANSITION' | 'INVALID_WRITE'> {}

/** The raw row a write returns (the Prisma model's columns). */
export type WalletPaymentRow = WalletPayment;

export interface NewWalletPayment {
  id: string;
  tenantId: string;
  merchantId: string;
  orderNumber: string;
  /** Minor units. */
  amount: bigint;
  currency: string;
  tokenType: WalletTokenType;
  customer: Prisma.InputJsonValue;
  idempotencyKey: string;
  requestHash: string;
}

/**
 * Stores a new payment PENDING with its `wallet_payment.created` event. A taken idempotency key or order
 * number rejects with Prisma's P2002 (one INSERT … RETURNING).
 */
export async function insertWalletPayment(tx: TransactionClient, input: NewWalletPayment): Promise<{ row: WalletPaymentRow; event: PublishedEvent }> {
  const row = await tx.walletPayment.create({ data: { ...input, state: 'PENDING' } });
  const event = await publishEvent(tx, input.tenantId, {
    type: 'wallet_payment.created',
    subjectType: 'wallet_payment',
    subjectId: row.id,
    data: walletPaymentEventData(row, null),
  });
  return { row, event };
}

export interface WalletPaymentTransition {
  paymentId: string;
  /** The states the row must be in for the write to apply (compare-and-set). */
  from: readonly WalletPaymentState[];
  /**
   * The change to store (its `state` must be allowed from every `from`). null: the state and the outcome
   * columns stay, which WALLET_TRANSITIONS must allow as `X → X` for every `from`.
   */
  change: PaymentChange | null;
  /** With `change: null`: replaces the stored `error` (why a resolution attempt could not tell). */
  error?: PaymentErrorBody;
  countResolutionAttempt?: boolean;
}

export interface WalletPaymentTransitionResult {
  row: WalletPaymentRow;
  from: WalletPaymentState;
  /** `wallet_payment.updated`, written when the state changed. */
  event: PublishedEvent | undefined;
}

/** Refuses an illegal pair before the database is touched. */
export function assertWalletTransition(t: Pick<WalletPaymentTransition, 'from' | 'change'>): void {
  if (t.from.length === 0) throw new WalletPaymentTransitionError('INVALID_WRITE', 'a transition needs at least one source state');
  const illegal = t.from.filter((from) => !canTransitionWalletPayment(from, t.change?.state ?? from));
  if (illegal.length > 0) {
    const to = t.change?.state ?? '(unchanged)';
    throw new WalletPaymentTransitionError('ILLEGAL_TRANSITION', `wallet payment ${illegal.join(', ')} → ${to} is not a transition`, { from: illegal, to });
  }
}

/**
 * One compare-and-set (`… WHERE id = $1 AND state IN (from)`, the previous state read under the row lock
 * in the same statement) plus `wallet_payment.updated` when the state changed, in the caller's transaction.
 * Returns null, writing nothing, when the row is no longer in one of `from` (the other writer got there first).
 */
export async function transitionWalletPayment(tx: TransactionClient, t: WalletPaymentTransition): Promise<WalletPaymentTransitionResult | null> {
  assertWalletTransition(t);
  const sets: Prisma.Sql[] = [];
  const c = t.change;
  if (c !== null) {
    sets.push(
      Prisma.sql`"state" = ${c.state}::"WalletPaymentState"`,
      Prisma.sql`"completedAt" = ${c.completedAt}::timestamptz`,
      Prisma.sql`"error" = ${json(c.error)}::jsonb`,
    );
    if (c.assistOrder !== undefined) sets.push(Prisma.sql`"assistOrder" = ${json(c.assistOrder)}::jsonb`);
    if (c.maskedPan !== undefined) sets.push(Prisma.sql`"maskedPan" = ${c.maskedPan}::text`);
    if (c.continueUrl !== undefined) sets.push(Prisma.sql`"continueUrl" = ${c.continueUrl}::text`);
    if (c.testMode !== undefined) sets.push(Prisma.sql`"testMode" = ${c.testMode}::boolean`);
  } else if (t.error !== undefined) {
    sets.push(Prisma.sql`"error" = ${json(t.error)}::jsonb`);
  }
  if (t.countResolutionAttempt) sets.push(Prisma.sql`"resolutionAttempts" = "resolutionAttempts" + 1`);
  const written = await compareAndSetLifecycle<WalletPaymentRow, WalletPaymentState>(tx, 'WalletPayment', t.paymentId, t.from, sets);
  if (written === undefined) return null;
  const { row, previous: previousState } = written;
  const event =
    row.state === previousState
      ? undefined
      : await publishEvent(tx, row.tenantId, {
          type: 'wallet_payment.updated',
          subjectType: 'wallet_payment',
          subjectId: row.id,
          data: walletPaymentEventData(row, previousState),
        });
  return { row, from: previousState, event };
}

const json = (value: unknown): string | null => (value === null || value === undefined ? null : JSON.stringify(value));
