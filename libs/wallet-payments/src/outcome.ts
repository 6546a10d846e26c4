/**
 * Assist outcomes → WalletPayment row changes. Used by the gateway (after `pay()`) and by the
 * resolution job (after `resolveOrder()`), so both store the same thing. What is stored: states,
 * Assist's order/operation summary with masked PANs, and error codes; never the token, a full PAN
 * or credentials.
 */
import {
  type AfterPaymentOutcome,
  type OperationResolution,
  type AssistIntegrityError,
  type AssistProtocolError,
  AssistServerError,
  type AssistTransportError,
  maskPan,
  ORDER_STATUS_BY_STATE,
  orderAmountToMinorUnits,
  type AssistOrder,
  type DuplicateOutcome,
  type OrderOutcome,
  type OrderStatus,
  type TokenPayOutcome,
  toOrderAmount,
} from '@payorch/assist-tokenpay';
import { assertUnreachable } from '@payorch/domain';
import type { WalletOperationKind, WalletPaymentState } from '@payorch/prisma';

import type { WalletErrorCode } from './error-codes';
import { ASSIST_TYPE_OF_KIND } from './operation-claims';

/** States after which nothing changes any more. */
export const FINAL_STATES: ReadonlySet<WalletPaymentState> = new Set([
  'APPROVED',
  'AUTHORIZED',
  'PARTIALLY_CAPTURED',
  'PARTIALLY_REFUNDED',
  'REFUNDED',
  'DECLINED',
  'CANCELED',
  'REJECTED',
]);

/** States the resolution job works on: the money may or may not have moved yet. */
export const UNRESOLVED_STATES: readonly WalletPaymentState[] = ['PENDING', 'PROCESSING', 'REQUIRES_ACTION', 'UNKNOWN'];

export const isFinalState = (state: WalletPaymentState) => FINAL_STATES.has(state);

/** The error stored on the payment and returned to the caller: codes, never values. */
export interface PaymentErrorBody {
  /** `assist`: a firstcode/secondcode answer; `transport`/`protocol`/`integrity`: why the outcome is unknown; `payorch`: our conclusion. */
  readonly source: 'assist' | 'transport' | 'protocol' | 'integrity' | 'payorch';
  /** e.g. `LIMIT_EXCEEDED`, `AUTHENTICATION_FAILED`, `TIMEOUT`, `CHECKVALUE_MISMATCH`, `ORDER_NOT_FOUND` (every one: error-codes.ts). */
  readonly code: WalletErrorCode;
  readonly message: string;
  readonly firstCode: number | null;
  readonly secondCode: number | null;
  /** The Assist request parameter the second code points at (spec casing), if any. */
  readonly field: string | null;
}

export interface AssistOperationSummary {
  readonly billNumber: string;
  readonly type: string;
  readonly state: string;
  readonly amount: string;
  readonly currency: string;
  readonly meanType: string;
  readonly meanSubtype: string;
  /** Masked by Assist and re-masked (6/4). */
  readonly maskedPan: string;
  readonly responseCode: string;
  readonly message: string;
  readonly customerMessage: string;
  readonly approvalCode: string;
  readonly authResult: string;
  readonly operationDate: string;
}

/** Stored in `WalletPayment.assistOrder`. */
export interface AssistOrderSummary {
  readonly orderNumber: string;
  readonly billNumber: string;
  /** Assist's orderstate, verbatim (`Approved`, `Delayed`, `PartialApproved`, …): the authoritative detail behind `state`. */
  readonly orderState: string;
  readonly amount: string;
  readonly currency: string;
  readonly orderDate: string;
  readonly testMode: boolean | null;
  /**
   * Which service the verified answer came from; `manual`: no answer, a person read the order in Assist's back office
   * and resolved the payment by hand (`orderState` is then what they saw, `operations` is empty).
   */
  readonly source: 'tokenpay' | 'orderstate' | 'manual';
  /**
   * Always false since an existing order is no longer adopted on Assist's "duplicate object" answer (firstcode 11,
   * ownership.ts); true only on payments stored before, whose order was adopted that way.
   */
  readonly duplicate: boolean;
  readonly operations: readonly AssistOperationSummary[];
}

export interface PaymentChange {
  readonly state: WalletPaymentState;
  readonly assistOrder?: AssistOrderSummary;
  readonly maskedPan?: string | null;
  readonly continueUrl?: string | null;
  readonly error: PaymentErrorBody | null;
  /** `undefined`: the answer did not say; keep what is stored. */
  readonly testMode?: boolean;
  readonly completedAt: Date | null;
  /** The payment's money columns after this change; `undefined`: unchanged. */
  readonly amounts?: WalletAmounts;
  /** Assist refused the payment's request as a duplicate (firstcode 11): stored for good (ownership.ts). */
  readonly refusedAsDuplicate?: true;
}

/** Minor units held, captured, released and refunded (issue 17). */
export interface WalletAmounts {
  readonly authorized: bigint;
  readonly captured: bigint;
  readonly released: bigint;
  readonly refunded: bigint;
}

export interface PaymentTerms {
  /** Minor units of the order. */
  readonly amount: bigint;
  readonly currency: string;
  readonly twoStage: boolean;
}

/**
 * The money columns a verified order implies when the payment flow resolves it: the authorisation holds the
 * amount; one-stage payments captured it; charges (200) and cancels (300) found on the order are counted, a
 * cancel first releasing the uncaptured authorisation, then refunding. `undefined` for unpaid orders.
 */
export function amountsOfOrder(order: AssistOrder, terms: PaymentTerms): WalletAmounts | undefined {
  const state = stateOfOrderStatus(ORDER_STATUS_BY_STATE[order.state]);
  if (state === 'PROCESSING' || state === 'DECLINED') return undefined;
  const sum = (type: string) =>
    order.operations.filter((op) => op.type === type && op.state === 'Success').reduce((total, op) => total + safeMinor(op.amount, terms.currency), 0n);
  let cancels = sum('PaymentCancel');
  if (state === 'CANCELED' && cancels === 0n) cancels = terms.amount;
  return amountsOfPaid(terms, sum('Charge'), cancels);
}

/**
 * The money columns of a paid order: the authorisation holds the amount; a one-stage payment captured it, a two-stage
 * one `charged` (its Charge operations); `cancels` (PaymentCancel) first release the uncaptured authorisation, then
 * refund. With no operations: what a paid order is worth when it is paid (a human's verdict, {@link changeOfHumanVerdict}).
 */
export function amountsOfPaid(terms: PaymentTerms, charged = 0n, cancels = 0n): WalletAmounts {
  const authorized = terms.amount;
  const captured = terms.twoStage ? charged : authorized;
  const released = terms.twoStage ? min(cancels, authorized - captured) : 0n;
  return { authorized, captured, released, refunded: min(cancels - released, captured) };
}

const min = (a: bigint, b: bigint) => (a < b ? a : b);

function safeMinor(amount: string, currency: string): bigint {
  try {
    return orderAmountToMinorUnits(amount, currency);
  } catch {
    return 0n;
  }
}

/** Coarse state per Assist orderstate; `assistOrder.orderState` keeps the exact one. */
export function stateOfOrderStatus(status: OrderStatus): WalletPaymentState {
  switch (status) {
    case 'approved':
    case 'partially_approved': // "не используется" (spec)
      return 'APPROVED';
    case 'partially_charged':
      return 'PARTIALLY_CAPTURED';
    case 'partially_canceled': // part of the money stays charged
      return 'PARTIALLY_REFUNDED';
    case 'authorized':
      return 'AUTHORIZED';
    case 'declined':
    case 'timed_out': // Assist's "Timeout" order state: the order expired unpaid
      return 'DECLINED';
    case 'canceled':
      return 'CANCELED';
    case 'in_process':
      return 'PROCESSING';
    default:
      return assertUnreachable(status);
  }
}

/**
 * The row change for an outcome of `pay()` or a non-`not_found` outcome of `resolveOrder()`; with the payment's
 * terms, a verified order also sets the money columns. An order found by number rather than answered to the
 * payment's own request (`resolveOrder()`, a `duplicate` refusal) must first be proven the payment's: use
 * `changeOfFoundOrder` / `changeOfRefusal` (ownership.ts), which call this only then.
 */
export function changeOfOutcome(outcome: Exclude<TokenPayOutcome, DuplicateOutcome>, now = new Date(), terms?: PaymentTerms): PaymentChange {
  switch (outcome.status) {
    case 'rejected':
      return { state: 'REJECTED', error: errorBody(outcome.error), completedAt: now, continueUrl: null };
    case 'unknown':
      return { state: 'UNKNOWN', error: errorBody(outcome.error), completedAt: null };
    case 'requires_action':
      return {
        state: 'REQUIRES_ACTION',
        continueUrl: outcome.continueUrl,
        error: null,
        completedAt: null,
        ...orderFields(outcome.order, 'tokenpay', false),
      };
    default: {
      const order: OrderOutcome = outcome;
      const state = stateOfOrderStatus(order.status);
      const amounts = terms ? amountsOfOrder(order.order, terms) : undefined;
      return {
        ...(amounts ? { amounts } : {}),
        state,
        error: null,
        completedAt: isFinalState(state) ? now : null,
        ...(isFinalState(state) ? { continueUrl: null } : {}),
        ...orderFields(order.order, order.source, false),
      };
    }
  }
}

function orderFields(order: AssistOrder, source: 'tokenpay' | 'orderstate', duplicate: boolean) {
  const summary = summarizeOrder(order, source, duplicate);
  const withPan = [...summary.operations].reverse().find((op) => op.maskedPan !== '');
  return {
    assistOrder: summary,
    ...(withPan ? { maskedPan: withPan.maskedPan } : {}),
    ...(order.testMode === undefined ? {} : { testMode: order.testMode }),
  };
}

export function summarizeOrder(order: AssistOrder, source: 'tokenpay' | 'orderstate', duplicate: boolean): AssistOrderSummary {
  return {
    orderNumber: order.orderNumber,
    billNumber: order.billNumber,
    orderState: order.state,
    amount: order.amount,
    currency: order.currency,
    orderDate: order.orderDate,
    testMode: order.testMode ?? null,
    source,
    duplicate,
    operations: order.operations.map((op) => ({
      billNumber: op.billNumber,
      type: op.type ?? op.rawType,
      state: op.state ?? op.rawState,
      amount: op.amount,
      currency: op.currency,
      meanType: op.meanType ?? op.meanTypeName,
      meanSubtype: op.meanSubtype,
      maskedPan: op.meanNumber ? maskPan(op.meanNumber) : '',
      responseCode: op.responseCode,
      message: op.message,
      customerMessage: op.customerMessage,
      approvalCode: op.approvalCode,
      authResult: op.authResult,
      operationDate: op.operationDate,
    })),
  };
}

/** The Assist client's errors an outcome carries (a validation error is the caller's, stored as `VALIDATION_FAILED`). */
export type OutcomeError = AssistServerError | AssistTransportError | AssistProtocolError | AssistIntegrityError;

export function errorBody(error: OutcomeError): PaymentErrorBody {
  if (error instanceof AssistServerError) {
    return {
      source: 'assist',
      code: error.code,
      message: error.message,
      firstCode: error.firstCode,
      secondCode: error.secondCode,
      field: error.field ?? null,
    };
  }
  const source = error.name === 'AssistTransportError' ? 'transport' : error.name === 'AssistIntegrityError' ? 'integrity' : 'protocol';
  return { source, code: error.code, message: error.message, firstCode: null, secondCode: null, field: null };
}

/** The columns an after-payment operation's outcome sets (`settleWalletOperation`), minus `from`. */
export interface OperationOutcomeColumns {
  readonly to: 'SUCCEEDED' | 'FAILED' | 'UNKNOWN';
  readonly assistBillNumber?: string;
  readonly assistOperation?: AssistOperationSummary & { orderState: string };
  readonly error?: PaymentErrorBody | null;
}

/**
 * A capture / cancel outcome (`charge()` / `cancel()`) or its resolution (`resolveOperation()`, except
 * `not_found`, which only the caller can judge) → what is stored on the operation. Assist still processing it
 * is UNKNOWN: the job follows it up. `not_proven` is UNKNOWN with `OPERATION_NOT_PROVEN`, for a person.
 */
export function settlementOfOperation(outcome: AfterPaymentOutcome | Exclude<OperationResolution, { status: 'not_found' }>): OperationOutcomeColumns {
  switch (outcome.status) {
    case 'succeeded':
    case 'failed':
    case 'in_process': {
      const summary = summarizeOrder(outcome.order, 'orderstate', false).operations.find((op) => op.billNumber === outcome.operation.billNumber);
      const columns = {
        assistBillNumber: outcome.operation.billNumber,
        ...(summary ? { assistOperation: { ...summary, orderState: outcome.order.state } } : {}),
      };
      if (outcome.status === 'in_process') return { to: 'UNKNOWN', ...columns };
      return { to: outcome.status === 'succeeded' ? 'SUCCEEDED' : 'FAILED', ...columns, error: null };
    }
    case 'rejected':
      return { to: 'FAILED', error: errorBody(outcome.error) };
    case 'not_proven':
      // Records a hand verdict without a billnumber may stand for: never taken for this one, never guessed (a person decides).
      return {
        to: 'UNKNOWN',
        error: {
          source: 'payorch',
          code: 'OPERATION_NOT_PROVEN',
          message:
            `Assist lists ${outcome.billNumbers.join(', ')} of this type and amount, which an operation of this payment settled ` +
            "without a billnumber may stand for: which one is this operation's cannot be told; resolve it by hand, naming its billnumber",
          firstCode: null,
          secondCode: null,
          field: null,
        },
      };
    case 'unknown':
      return { to: 'UNKNOWN', error: errorBody(outcome.error) };
    default:
      return assertUnreachable(outcome);
  }
}

/** What a person calls each operation kind (messages). */
const NOUN_OF_KIND: Readonly<Record<WalletOperationKind, string>> = {
  CAPTURE: 'capture',
  CANCEL_AUTHORIZATION: 'release of the authorisation',
  REFUND: 'refund',
};

/** `45 s`, `10 min`: a grace period as a person reads it. */
const duration = (ms: number) => (ms < 120_000 ? `${Math.round(ms / 1000)} s` : `${Math.round(ms / 60_000)} min`);

/**
 * `error` of an operation the resolution job concludes never reached Assist (`failed`, `OPERATION_NOT_FOUND`): orderstate
 * lists no record of its type and amount that is free to be its own `graceMs` (WALLET_NOT_FOUND_GRACE_MS) after it was
 * sent, and Assist never named it. Says what that means and what to do (docs/wallet-payments.md §4 "Lost answer").
 */
export function operationNotFoundError(op: { kind: WalletOperationKind; amount: bigint; currency: string }, graceMs: number): PaymentErrorBody {
  const noun = NOUN_OF_KIND[op.kind];
  return {
    source: 'payorch',
    code: 'OPERATION_NOT_FOUND',
    message:
      `Assist has no record of this ${noun}: the order lists no ${ASSIST_TYPE_OF_KIND[op.kind]} of ${toOrderAmount(op.amount, op.currency)} ` +
      `${op.currency} besides those of the payment's other operations, ${duration(graceMs)} after it was sent. The request never reached ` +
      `Assist and no money moved; if the ${noun} is still wanted, send it again with a new Idempotency-Key`,
    firstCode: null,
    secondCode: null,
    field: null,
  };
}

/**
 * Why a payment is REJECTED when Assist shows no order under its number `graceMs` after it was made: the request never
 * reached Assist, nothing was charged, and what to do (the order number is not to be reused: Assist may still hold a
 * record of it that nobody sees).
 */
export function orderNotFoundError(graceMs: number): PaymentErrorBody {
  return {
    source: 'payorch',
    code: 'ORDER_NOT_FOUND',
    message:
      `Assist has no order with this number ${duration(graceMs)} after the payment was made: the payment request never reached ` +
      'Assist and nothing was charged. If the customer still wants to pay, make a new payment under a new order number',
    firstCode: 10,
    secondCode: null,
    field: null,
  };
}

// ───────────────────────── a person's verdict (POST …/resolve) ─────────────────────────

/**
 * The states a person may give a payment the system cannot resolve (UNKNOWN); transition.ts says why
 * (`WALLET_HUMAN_RESOLUTIONS`). A paid payment is APPROVED when one-stage, AUTHORIZED when two-stage ({@link paidState}).
 */
export type HumanPaymentVerdict = 'APPROVED' | 'AUTHORIZED' | 'DECLINED' | 'REJECTED';

/** What Assist shows for a paid order of this payment kind: one-stage Approved, two-stage Delayed (authorised). */
export const paidState = (twoStage: boolean): 'APPROVED' | 'AUTHORIZED' => (twoStage ? 'AUTHORIZED' : 'APPROVED');

/** Assist's orderstate a person's verdict stands for (`assistOrder.orderState` of a `manual` summary). */
const ORDER_STATE_OF_VERDICT: Readonly<Record<Exclude<HumanPaymentVerdict, 'REJECTED'>, string>> = {
  APPROVED: 'Approved',
  AUTHORIZED: 'Delayed',
  DECLINED: 'Declined',
};

/** `error` of what a person concluded went nowhere (a declined or rejected payment, a failed operation): their note. */
export function humanErrorBody(note: string): PaymentErrorBody {
  return { source: 'payorch', code: 'RESOLVED_MANUALLY', message: `resolved by hand: ${note}`, firstCode: null, secondCode: null, field: null };
}

export interface HumanVerdictFacts {
  readonly orderNumber: string;
  /** Minor units. */
  readonly amount: bigint;
  readonly currency: string;
  readonly twoStage: boolean;
  /** The stored order summary (kept unless the person names a billnumber it does not have). */
  readonly assistOrder: unknown;
}

/**
 * The row change of a person's verdict on an UNKNOWN payment, the way the outcome path would store that order state:
 * a paid verdict sets the money columns as a verified paid order does ({@link amountsOfPaid}: one-stage authorised and
 * captured in full, two-stage held in full); a declined or rejected one moves no money and records the note as the
 * `error` (`RESOLVED_MANUALLY`). A billnumber the person read in Assist's back office becomes the payment's order
 * (a `manual` summary) unless the stored summary already has it. The state must fit the payment
 * ({@link paidState}); transition.ts (`resolveWalletPaymentByHand`) checks that before calling this.
 */
export function changeOfHumanVerdict(
  p: HumanVerdictFacts,
  verdict: { state: HumanPaymentVerdict; note: string; billNumber?: string },
  now = new Date(),
): PaymentChange {
  const paid = verdict.state === 'APPROVED' || verdict.state === 'AUTHORIZED';
  const stored = p.assistOrder as Partial<AssistOrderSummary> | null;
  const summary =
    verdict.billNumber === undefined || verdict.state === 'REJECTED' || (stored?.duplicate !== true && stored?.billNumber === verdict.billNumber)
      ? undefined
      : ({
          orderNumber: p.orderNumber,
          billNumber: verdict.billNumber,
          orderState: ORDER_STATE_OF_VERDICT[verdict.state],
          amount: toOrderAmount(p.amount, p.currency),
          currency: p.currency,
          orderDate: '',
          testMode: null,
          source: 'manual',
          duplicate: false,
          operations: [],
        } satisfies AssistOrderSummary);
  return {
    state: verdict.state,
    completedAt: now,
    continueUrl: null,
    error: paid ? null : humanErrorBody(verdict.note),
    ...(paid ? { amounts: amountsOfPaid(p) } : {}),
    ...(summary ? { assistOrder: summary } : {}),
  };
}
