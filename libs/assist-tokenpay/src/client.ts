/**
 * Assist TokenPay client: pays a wallet token through `/pay/tokenpay.cfm` and resolves orders
 * through `/orderstate/orderstate.cfm` (assist-notes.md).
 *
 * Money-safety rules:
 * - A lost or unreadable answer (timeout, network error, HTTP error, malformed body) yields
 *   `status: 'unknown'`, never a failure: the payment may have gone through.
 * - The payment request is never re-sent automatically. OrderNumber is Assist's idempotency key;
 *   a "duplicate object" answer (firstcode 11) refused THIS request: the existing order is read and handed
 *   over (`status: 'duplicate'`), never adopted as this request's outcome — it may be another payment's.
 * - Only the read-only order-state request is retried.
 * - An answer failing checkvalue or describing another order is never trusted: `unknown` plus
 *   `onIntegrityFailure` (alert).
 */
import { setTimeout as sleep } from 'node:timers/promises';
import { sameAmount } from './amount';
import { AMBIGUOUS_FIRST_CODES, DUPLICATE_FIRST_CODE, NOT_FOUND_FIRST_CODE } from './codes';
import type { OrderState } from './enums';
import { AssistIntegrityError, AssistProtocolError, AssistServerError, AssistTransportError } from './errors';
import {
  CANCEL_PATH,
  CHARGE_PATH,
  findOperation,
  OPERATION_TYPE_OF_KIND,
  operationResultOf,
  type AfterPaymentKind,
  type AfterPaymentRequest,
  type OperationMatch,
  type OperationResult,
} from './operations';
import { buildTokenPayFields, checkCredentials, type MerchantCredentials, type TokenPayRequest } from './request';
import {
  parseOrderStateResponse,
  parseTokenPayResponse,
  type AnswerSignatureVerifier,
  type AssistAnswer,
  type AssistOperation,
  type AssistOrder,
} from './response';
import { signatureBaseString, type Signer } from './signature';
import { postForm, type FetchLike } from './transport';
import { IssueCollector } from './validate';

export const TOKENPAY_PATH = '/pay/tokenpay.cfm';
export const ORDERSTATE_PATH = '/orderstate/orderstate.cfm';

export interface AssistClientOptions extends MerchantCredentials {
  /** `https://<SERVER_NAME>` from Assist support; plain http is allowed for loopback (the sandbox) only. */
  readonly baseUrl: string;
  /** The merchant's secret word for checkvalue. */
  readonly salt: string;
  /** Signs `Merchant_ID;OrderNumber;OrderAmount;OrderCurrency`; see createRsaMd5Signer. Omit if the merchant does not sign. */
  readonly signer?: Signer;
  /**
   * Checks the answers' `signature` (spec: "для типа PGP – значение X, подписанное закрытым ключом АПК Ассист").
   * When set, every order in every answer must carry a valid one, on top of its checkvalue.
   */
  readonly answerVerifier?: AnswerSignatureVerifier;
  /** Deadline for the payment request (default 60 000 ms). */
  readonly timeoutMs?: number;
  /** Deadline for one order-state request (default 15 000 ms). */
  readonly orderStateTimeoutMs?: number;
  /** Order-state attempts on transport failures (default 3). */
  readonly orderStateAttempts?: number;
  /** Pause before order-state retry n is n × this (default 500 ms). */
  readonly retryDelayMs?: number;
  /** Answers larger than this are refused (default 1 MiB). */
  readonly maxResponseBytes?: number;
  readonly extendedTokenTypes?: boolean;
  /** Injectable fetch (defaults to the global one). */
  readonly fetch?: FetchLike;
  /** Called for every answer that fails its integrity checks: raise an alert. Must not throw. */
  readonly onIntegrityFailure?: (error: AssistIntegrityError, context: IntegrityContext) => void;
}

export interface IntegrityContext {
  readonly endpoint: typeof TOKENPAY_PATH | typeof ORDERSTATE_PATH | typeof CHARGE_PATH | typeof CANCEL_PATH;
  readonly orderNumber: string;
}

/** Our name for each orderstate of the spec table. */
export const ORDER_STATUS_BY_STATE = {
  'In Process': 'in_process',
  Delayed: 'authorized',
  Approved: 'approved',
  PartialApproved: 'partially_approved',
  PartialDelayed: 'partially_charged',
  Canceled: 'canceled',
  PartialCanceled: 'partially_canceled',
  Declined: 'declined',
  Timeout: 'timed_out',
} as const satisfies Record<OrderState, string>;
export type OrderStatus = (typeof ORDER_STATUS_BY_STATE)[OrderState];

/** Assist returned an order (verified). */
export interface OrderOutcome {
  readonly status: OrderStatus;
  readonly orderNumber: string;
  readonly order: AssistOrder;
  /** Surfaced from the order: `true` means TEST MODE, ship nothing. */
  readonly testMode: boolean | undefined;
  readonly source: 'tokenpay' | 'orderstate';
}

/** Non-tokenized Google Pay card: send the payer to `continueUrl` (CVC2 / 3-D Secure), then resolve. */
export interface RequiresActionOutcome {
  readonly status: 'requires_action';
  readonly orderNumber: string;
  readonly order: AssistOrder;
  readonly continueUrl: string;
  readonly testMode: boolean | undefined;
}

/** Assist refused the request (a definitive firstcode): nothing was charged. */
export interface RejectedOutcome {
  readonly status: 'rejected';
  readonly orderNumber: string;
  readonly error: AssistServerError;
}

/**
 * Assist refused the request because an order with this OrderNumber already exists (firstcode 11): this request
 * created no order and charged nothing. The existing order is read and handed over, but it is NOT this request's
 * outcome: it belongs to whoever created it — an earlier request of the caller's (then the caller can prove it,
 * e.g. by the billnumber Assist gave that request), or somebody else using the same number at the same Assist
 * merchant account. Adopting it unproven reports a payment approved that moved no money.
 */
export interface DuplicateOutcome {
  readonly status: 'duplicate';
  readonly orderNumber: string;
  /** Assist's refusal (firstcode 11, `DUPLICATE_OBJECT`). */
  readonly error: AssistServerError;
  /**
   * The existing order as orderstate shows it: checkvalue (and signature) and order number verified, amount and
   * currency NOT compared (a different amount is evidence the order is not the caller's); or `not_found` / `unknown`.
   */
  readonly existing: OrderResolution;
}

/** The payment may or may not have happened. Resolve later with `resolveOrder`. */
export interface UnknownOutcome {
  readonly status: 'unknown';
  readonly orderNumber: string;
  readonly error: AssistTransportError | AssistProtocolError | AssistIntegrityError | AssistServerError;
}

/** The order-state service does not know the order (10 / 201, {@link isOrderNotFound}). */
export interface NotFoundOutcome {
  readonly status: 'not_found';
  readonly orderNumber: string;
}

export type TokenPayOutcome = OrderOutcome | RequiresActionOutcome | RejectedOutcome | DuplicateOutcome | UnknownOutcome;
export type OrderResolution = OrderOutcome | NotFoundOutcome | UnknownOutcome;
export type PaymentStatus = TokenPayOutcome['status'] | OrderResolution['status'];

/** Statuses after which the payment still needs resolving (poll `resolveOrder`). `duplicate` is the caller's to judge. */
export function isPending(status: PaymentStatus): boolean {
  return status === 'in_process' || status === 'requires_action' || status === 'unknown';
}

/** Optional expectations checked against a resolved order. */
export interface ExpectedOrder {
  readonly orderAmount?: string;
  readonly orderCurrency?: string;
  /**
   * The order's billnumber as Assist named it to the caller's own request: an answer showing another order under the
   * same number (one the caller did not make) is not trusted. Operation billnumbers (`….2`) name their order's.
   */
  readonly billNumber?: string;
}

type WireFailure = AssistTransportError | AssistProtocolError | AssistIntegrityError;

/** A capture or cancel whose operation Assist reports (verified answer, operation matched). */
export interface OperationOutcome {
  readonly status: OperationResult;
  readonly orderNumber: string;
  readonly order: AssistOrder;
  readonly operation: AssistOperation;
  readonly source: 'charge' | 'cancel' | 'orderstate';
}

/** Assist refused the capture / cancel (a definitive firstcode): no money moved. */
export interface OperationRejectedOutcome {
  readonly status: 'rejected';
  readonly orderNumber: string;
  readonly error: AssistServerError;
}

/**
 * orderstate has no operation matching ours: it never reached Assist (after a grace period). Only from an answer that
 * lists the order's operations, every one like ours readable (`findOperation` → `none`), or that says the order does
 * not exist (10 / 201: `order` undefined — the caller knows better when Assist named the order before).
 */
export interface OperationNotFoundOutcome {
  readonly status: 'not_found';
  readonly orderNumber: string;
  /** The verified order, when Assist knows the order (it lists no operation like ours). */
  readonly order: AssistOrder | undefined;
}

/**
 * The verified order lists operations like ours, but one of our operations settled without naming its record may stand
 * for them (`unnamedClaims`), and which one is free cannot be told (`findOperation`): whether ours is among them is not
 * known. Never a conclusion — a person decides, naming the billnumber.
 */
export interface OperationNotProvenOutcome {
  readonly status: 'not_proven';
  readonly orderNumber: string;
  readonly order: AssistOrder;
  /** The records in doubt. */
  readonly billNumbers: readonly string[];
}

export type AfterPaymentOutcome = OperationOutcome | OperationRejectedOutcome | OperationNotProvenOutcome | UnknownOutcome;
export type OperationResolution = OperationOutcome | OperationNotFoundOutcome | OperationNotProvenOutcome | UnknownOutcome;

/** Second code "Объект Заказ" (spec, second-code table): with firstcode 10 "Отсутствие объекта", the order is unknown. */
export const ORDER_OBJECT_SECOND_CODE = 201;

/**
 * Does the answer say the ORDER does not exist? Only 10 / 201. Firstcode 10 names the missing object by its second
 * code: 200 "Объект Предприятие" is the Merchant_ID (the sandbox answers it for an unknown one: settings changed, an
 * account moved), 216 an operation, 221 a user… — none of which says anything about the order. Any firstcode 10 used to
 * read as "no such order": with a wrong Merchant_ID every lookup was "not found", and past the grace period payments
 * were rejected and captures / refunds failed although Assist had carried them out.
 */
export function isOrderNotFound(error: AssistServerError): boolean {
  return error.firstCode === NOT_FOUND_FIRST_CODE && error.secondCode === ORDER_OBJECT_SECOND_CODE;
}

export class AssistTokenPayClient {
  // ES private: credentials never show up in util.inspect or JSON.stringify of the client.
  readonly #o: Required<Omit<AssistClientOptions, 'signer' | 'onIntegrityFailure' | 'answerVerifier'>> &
    Pick<AssistClientOptions, 'signer' | 'onIntegrityFailure' | 'answerVerifier'>;

  constructor(options: AssistClientOptions) {
    const issues = new IssueCollector();
    checkCredentials(issues, options);
    if (!options.salt) issues.add('salt', 'REQUIRED', 'is required to verify checkvalue');
    checkBaseUrl(issues, options.baseUrl);
    issues.throwIfAny();
    this.#o = {
      merchantId: options.merchantId,
      login: options.login,
      password: options.password,
      salt: options.salt,
      baseUrl: options.baseUrl.replace(/\/+$/, ''),
      signer: options.signer,
      answerVerifier: options.answerVerifier,
      timeoutMs: options.timeoutMs ?? 60_000,
      orderStateTimeoutMs: options.orderStateTimeoutMs ?? 15_000,
      orderStateAttempts: options.orderStateAttempts ?? 3,
      retryDelayMs: options.retryDelayMs ?? 500,
      maxResponseBytes: options.maxResponseBytes ?? 1 << 20,
      extendedTokenTypes: options.extendedTokenTypes ?? false,
      fetch: options.fetch ?? ((url, init) => fetch(url, init)),
      onIntegrityFailure: options.onIntegrityFailure,
    };
  }

  /**
   * Pays one wallet token. Never throws for anything that happens on the wire; throws
   * {@link AssistValidationError} (nothing sent) when the request breaks a rule of the spec table.
   */
  async pay(request: TokenPayRequest): Promise<TokenPayOutcome> {
    const o = this.#o;
    const form = new URLSearchParams(buildTokenPayFields(o, request, { extendedTokenTypes: o.extendedTokenTypes }) as Array<[string, string]>);
    if (o.signer) {
      form.set(
        'Signature',
        await o.signer(
          signatureBaseString({
            merchantId: o.merchantId,
            orderNumber: request.orderNumber,
            orderAmount: request.orderAmount,
            orderCurrency: request.orderCurrency,
          }),
        ),
      );
    }
    const { orderNumber } = request;
    const expected = { orderAmount: request.orderAmount, orderCurrency: request.orderCurrency };

    let answer: AssistAnswer;
    try {
      const body = await postForm(o.baseUrl + TOKENPAY_PATH, form, this.#post(o.timeoutMs));
      answer = parseTokenPayResponse(body, this.#verifyContext());
    } catch (error) {
      if (error instanceof AssistIntegrityError) this.#alert(error, TOKENPAY_PATH, orderNumber);
      return unknown(orderNumber, error);
    }
    if (answer.kind !== 'error') {
      const mismatch = this.#checkSameOrder(answer.order, orderNumber, expected, TOKENPAY_PATH);
      if (mismatch) return mismatch;
    }

    switch (answer.kind) {
      case 'order':
        return orderOutcome(answer.order, 'tokenpay');
      case 'continue':
        return {
          status: 'requires_action',
          orderNumber,
          order: answer.order,
          continueUrl: answer.continueUrl,
          testMode: answer.order.testMode,
        };
      case 'error':
        return this.#onServerError(orderNumber, answer.error);
    }
  }

  /**
   * Reads an order's state (for the resolution job, after `unknown` / `in_process` /
   * `requires_action`). Never throws for wire problems; `not_found` means Assist has no such order (10 / 201 only:
   * another firstcode 10 names another missing object, e.g. the merchant, and is `unknown`).
   * Note: right after a lost request, `not_found` may precede the order's creation; wait at least
   * the payment timeout before concluding the payment never happened. The order is the one Assist holds under
   * this number: that the caller's own request created it (and not somebody else's using the same number at the
   * same merchant account) is for the caller to prove before treating it as its payment's outcome.
   */
  async resolveOrder(orderNumber: string, expected: ExpectedOrder = {}): Promise<OrderResolution> {
    let answer: Exclude<AssistAnswer, { kind: 'continue' }>;
    try {
      answer = await this.getOrderState(orderNumber);
    } catch (error) {
      return unknown(orderNumber, error);
    }
    if (answer.kind === 'order') {
      return this.#checkSameOrder(answer.order, orderNumber, expected, ORDERSTATE_PATH) ?? orderOutcome(answer.order, 'orderstate');
    }
    if (isOrderNotFound(answer.error)) return { status: 'not_found', orderNumber };
    return { status: 'unknown', orderNumber, error: answer.error };
  }

  /**
   * One verified order-state lookup, retrying transport failures. Lower level than
   * {@link resolveOrder}: throws AssistTransportError, AssistProtocolError or AssistIntegrityError.
   */
  async getOrderState(orderNumber: string): Promise<Exclude<AssistAnswer, { kind: 'continue' }>> {
    const o = this.#o;
    const issues = new IssueCollector();
    issues.text('OrderNumber', orderNumber, { required: true, max: 128 });
    issues.throwIfAny();
    const form = new URLSearchParams({
      Merchant_ID: o.merchantId,
      Login: o.login,
      Password: o.password,
      OrderNumber: orderNumber,
      Format: '5',
    });
    for (let attempt = 1; ; attempt++) {
      try {
        const body = await postForm(o.baseUrl + ORDERSTATE_PATH, form, this.#post(o.orderStateTimeoutMs));
        return parseOrderStateResponse(body, this.#verifyContext());
      } catch (error) {
        const retryable = error instanceof AssistTransportError && attempt < o.orderStateAttempts;
        if (!retryable) {
          if (error instanceof AssistIntegrityError) this.#alert(error, ORDERSTATE_PATH, orderNumber);
          throw error;
        }
        await sleep(o.retryDelayMs * attempt);
      }
    }
  }

  /**
   * Captures (part of) a two-stage payment: `/charge/charge.cfm`. Sent once, never retried; a lost or
   * untrusted answer is `unknown` — resolve it with {@link resolveOperation}, never by sending again.
   */
  charge(request: AfterPaymentRequest): Promise<AfterPaymentOutcome> {
    return this.#afterPayment('charge', request);
  }

  /** Releases an authorisation or cancels / refunds (part of) a charged order: `/cancel/wscancel.cfm`. Same rules as {@link charge}. */
  cancel(request: AfterPaymentRequest): Promise<AfterPaymentOutcome> {
    return this.#afterPayment('cancel', request);
  }

  /**
   * Finds out what became of a capture or cancel whose answer was lost: reads the order (read-only) and
   * matches our operation among the order's operations by type, amount, currency and time — or, once an
   * answer named it (`operationBillNumber`), by that billnumber. `not_found` only when the answer can show it missing
   * (see {@link OperationNotFoundOutcome}); an answer that cannot (no operation list, a record like ours of unreadable
   * date, a firstcode 10 about another object than the order) is `unknown`.
   */
  async resolveOperation(kind: AfterPaymentKind, request: AfterPaymentRequest): Promise<OperationResolution> {
    const { orderNumber } = request;
    let answer: Exclude<AssistAnswer, { kind: 'continue' }>;
    try {
      answer = await this.getOrderState(orderNumber);
    } catch (error) {
      return unknown(orderNumber, error);
    }
    if (answer.kind === 'error') {
      if (isOrderNotFound(answer.error)) return { status: 'not_found', orderNumber, order: undefined };
      return { status: 'unknown', orderNumber, error: answer.error };
    }
    const expected = { orderAmount: request.orderAmount, orderCurrency: request.currency, billNumber: request.billNumber };
    const mismatch = this.#checkSameOrder(answer.order, orderNumber, expected, ORDERSTATE_PATH);
    if (mismatch) return mismatch;
    const found = this.#match(kind, answer.order, request);
    if (found.kind === 'ambiguous') return undecided(kind, found, orderNumber, answer.order);
    if (found.kind === 'none') return { status: 'not_found', orderNumber, order: answer.order };
    const { operation } = found;
    return { status: operationResultOf(operation), orderNumber, order: answer.order, operation, source: 'orderstate' };
  }

  async #afterPayment(kind: AfterPaymentKind, request: AfterPaymentRequest): Promise<AfterPaymentOutcome> {
    const o = this.#o;
    const issues = new IssueCollector();
    issues.text('Billnumber', request.billNumber, { required: true, max: 64 });
    issues.amount('Amount', request.amount, true);
    issues.text('Currency', request.currency, { required: true, max: 3, charset: /^[A-Z]{3}$/, charsetText: 'three upper-case letters (ISO 4217)' });
    issues.throwIfAny();
    const path = kind === 'charge' ? CHARGE_PATH : CANCEL_PATH;
    const form = new URLSearchParams({
      Merchant_ID: o.merchantId,
      Login: o.login,
      Password: o.password,
      Billnumber: request.billNumber,
      Amount: request.amount,
      Currency: request.currency,
      Format: '5',
    });
    const { orderNumber } = request;
    let answer: Exclude<AssistAnswer, { kind: 'continue' }>;
    try {
      const body = await postForm(o.baseUrl + path, form, this.#post(o.timeoutMs));
      answer = parseOrderStateResponse(body, this.#verifyContext());
    } catch (error) {
      if (error instanceof AssistIntegrityError) this.#alert(error, path, orderNumber);
      return unknown(orderNumber, error);
    }
    if (answer.kind === 'error') {
      if (AMBIGUOUS_FIRST_CODES.has(answer.error.firstCode)) return { status: 'unknown', orderNumber, error: answer.error };
      return { status: 'rejected', orderNumber, error: answer.error };
    }
    const expected = { orderAmount: request.orderAmount, orderCurrency: request.currency, billNumber: request.billNumber };
    const mismatch = this.#checkSameOrder(answer.order, orderNumber, expected, path);
    if (mismatch) return mismatch;
    const found = this.#match(kind, answer.order, request, true);
    if (found.kind === 'ambiguous') return undecided(kind, found, orderNumber, answer.order);
    if (found.kind === 'none') {
      // A verified order that does not show our operation tells nothing about it: resolve later.
      return {
        status: 'unknown',
        orderNumber,
        error: new AssistProtocolError('MALFORMED_RESPONSE', `the answer lists no ${OPERATION_TYPE_OF_KIND[kind]} operation of this amount`),
      };
    }
    const { operation } = found;
    return { status: operationResultOf(operation), orderNumber, order: answer.order, operation, source: kind };
  }

  #match(kind: AfterPaymentKind, order: AssistOrder, request: AfterPaymentRequest, answersOurRequest = false): OperationMatch {
    return findOperation(order, {
      type: OPERATION_TYPE_OF_KIND[kind],
      amount: request.amount,
      currency: request.currency,
      notBefore: request.sentAt ?? new Date(),
      knownBillNumbers: request.knownBillNumbers,
      operationBillNumber: request.operationBillNumber,
      unnamedClaims: request.unnamedClaims,
      answersOurRequest,
    });
  }

  #verifyContext() {
    return { merchantId: this.#o.merchantId, salt: this.#o.salt, verifySignature: this.#o.answerVerifier };
  }

  async #onServerError(orderNumber: string, error: AssistServerError): Promise<TokenPayOutcome> {
    if (error.firstCode === DUPLICATE_FIRST_CODE) {
      // Read, never adopted: whose order it is, only the caller can prove. Without amount expectations: another
      // amount is not an integrity failure here but evidence that the order is somebody else's.
      return { status: 'duplicate', orderNumber, error, existing: await this.resolveOrder(orderNumber) };
    }
    if (AMBIGUOUS_FIRST_CODES.has(error.firstCode)) return { status: 'unknown', orderNumber, error };
    return { status: 'rejected', orderNumber, error };
  }

  /** An answer about another order (number, billnumber), amount or currency is as untrustworthy as a bad checkvalue. */
  #checkSameOrder(order: AssistOrder, orderNumber: string, expected: ExpectedOrder, endpoint: IntegrityContext['endpoint']): UnknownOutcome | undefined {
    const bill = expected.billNumber?.split('.')[0];
    const same =
      order.orderNumber === orderNumber &&
      (expected.orderAmount === undefined || sameAmount(order.amount, expected.orderAmount)) &&
      (expected.orderCurrency === undefined || order.currency === expected.orderCurrency) &&
      // An answer without a billnumber cannot show another one.
      (!bill || order.billNumber === '' || order.billNumber === bill);
    if (same) return undefined;
    const error = new AssistIntegrityError('ORDER_MISMATCH', 'answer describes a different order (number or billnumber), amount or currency');
    this.#alert(error, endpoint, orderNumber);
    return { status: 'unknown', orderNumber, error };
  }

  #alert(error: AssistIntegrityError, endpoint: IntegrityContext['endpoint'], orderNumber: string): void {
    try {
      this.#o.onIntegrityFailure?.(error, { endpoint, orderNumber });
    } catch {
      // An alert hook failing must not change the payment's outcome.
    }
  }

  #post(timeoutMs: number) {
    return { fetch: this.#o.fetch, timeoutMs, maxResponseBytes: this.#o.maxResponseBytes };
  }
}

function orderOutcome(order: AssistOrder, source: OrderOutcome['source']): OrderOutcome {
  return {
    status: ORDER_STATUS_BY_STATE[order.state],
    orderNumber: order.orderNumber,
    order,
    testMode: order.testMode,
    source,
  };
}

/**
 * `findOperation` cannot tell whether (or which) record is ours. Records one of our `unnamedClaims` may stand for:
 * `not_proven`, for a person naming the billnumber. An answer that cannot show ours (no operation list, a record like
 * ours of unreadable date): `unknown` — as unreadable as a malformed answer, resolved again, never "not found".
 */
function undecided(
  kind: AfterPaymentKind,
  found: Extract<OperationMatch, { kind: 'ambiguous' }>,
  orderNumber: string,
  order: AssistOrder,
): OperationNotProvenOutcome | UnknownOutcome {
  const type = OPERATION_TYPE_OF_KIND[kind];
  switch (found.cause) {
    case 'claims':
      return { status: 'not_proven', orderNumber, order, billNumbers: found.billNumbers };
    case 'unlisted':
      return {
        status: 'unknown',
        orderNumber,
        error: new AssistProtocolError('MALFORMED_RESPONSE', `the answer lists no operations of the order: whether the ${type} is among them cannot be told`),
      };
    case 'undated':
      return {
        status: 'unknown',
        orderNumber,
        error: new AssistProtocolError(
          'UNRECOGNIZED_VALUE',
          `the operationdate of ${found.billNumbers.join(', ')} (${type} of this amount) cannot be read: whether one of them is this ${type} cannot be told`,
        ),
      };
  }
}

/** Wire failures become `unknown`; anything else is a bug and propagates. */
function unknown(orderNumber: string, error: unknown): UnknownOutcome {
  const wireFailure = error instanceof AssistTransportError || error instanceof AssistProtocolError || error instanceof AssistIntegrityError;
  if (!wireFailure) throw error;
  return { status: 'unknown', orderNumber, error: error as WireFailure };
}

function checkBaseUrl(issues: IssueCollector, baseUrl: string): void {
  let url: URL;
  try {
    url = new URL(baseUrl);
  } catch {
    issues.add('baseUrl', 'INVALID_FORMAT', 'must be an absolute URL');
    return;
  }
  const loopback = ['127.0.0.1', 'localhost', '[::1]'].includes(url.hostname);
  if (url.protocol !== 'https:' && !(url.protocol === 'http:' && loopback)) {
    issues.add('baseUrl', 'INSECURE_URL', 'must use https (plain http only for a loopback sandbox)');
  }
}
