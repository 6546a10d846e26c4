/**
 * Whose order is it? Assist keeps one order per OrderNumber and merchant account; payorch keeps one payment per
 * order number and settings row. An order Assist shows under a payment's number — read by `resolveOrder()` after a
 * lost answer, or handed over with a "duplicate object" refusal — is the payment's outcome only when it is provably
 * the one the payment's own request created. Anything else (another payment's order, one created before this
 * payment existed, one under a number somebody else also used at the same account) is never adopted: taking it
 * reported a payment approved, with the other payment's amounts, that moved no money.
 *
 * Used by the gateway (after `pay()`) and the resolution job (after `resolveOrder()`), so both judge alike.
 */
import {
  type AssistOrder,
  type AssistServerError,
  CLOCK_SKEW_MS,
  type DuplicateOutcome,
  type OrderOutcome,
  parseOperationDate,
  sameAmount,
  toOrderAmount,
} from '@payorch/assist-tokenpay';
import { Prisma, type TransactionClient } from '@payorch/db';
import type { WalletPaymentState } from '@payorch/prisma';

import { type AssistOrderSummary, changeOfOutcome, errorBody, type PaymentChange, type PaymentErrorBody } from './outcome';

/** What payorch knows about the payment when it judges an order (its row). */
export interface PaymentFacts {
  readonly id: string;
  readonly orderNumber: string;
  readonly state: WalletPaymentState;
  /** Minor units. */
  readonly amount: bigint;
  readonly currency: string;
  readonly twoStage: boolean;
  /** When the row was stored: before its request was sent, so before any order that request created. */
  readonly createdAt: Date;
  /** The stored order summary: its billnumber came from Assist's answer to this payment's own request. */
  readonly assistOrder: unknown;
  readonly refusedAsDuplicate: boolean;
}

/**
 * What else payorch holds that may stand for an order found under the payment's number ({@link claimsOnOrder}):
 * another payment of the tenant that holds the order's billnumber, and whether a payment of another tenant, through
 * settings for the same Assist account, has the payment's order number.
 */
export interface OrderClaims {
  /** Another payment of the tenant holding the order (its billnumber): the order is that payment's. */
  readonly payment: string | null;
  /** A payment of another tenant at the same Assist account has this order number: the order may be that payment's. */
  readonly otherTenant: boolean;
}

/** Nothing else holds the order or the number. */
export const NO_CLAIMS: OrderClaims = { payment: null, otherTenant: false };

export type OrderVerdict =
  | { readonly ours: true; readonly reason: string }
  /**
   * `foreign`: proven to be another's (another amount, number or billnumber, older than the payment, held by another
   * payment, or the payment was never sent); `unproven`: it may be the payment's or another's.
   */
  | { readonly ours: false; readonly proof: 'foreign' | 'unproven'; readonly reason: string };

/** The payment's own request was refused as a duplicate: now, or (payments stored before) adopted as `duplicate`. */
const wasRefused = (p: PaymentFacts) => p.refusedAsDuplicate || (p.assistOrder as Partial<AssistOrderSummary> | null)?.duplicate === true;

/** The billnumber Assist named in its answer to this payment's own request, if it did. */
function ownBillNumber(p: PaymentFacts): string | undefined {
  const summary = p.assistOrder as Partial<AssistOrderSummary> | null;
  if (!summary || summary.duplicate === true || typeof summary.billNumber !== 'string' || summary.billNumber === '') return undefined;
  return summary.billNumber;
}

function sameMoney(order: AssistOrder, p: PaymentFacts): boolean {
  try {
    return order.currency === p.currency && sameAmount(order.amount, toOrderAmount(p.amount, p.currency));
  } catch {
    return false;
  }
}

/**
 * Is `order` (verified: checkvalue, signature) the payment's? Only when Assist named it to the payment's own request
 * (billnumber), or — no answer having named one — when it has the payment's number, amount and currency, was
 * created after the payment's row (within {@link CLOCK_SKEW_MS}), no other payment holds it (`claims.payment`), no
 * payment of another tenant at the same Assist account has the number (`claims.otherTenant`) and the payment's request
 * was not refused as a duplicate (a refused request created no order).
 */
export function judgeOrder(order: AssistOrder, p: PaymentFacts, claims: OrderClaims): OrderVerdict {
  const foreign = (reason: string): OrderVerdict => ({ ours: false, proof: 'foreign', reason });
  if (order.orderNumber !== p.orderNumber) return foreign(`it is order ${order.orderNumber}`);
  if (p.state === 'PENDING') return foreign('this payment was never sent to Assist (PENDING), so no order is its');
  if (!sameMoney(order, p)) {
    return foreign(`it is for ${order.amount} ${order.currency}, this payment for ${safeAmount(p)} ${p.currency}`);
  }
  const own = ownBillNumber(p);
  if (own !== undefined) {
    return order.billNumber === own
      ? { ours: true, reason: `Assist named billnumber ${own} in its answer to this payment's request` }
      : foreign(`Assist named billnumber ${own} to this payment's request; this order is ${order.billNumber}`);
  }
  if (claims.payment !== null) return foreign(`payment ${claims.payment} holds it (billnumber ${order.billNumber})`);
  const created = parseOperationDate(order.orderDate);
  if (created === undefined) return { ours: false, proof: 'unproven', reason: 'its orderdate is unreadable' };
  if (created.getTime() < p.createdAt.getTime() - CLOCK_SKEW_MS) {
    return foreign(`Assist created it ${order.orderDate} GMT, before this payment existed (${p.createdAt.toISOString()})`);
  }
  if (claims.otherTenant) {
    return {
      ours: false,
      proof: 'unproven',
      reason:
        "a payment of another tenant, through settings for the same Assist account, has this order number: the order may be that payment's " +
        '(an Assist account must be registered with one tenant only)',
    };
  }
  if (wasRefused(p)) {
    return {
      ours: false,
      proof: 'unproven',
      reason: "Assist refused this payment's only request as a duplicate, so that request created no order; only a replay of it could have",
    };
  }
  return { ours: true, reason: 'same number, amount and currency, created after this payment, held by no other payment' };
}

function safeAmount(p: PaymentFacts): string {
  try {
    return toOrderAmount(p.amount, p.currency);
  } catch {
    return `${p.amount} minor units`;
  }
}

/**
 * The change for an order `resolveOrder()` found under the payment's number: the order's state when it is the
 * payment's ({@link judgeOrder}); otherwise never its state. REJECTED (`ORDER_NUMBER_TAKEN`) only where nothing can
 * have been charged for the payment — its request was refused as a duplicate, or never sent (PENDING) — and the
 * order is proven another's; UNKNOWN (`ORDER_NOT_PROVEN`, for a human) in every other case: a request that may have
 * reached Assist may have been charged, however the order under its number looks.
 */
export function changeOfFoundOrder(
  outcome: OrderOutcome,
  p: PaymentFacts,
  claims: OrderClaims,
  now = new Date(),
): { change: PaymentChange; verdict: OrderVerdict } {
  const verdict = judgeOrder(outcome.order, p, claims);
  if (verdict.ours) return { change: changeOfOutcome(outcome, now, p), verdict };
  return { change: notOurs(verdict, p, now, undefined), verdict };
}

/**
 * The change for Assist's "duplicate object" refusal of the payment's request (`pay()` → `duplicate`): the request
 * created no order and charged nothing, so the order Assist holds under the number is not taken as the outcome.
 * Proven another's → REJECTED (`ORDER_NUMBER_TAKEN`); otherwise (only a replay of the request by something between
 * us and Assist could make it the payment's) → UNKNOWN (`ORDER_NOT_PROVEN`). Either way the refusal is stored for
 * good (`refusedAsDuplicate`): no later read adopts the order either.
 */
export function changeOfRefusal(
  outcome: DuplicateOutcome,
  p: PaymentFacts,
  claims: OrderClaims,
  now = new Date(),
): { change: PaymentChange; verdict: OrderVerdict | undefined } {
  const refused = { ...p, refusedAsDuplicate: true };
  const existing = outcome.existing;
  if (existing.status === 'not_found' || existing.status === 'unknown') {
    // The existing order could not be read (yet): the job reads it again, as it would after a lost answer.
    return { change: { state: 'UNKNOWN', error: errorBody(outcome.error), completedAt: null, refusedAsDuplicate: true }, verdict: undefined };
  }
  const verdict = judgeOrder(existing.order, refused, claims);
  // A refused request is never proven the owner (judgeOrder), so this is never the order's state.
  const change = verdict.ours ? changeOfOutcome(existing, now, p) : notOurs(verdict, refused, now, outcome.error);
  return { change: { ...change, refusedAsDuplicate: true }, verdict };
}

function notOurs(verdict: Extract<OrderVerdict, { ours: false }>, p: PaymentFacts, now: Date, refusal: AssistServerError | undefined): PaymentChange {
  const refused = refusal !== undefined || wasRefused(p);
  const codes = { firstCode: refusal?.firstCode ?? (refused ? 11 : null), secondCode: refusal?.secondCode ?? null, field: null };
  if (verdict.proof === 'foreign' && (refused || p.state === 'PENDING')) {
    const why = p.state === 'PENDING' ? 'this payment was never sent' : "Assist refused this payment's request as a duplicate (firstcode 11)";
    return {
      state: 'REJECTED',
      completedAt: now,
      continueUrl: null,
      error: {
        source: 'payorch',
        code: 'ORDER_NUMBER_TAKEN',
        message: `Assist already has another order under this order number (${verdict.reason}); ${why}: nothing was charged for this payment. Pay again with a new orderNumber`,
        ...codes,
      } satisfies PaymentErrorBody,
    };
  }
  return {
    state: 'UNKNOWN',
    completedAt: null,
    error: {
      source: 'payorch',
      code: 'ORDER_NOT_PROVEN',
      message: `the order Assist holds under this order number is not provably this payment's (${verdict.reason}), so it is not taken as its outcome; the payment may or may not have been charged: resolve it by hand`,
      ...codes,
    } satisfies PaymentErrorBody,
  };
}

/**
 * The claims on an order found under the payment's number ({@link OrderClaims}), in one statement:
 *  - another payment of the tenant that already holds the order with `billNumber`: same order number (any, with
 *    `anyOrderNumber`: a person's verdict), settings for the same Assist Merchant_ID (any server: a false match only
 *    makes the verdict stricter), its stored order that billnumber; read under the tenant's row-level security;
 *  - whether a payment of another tenant, through settings for the same Assist account, has the payment's order number
 *    (payorch_wallet_order_number_elsewhere: row-level security hides those rows; it answers a boolean about the
 *    caller's own payment only).
 */
export async function claimsOnOrder(
  tx: TransactionClient,
  payment: { id: string; orderNumber: string },
  assistMerchantId: string,
  billNumber: string,
  options: { anyOrderNumber?: boolean } = {},
): Promise<OrderClaims> {
  // A billnumber is one order, of one number: an order found under the payment's number is held by a payment of that
  // number (the index on it answers). A billnumber a person typed may be any order's (`anyOrderNumber`, a rare request:
  // the tenant's payments are read).
  const sameNumber = options.anyOrderNumber === true ? Prisma.empty : Prisma.sql`AND p."orderNumber" = ${payment.orderNumber}`;
  const [row] = await tx.$queryRaw<Array<{ payment: string | null; otherTenant: boolean }>>`
    SELECT (
        SELECT p."id" FROM "WalletPayment" p JOIN "AssistMerchant" m ON m."id" = p."merchantId"
        WHERE ${billNumber} <> '' ${sameNumber} AND p."id" <> ${payment.id}::uuid
          AND p."assistOrder"->>'billNumber' = ${billNumber}
          AND ltrim(m."merchantId", '0') = ltrim(${assistMerchantId}, '0')
        LIMIT 1) AS "payment",
      payorch_wallet_order_number_elsewhere(${payment.id}::uuid) AS "otherTenant"`;
  return { payment: row?.payment ?? null, otherTenant: row?.otherTenant === true };
}
