import type { OrderState } from '@payorch/assist-tokenpay';
import { compareAndSetLifecycle, Prisma, publishEvent, type PublishedEvent, type TransactionClient } from '@payorch/db';
import { PayorchError } from '@payorch/domain';
import { scrubPans } from '@payorch/logging';
import type { WalletOperationKind, WalletOperationState, WalletPayment, WalletPaymentOperation, WalletPaymentState, WalletTokenType } from '@payorch/prisma';

import { walletOperationEventData, walletPaymentEventData } from './events';
import {
  changeOfHumanVerdict,
  humanErrorBody,
  type HumanPaymentVerdict,
  type HumanVerdictFacts,
  paidState,
  type PaymentChange,
  type PaymentErrorBody,
  type WalletAmounts,
} from './outcome';

/**
 * THE writer of `WalletPayment.state`: {@link insertWalletPayment} creates the PENDING row and
 * {@link transitionWalletPayment} makes every later change, each with its `wallet_payment.*` DomainEvent in
 * the caller's transaction. The gateway (which pays) and the worker's resolution job (which reads Assist's
 * order state) both call it; `architecture.spec.ts` in libs/operations fails on any other writer.
 */

/**
 * Every allowed change of a wallet payment, and why. A state mapped to itself is a write that keeps the state
 * (a resolution attempt that could not tell, Assist still "In Process", a partial operation keeping the state).
 * After the payment flow, Assist's after-payment operations move the payment (issue 17), each through
 * {@link settleWalletOperation}: `/charge/charge.cfm` (capture: Charge, 200) and `/cancel/wscancel.cfm`
 * (PaymentCancel, 300: release of the authorisation, or cancel / refund of charged money).
 */
export const WALLET_TRANSITIONS: Readonly<Record<WalletPaymentState, Readonly<Partial<Record<WalletPaymentState, string>>>>> = {
  // PENDING is never sent (the gateway marks PROCESSING first), so no order at Assist can be its outcome: an order
  // found under its number is somebody else's (ownership.ts), and it takes no order state.
  PENDING: {
    PENDING: 'a resolution attempt could not tell (the row stays, the attempt is counted)',
    PROCESSING: 'the gateway is about to send tokenpay.cfm',
    REJECTED:
      "resolution: Assist has no such order (ORDER_NOT_FOUND) after the grace period, or has another's under the number (ORDER_NUMBER_TAKEN): it never reached Assist (the gateway, losing PROCESSING, sends nothing)",
  },
  PROCESSING: {
    PROCESSING: 'Assist says In Process (or a resolution attempt could not tell)',
    REQUIRES_ACTION: 'tokenpay.cfm: the payer must open continueUrl (non-tokenized Google Pay card)',
    UNKNOWN:
      "tokenpay.cfm: the answer was lost or untrusted, it may have been charged; or refused as a duplicate of an order not provably another's (ORDER_NOT_PROVEN)",
    APPROVED: 'Approved, PartialApproved',
    AUTHORIZED: 'Delayed (two-stage payment authorized)',
    PARTIALLY_CAPTURED: 'PartialDelayed',
    PARTIALLY_REFUNDED: 'PartialCanceled',
    DECLINED: 'Declined, Timeout',
    CANCELED: 'Canceled',
    REJECTED:
      "Assist refused the request (firstcode/secondcode), our validation refused it, ORDER_NOT_FOUND after the grace period, or ORDER_NUMBER_TAKEN (refused as a duplicate of an order provably not this payment's)",
  },
  REQUIRES_ACTION: {
    REQUIRES_ACTION: 'the payer has not finished 3-D Secure / CVC yet (Assist: In Process)',
    UNKNOWN: 'resolution: the order under the number is not the one Assist named for this payment (ORDER_NOT_PROVEN): left to a human',
    APPROVED: 'resolution: Approved, PartialApproved',
    AUTHORIZED: 'resolution: Delayed',
    PARTIALLY_CAPTURED: 'resolution: PartialDelayed',
    PARTIALLY_REFUNDED: 'resolution: PartialCanceled',
    DECLINED: 'resolution: Declined, Timeout (the payer never finished)',
    CANCELED: 'resolution: Canceled',
    REJECTED: 'resolution: ORDER_NOT_FOUND after the grace period',
  },
  // The only state a person resolves by hand (WALLET_HUMAN_RESOLUTIONS: APPROVED, AUTHORIZED, DECLINED, REJECTED).
  UNKNOWN: {
    UNKNOWN: "a resolution attempt could not tell (its error is recorded, the attempt counted), or the order is not provably this payment's (ORDER_NOT_PROVEN)",
    PROCESSING: 'resolution: Assist says In Process',
    APPROVED: "resolution: Approved, PartialApproved; or a person's verdict on a one-stage payment (POST …/resolve)",
    AUTHORIZED: "resolution: Delayed; or a person's verdict on a two-stage payment (POST …/resolve)",
    PARTIALLY_CAPTURED: 'resolution: PartialDelayed',
    PARTIALLY_REFUNDED: 'resolution: PartialCanceled',
    DECLINED: "resolution: Declined, Timeout; or a person's verdict (POST …/resolve)",
    CANCELED: 'resolution: Canceled',
    REJECTED:
      "resolution: ORDER_NOT_FOUND after the grace period (the request never reached Assist), or ORDER_NUMBER_TAKEN (refused as a duplicate, and the order proves another's); or a person's verdict (POST …/resolve)",
  },
  AUTHORIZED: {
    AUTHORIZED: 'wscancel.cfm released part of the authorisation, nothing captured yet (Delayed stays)',
    APPROVED: 'charge.cfm captured the whole authorised remainder: Delayed → Approved',
    PARTIALLY_CAPTURED: 'charge.cfm captured part of it: Delayed → PartialDelayed',
    CANCELED: 'wscancel.cfm released the whole authorisation: Delayed → Canceled',
  },
  PARTIALLY_CAPTURED: {
    PARTIALLY_CAPTURED: 'another partial capture, or part of the remainder released (PartialDelayed stays)',
    APPROVED: 'the rest captured, or the rest of the authorisation released: the captured amount is final',
  },
  APPROVED: {
    PARTIALLY_REFUNDED: 'wscancel.cfm for part of the captured amount: PartialCanceled',
    REFUNDED: 'wscancel.cfm for the whole captured amount: Canceled',
  },
  PARTIALLY_REFUNDED: {
    PARTIALLY_REFUNDED: 'another partial refund, something stays charged (PartialCanceled)',
    REFUNDED: 'the rest refunded: Canceled',
  },
  REFUNDED: {},
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
  PartialDelayed: 'PARTIALLY_CAPTURED',
  Canceled: 'CANCELED',
  PartialCanceled: 'PARTIALLY_REFUNDED',
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
  /** Delay=1: authorised only, captured later (`POST …/capture`). */
  twoStage?: boolean;
}

/**
 * Stores a new payment PENDING with its `wallet_payment.created` event. A taken idempotency key or order
 * number rejects with Prisma's P2002 (one INSERT … RETURNING).
 */
export async function insertWalletPayment(tx: TransactionClient, input: NewWalletPayment): Promise<{ row: WalletPaymentRow; event: PublishedEvent }> {
  const row = await tx.walletPayment.create({ data: { ...input, twoStage: input.twoStage ?? false, state: 'PENDING' } });
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
  /**
   * The event to write (also when the state stays, e.g. a second partial capture); default
   * `wallet_payment.updated`, written only when the state changed.
   */
  eventType?: WalletEventType;
  /** Extra event data (the operation that moved the payment). */
  eventExtra?: Record<string, unknown>;
  /** A person's verdict, stored on the row by this same write ({@link resolveWalletPaymentByHand}); needs a `change`. */
  resolution?: WalletResolution;
}

export type WalletEventType = Extract<PublishedEvent['type'], `wallet_payment.${string}`>;

export interface WalletPaymentTransitionResult {
  row: WalletPaymentRow;
  from: WalletPaymentState;
  /** `wallet_payment.updated`, written when the state changed. */
  event: PublishedEvent | undefined;
}

/** Refuses an illegal pair before the database is touched. */
export function assertWalletTransition(t: Pick<WalletPaymentTransition, 'from' | 'change' | 'resolution'>): void {
  if (t.from.length === 0) throw new WalletPaymentTransitionError('INVALID_WRITE', 'a transition needs at least one source state');
  if (t.resolution !== undefined && t.change === null) throw new WalletPaymentTransitionError('INVALID_WRITE', "a person's verdict changes the payment");
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
    if (c.amounts !== undefined) sets.push(...amountSets(c.amounts));
    if (c.refusedAsDuplicate) sets.push(Prisma.sql`"refusedAsDuplicate" = true`);
    if (t.resolution !== undefined) sets.push(Prisma.sql`"resolution" = ${json(t.resolution)}::jsonb`);
  } else if (t.error !== undefined) {
    sets.push(Prisma.sql`"error" = ${json(t.error)}::jsonb`);
  }
  if (t.countResolutionAttempt) sets.push(Prisma.sql`"resolutionAttempts" = "resolutionAttempts" + 1`);
  const written = await compareAndSetLifecycle<WalletPaymentRow, WalletPaymentState>(tx, 'WalletPayment', t.paymentId, t.from, sets);
  if (written === undefined) return null;
  const { row, previous: previousState } = written;
  const type = t.eventType ?? (row.state === previousState ? undefined : 'wallet_payment.updated');
  const event =
    type === undefined
      ? undefined
      : await publishEvent(tx, row.tenantId, {
          type,
          subjectType: 'wallet_payment',
          subjectId: row.id,
          data: { ...walletPaymentEventData(row, previousState), ...t.eventExtra },
        });
  return { row, from: previousState, event };
}

// ───────────────────────── a person's verdict ─────────────────────────

/**
 * What a person may conclude about a payment the system cannot resolve — UNKNOWN, e.g. `ORDER_NOT_PROVEN` (the order
 * Assist shows under its number is not provably its own) or an answer that is never trusted — after reading the order in
 * Assist's back office: `POST /v1/wallet-payments/{id}/resolve`, written by {@link resolveWalletPaymentByHand}. Only from
 * UNKNOWN, and each is a WALLET_TRANSITIONS edge from UNKNOWN (transition.spec.ts). Every one is final: the resolution
 * job's compare-and-set starts from the state it read, so it never writes over a person's verdict.
 */
export const WALLET_HUMAN_RESOLUTIONS: Readonly<Record<HumanPaymentVerdict, string>> = {
  APPROVED: 'a one-stage payment the back office shows paid (Approved): authorised and captured in full',
  AUTHORIZED: 'a two-stage payment the back office shows authorised (Delayed): held in full, nothing captured yet',
  DECLINED: 'the back office shows the order declined or expired (Declined, Timeout): nothing charged',
  REJECTED: 'the back office has no order of this payment (never reached Assist, or refused): nothing charged',
};

/**
 * Who decided, and what they wrote: on the row (`resolution`, {@link WalletResolution}) and on the event
 * (`resolvedBy: "human"`), as the operations' manual resolution does.
 */
export interface HumanVerdictBy {
  /** Free text; a card number in it is masked (6/4) before it is stored anywhere. */
  readonly note: string;
  /** The billnumber they read in Assist's back office, if they gave one. */
  readonly billNumber?: string;
  readonly actor: { readonly type: string; readonly id: string | null };
  /** The verdict's instant: `resolution.at` and the row's `completedAt` (default: now). */
  readonly now?: Date;
}

/**
 * A person's verdict as its row keeps it (`WalletPayment.resolution`, `WalletPaymentOperation.resolution`, jsonb),
 * written by the compare-and-set that applies it; null on every row nobody resolved by hand (Assist's answer, the
 * resolution job). It stays when later operations move the payment.
 */
export interface WalletResolution {
  readonly by: 'human';
  /** The tenant context's actor: `api_key` (its id), `admin` (`user@host`), … */
  readonly actor: { readonly type: string; readonly id: string | null };
  /** Card numbers masked (6/4). */
  readonly note: string;
  /** The billnumber they gave, or null. */
  readonly billNumber: string | null;
  /** ISO 8601: when the verdict was written, the row's `completedAt`. */
  readonly at: string;
}

/** The verdict with its note masked (the gateway's body schema masks it too: a second pass changes nothing) and its instant. */
function verdictOf<V extends HumanVerdictBy>(v: V): V & { readonly now: Date } {
  return { ...v, note: scrubPans(v.note), now: v.now ?? new Date() };
}

const resolutionOf = (v: HumanVerdictBy & { readonly now: Date }): WalletResolution => ({
  by: 'human',
  actor: { type: v.actor.type, id: v.actor.id },
  note: v.note,
  billNumber: v.billNumber ?? null,
  at: v.now.toISOString(),
});

const humanEventData = (v: HumanVerdictBy): Record<string, unknown> => ({
  resolvedBy: 'human',
  note: v.note,
  billNumber: v.billNumber ?? null,
  actorType: v.actor.type,
  actorId: v.actor.id,
});

export interface HumanPaymentResolution extends HumanVerdictBy {
  readonly payment: HumanVerdictFacts & { readonly id: string };
  readonly state: HumanPaymentVerdict;
}

/**
 * A person's verdict on an UNKNOWN payment: one compare-and-set from UNKNOWN (so the resolution job and a person never
 * both decide) storing what {@link changeOfHumanVerdict} derives — the same columns the outcome path stores for that
 * order state — and, in the same statement, the verdict itself (`resolution`: {@link WalletResolution}), with
 * `wallet_payment.updated` carrying `resolvedBy: "human"`, the note, the billnumber and the actor.
 * Null when the payment is no longer UNKNOWN (the job or another person got there first). A paid verdict must fit the
 * payment: APPROVED for one-stage, AUTHORIZED for two-stage (else INVALID_WRITE: its amounts would be wrong).
 */
export async function resolveWalletPaymentByHand(tx: TransactionClient, resolution: HumanPaymentResolution): Promise<WalletPaymentTransitionResult | null> {
  const r = verdictOf(resolution);
  if (WALLET_HUMAN_RESOLUTIONS[r.state] === undefined) {
    throw new WalletPaymentTransitionError('ILLEGAL_TRANSITION', `a person does not resolve a wallet payment to ${r.state}`, {
      from: ['UNKNOWN'],
      to: r.state,
    });
  }
  if ((r.state === 'APPROVED' || r.state === 'AUTHORIZED') && r.state !== paidState(r.payment.twoStage)) {
    throw new WalletPaymentTransitionError(
      'INVALID_WRITE',
      `a ${r.payment.twoStage ? 'two' : 'one'}-stage payment is paid as ${paidState(r.payment.twoStage)}, not ${r.state}`,
    );
  }
  return transitionWalletPayment(tx, {
    paymentId: r.payment.id,
    from: ['UNKNOWN'],
    change: changeOfHumanVerdict(r.payment, { state: r.state, note: r.note, billNumber: r.billNumber }, r.now),
    eventType: 'wallet_payment.updated',
    eventExtra: humanEventData(r),
    resolution: resolutionOf(r),
  });
}

function amountSets(a: WalletAmounts): Prisma.Sql[] {
  return [
    Prisma.sql`"authorizedAmount" = ${a.authorized}::bigint`,
    Prisma.sql`"capturedAmount" = ${a.captured}::bigint`,
    Prisma.sql`"releasedAmount" = ${a.released}::bigint`,
    Prisma.sql`"refundedAmount" = ${a.refunded}::bigint`,
  ];
}

// ───────────────────────── after-payment operations (issue 17) ─────────────────────────

/**
 * THE writer of `WalletPaymentOperation.state` as well: {@link insertWalletOperation} stores a capture / cancel /
 * refund PENDING before a byte goes to Assist; {@link settleWalletOperation} records what became of it and, when
 * it succeeded, moves the payment's amounts and state through {@link transitionWalletPayment} in the same
 * transaction. PENDING means "being sent (or sent)": it is never sent again, only resolved.
 */
export const WALLET_OPERATION_TRANSITIONS: Readonly<Record<WalletOperationState, Readonly<Partial<Record<WalletOperationState, string>>>>> = {
  PENDING: {
    SUCCEEDED: 'Assist answered with our operation, Success',
    FAILED: 'Assist refused it (definitive firstcode) or our operation is listed as Failure',
    UNKNOWN: 'the answer was lost or untrusted, or the gateway died mid-call (the sweep): orderstate resolves it',
  },
  // The only state a person resolves by hand (WALLET_OPERATION_HUMAN_RESOLUTIONS).
  UNKNOWN: {
    UNKNOWN: 'a resolution attempt could not tell (its error is recorded, the attempt counted)',
    SUCCEEDED: "resolution: orderstate lists our operation, Success; or a person's verdict (POST …/operations/{operationId}/resolve)",
    FAILED:
      "resolution: orderstate lists it as Failure, or lists no such operation after the grace period (never reached Assist); or a person's verdict (POST …/operations/{operationId}/resolve)",
  },
  SUCCEEDED: {},
  FAILED: {},
};

export type WalletOperationRow = WalletPaymentOperation;

/** Which payment state and event a successful operation leads to, from the amounts after it. */
export function afterOperation(kind: WalletOperationKind, amounts: WalletAmounts): { state: WalletPaymentState; eventType: WalletEventType } {
  const open = amounts.authorized - amounts.captured - amounts.released;
  switch (kind) {
    case 'CAPTURE':
      return open > 0n
        ? { state: 'PARTIALLY_CAPTURED', eventType: 'wallet_payment.partially_captured' }
        : { state: 'APPROVED', eventType: 'wallet_payment.captured' };
    case 'CANCEL_AUTHORIZATION':
      if (open > 0n) return { state: amounts.captured > 0n ? 'PARTIALLY_CAPTURED' : 'AUTHORIZED', eventType: 'wallet_payment.partially_canceled' };
      return amounts.captured > 0n
        ? { state: 'APPROVED', eventType: 'wallet_payment.partially_canceled' }
        : { state: 'CANCELED', eventType: 'wallet_payment.canceled' };
    case 'REFUND':
      return amounts.refunded >= amounts.captured
        ? { state: 'REFUNDED', eventType: 'wallet_payment.refunded' }
        : { state: 'PARTIALLY_REFUNDED', eventType: 'wallet_payment.partially_refunded' };
  }
}

/** The payment's amounts once `kind` of `amount` succeeded. */
export function addOperation(a: WalletAmounts, kind: WalletOperationKind, amount: bigint): WalletAmounts {
  switch (kind) {
    case 'CAPTURE':
      return { ...a, captured: a.captured + amount };
    case 'CANCEL_AUTHORIZATION':
      return { ...a, released: a.released + amount };
    case 'REFUND':
      return { ...a, refunded: a.refunded + amount };
  }
}

export const amountsOfRow = (row: Pick<WalletPayment, 'authorizedAmount' | 'capturedAmount' | 'releasedAmount' | 'refundedAmount'>): WalletAmounts => ({
  authorized: row.authorizedAmount,
  captured: row.capturedAmount,
  released: row.releasedAmount,
  refunded: row.refundedAmount,
});

export interface NewWalletOperation {
  id: string;
  tenantId: string;
  paymentId: string;
  kind: WalletOperationKind;
  amount: bigint;
  currency: string;
  idempotencyKey: string;
  /** Of the request (action, payment, body): the same key with another request is refused, also after 24 h. */
  requestHash: string;
}

/**
 * Stores the operation PENDING with `sentAt` = now (it is about to be sent). Rejects with P2002 when the key is
 * taken or another operation of the payment is still open (partial unique index: one PENDING/UNKNOWN per payment).
 */
export async function insertWalletOperation(tx: TransactionClient, input: NewWalletOperation): Promise<WalletOperationRow> {
  return tx.walletPaymentOperation.create({ data: { ...input, state: 'PENDING', sentAt: new Date() } });
}

export interface OperationSettlement {
  operationId: string;
  /** The states the operation must be in (compare-and-set). */
  from: readonly WalletOperationState[];
  to: WalletOperationState;
  assistBillNumber?: string | null;
  /** The matched Assist operation (masked; see summarizeOrder). */
  assistOperation?: object | null;
  error?: PaymentErrorBody | null;
  countResolutionAttempt?: boolean;
  /** Extra data of the event it writes (a person's verdict: `resolvedBy`, note, actor). */
  eventExtra?: Record<string, unknown>;
  /** A person's verdict, stored on the operation's row by this same write ({@link resolveWalletOperationByHand}). */
  resolution?: WalletResolution;
  /** When it completed (SUCCEEDED / FAILED); default: the database's clock. A verdict's is its `resolution.at`. */
  completedAt?: Date;
}

export interface OperationSettlementResult {
  operation: WalletOperationRow;
  payment: WalletPaymentRow | undefined;
  event: PublishedEvent | undefined;
}

/**
 * Records an operation's outcome (one compare-and-set); on SUCCEEDED adds its amount to the payment and moves the
 * payment (`wallet_payment.captured` / `.partially_captured` / `.canceled` / `.partially_canceled` / `.refunded` /
 * `.partially_refunded`), on FAILED writes `wallet_payment.operation_failed`. Null when the operation was no
 * longer in one of `from` (the other writer got there first).
 */
export async function settleWalletOperation(tx: TransactionClient, s: OperationSettlement): Promise<OperationSettlementResult | null> {
  const illegal = s.from.filter((from) => WALLET_OPERATION_TRANSITIONS[from][s.to] === undefined);
  if (s.from.length === 0 || illegal.length > 0) {
    throw new WalletPaymentTransitionError('ILLEGAL_TRANSITION', `wallet operation ${illegal.join(', ')} → ${s.to} is not a transition`, {
      from: illegal,
      to: s.to,
    });
  }
  const sets: Prisma.Sql[] = [Prisma.sql`"state" = ${s.to}::"WalletOperationState"`];
  if (s.to === 'SUCCEEDED' || s.to === 'FAILED') {
    sets.push(s.completedAt === undefined ? Prisma.sql`"completedAt" = clock_timestamp()` : Prisma.sql`"completedAt" = ${s.completedAt}::timestamptz`);
  }
  if (s.assistBillNumber !== undefined) sets.push(Prisma.sql`"assistBillNumber" = ${s.assistBillNumber}::text`);
  if (s.assistOperation !== undefined) sets.push(Prisma.sql`"assistOperation" = ${json(s.assistOperation)}::jsonb`);
  if (s.error !== undefined) sets.push(Prisma.sql`"error" = ${json(s.error)}::jsonb`);
  if (s.countResolutionAttempt) sets.push(Prisma.sql`"resolutionAttempts" = "resolutionAttempts" + 1`);
  if (s.resolution !== undefined) sets.push(Prisma.sql`"resolution" = ${json(s.resolution)}::jsonb`);
  const written = await compareAndSetLifecycle<WalletOperationRow, WalletOperationState>(tx, 'WalletPaymentOperation', s.operationId, s.from, sets);
  if (written === undefined) return null;
  const operation = written.row;
  if (s.to === 'FAILED') {
    const event = await publishEvent(tx, operation.tenantId, {
      type: 'wallet_payment.operation_failed',
      subjectType: 'wallet_payment',
      subjectId: operation.paymentId,
      data: { id: operation.paymentId, operation: walletOperationEventData(operation), ...s.eventExtra },
    });
    return { operation, payment: undefined, event };
  }
  if (s.to !== 'SUCCEEDED') return { operation, payment: undefined, event: undefined };
  // The payment row is locked by the compare-and-set below; its amounts are read under the same lock first.
  const [current] = await tx.$queryRaw<WalletPaymentRow[]>`SELECT * FROM "WalletPayment" WHERE "id" = ${operation.paymentId}::uuid FOR UPDATE`;
  if (!current) throw new WalletPaymentTransitionError('INVALID_WRITE', `wallet payment ${operation.paymentId} of operation ${operation.id} is gone`);
  const amounts = addOperation(amountsOfRow(current), operation.kind, operation.amount);
  const next = afterOperation(operation.kind, amounts);
  const moved = await transitionWalletPayment(tx, {
    paymentId: current.id,
    from: [current.state],
    change: { state: next.state, error: null, completedAt: current.completedAt ?? new Date(), amounts },
    eventType: next.eventType,
    eventExtra: { operation: walletOperationEventData(operation), ...s.eventExtra },
  });
  if (!moved) throw new WalletPaymentTransitionError('INVALID_WRITE', `wallet payment ${current.id} changed under its row lock`);
  return { operation, payment: moved.row, event: moved.event };
}

/**
 * What a person may conclude about a capture / cancel / refund left UNKNOWN (e.g. every orderstate answer about it fails
 * its checks, `ORDER_MISMATCH`), after finding it in Assist's back office: `POST /v1/wallet-payments/{id}/operations/
 * {operationId}/resolve`, written by {@link resolveWalletOperationByHand}. Each is a WALLET_OPERATION_TRANSITIONS edge
 * from UNKNOWN (transition.spec.ts), and final.
 */
export const WALLET_OPERATION_HUMAN_RESOLUTIONS: Readonly<Record<'SUCCEEDED' | 'FAILED', string>> = {
  SUCCEEDED: 'the back office lists it as Success: its amount moves the payment exactly as when orderstate lists it',
  FAILED: 'the back office lists it as Failure, or not at all: no money moved',
};

export interface HumanOperationResolution extends HumanVerdictBy {
  readonly operationId: string;
  readonly state: keyof typeof WALLET_OPERATION_HUMAN_RESOLUTIONS;
}

/**
 * A person's verdict on an UNKNOWN operation through {@link settleWalletOperation} — the resolution job's own path, so
 * a SUCCEEDED verdict adds the amount to the payment and moves it (and its event) exactly as an orderstate answer
 * would; FAILED writes `wallet_payment.operation_failed` with the note as the operation's `error`
 * (`RESOLVED_MANUALLY`). The operation's row keeps the verdict (`resolution`, written by the same compare-and-set; the
 * payment's own `resolution` is left alone: nobody decided the payment). The events carry `resolvedBy: "human"`, the
 * note, the billnumber and the actor. Null when the operation is no longer UNKNOWN (the job or another person got there first).
 */
export async function resolveWalletOperationByHand(tx: TransactionClient, resolution: HumanOperationResolution): Promise<OperationSettlementResult | null> {
  const r = verdictOf(resolution);
  if (WALLET_OPERATION_HUMAN_RESOLUTIONS[r.state] === undefined) {
    throw new WalletPaymentTransitionError('ILLEGAL_TRANSITION', `a person does not resolve a wallet operation to ${r.state}`, {
      from: ['UNKNOWN'],
      to: r.state,
    });
  }
  return settleWalletOperation(tx, {
    operationId: r.operationId,
    from: ['UNKNOWN'],
    to: r.state,
    ...(r.billNumber !== undefined ? { assistBillNumber: r.billNumber } : {}),
    error: r.state === 'FAILED' ? humanErrorBody(r.note) : null,
    eventExtra: humanEventData(r),
    resolution: resolutionOf(r),
    completedAt: r.now,
  });
}

const json = (value: unknown): string | null => (value === null || value === undefined ? null : JSON.stringify(value));
