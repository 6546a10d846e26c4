import { createHash, randomUUID } from 'node:crypto';

import { Inject, Injectable } from '@nestjs/common';
import { Counter } from 'prom-client';

import {
  type AfterPaymentOutcome,
  AssistValidationError,
  buildTokenPayFields,
  type DuplicateOutcome,
  toOrderAmount,
  type TokenPayOutcome,
  type TokenPayRequest,
} from '@payorch/assist-tokenpay';
import type { GatewayConfig } from '@payorch/config';
import { type Database, Prisma, type TransactionClient } from '@payorch/db';
import { ApiError, canonicalJson, notFound, type TenantContext } from '@payorch/domain';
import { guardedFetch } from '@payorch/egress-guard';
import type { Logger, Registry } from '@payorch/logging';
import type { WalletOperationKind, WalletPaymentState } from '@payorch/prisma';
import {
  type AssistOrderSummary,
  bodyPathOf,
  changeOfOutcome,
  changeOfRefusal,
  claimsOnOrder,
  createAssistClient,
  type HumanPaymentVerdict,
  insertWalletOperation,
  insertWalletPayment,
  isFinalState,
  operationClaims,
  paidState,
  type PaymentChange,
  resolveWalletOperationByHand,
  resolveWalletPaymentByHand,
  settlementOfOperation,
  settleWalletOperation,
  transitionWalletPayment,
} from '@payorch/wallet-payments';

import { AssistMerchantsService, type OpenedAssistMerchant } from '../assist-merchants/assist-merchants.service';
import { audit } from '../common/audit';
import { DestinationGuard } from '../common/destination.guard';
import { KEYSET_ORDER, keysetPage, type Page } from '../common/pagination';
import { DATABASE, GATEWAY_CONFIG, LOGGER } from '../common/tokens';
import { METRICS_REGISTRY } from '../health/health.controller';
import {
  type CreateWalletPaymentDto,
  type ListWalletPaymentsQuery,
  type ResolveWalletOperationDto,
  type ResolveWalletPaymentDto,
  type WalletOperationDto,
  toWalletPaymentResponse,
  walletOperationKind,
  walletPaymentState,
  type WalletPaymentResponse,
  type WalletPaymentRow,
} from './dto/wallet-payment.dto';
import { WalletPaymentsQueue } from './wallet-payments.queue';

const TOKEN_TYPE_CODES = { APPLE_PAY: 1, GOOGLE_PAY: 2, SAMSUNG_PAY: 3 } as const;

/** 409 for a resolution by hand of something no longer UNKNOWN (the job, or another person, decided first). */
const notUnknown = (code: 'WALLET_PAYMENT_NOT_UNKNOWN' | 'WALLET_OPERATION_NOT_UNKNOWN', what: string, state: string) =>
  new ApiError(code, `${what} is ${state.toLowerCase()}; only an unknown one is resolved by hand`, { state: state.toLowerCase() });

const orderNumberTaken = (orderNumber: string) =>
  new ApiError('CONFLICT', `orderNumber "${orderNumber}" was already used with this Assist merchant account; Assist order numbers are never reused`);

/** AssistValidationError → 400 naming the caller's body field (and the spec's parameter). */
function validationFailed(error: AssistValidationError): ApiError {
  const issues = error.issues.map((i) => ({ field: bodyPathOf(i.field), code: i.code, message: i.message, assistField: i.field }));
  return new ApiError('VALIDATION_FAILED', `invalid body: ${issues.map((i) => `${i.field}: ${i.message}`).join('; ')}`, { issues });
}

/** Minor units → Assist's decimal string, reporting a failure against `specField`. */
function decimal(minor: number, currency: string, specField: string): string {
  try {
    return toOrderAmount(minor, currency);
  } catch (error) {
    if (error instanceof AssistValidationError) {
      throw new AssistValidationError(error.issues.map((i) => ({ ...i, field: i.field === 'OrderCurrency' ? i.field : specField })));
    }
    throw error;
  }
}

interface LockedPayment {
  id: string;
  state: WalletPaymentState;
  twoStage: boolean;
  amount: bigint;
  currency: string;
  orderNumber: string;
  merchantId: string;
  assistOrder: unknown;
  authorizedAmount: bigint;
  capturedAmount: bigint;
  releasedAmount: bigint;
  refundedAmount: bigint;
}

/**
 * What a capture or cancel of `payment` means and for how much, or the 409 / 422 that refuses it:
 * capture takes (part of) the authorised remainder of a two-stage payment; cancel releases the authorised
 * remainder while there is one, otherwise refunds (part of) what was captured.
 */
export function planOperation(
  p: Pick<LockedPayment, 'state' | 'twoStage' | 'authorizedAmount' | 'capturedAmount' | 'releasedAmount' | 'refundedAmount'>,
  action: 'capture' | 'cancel',
  requested: number | undefined,
): { kind: WalletOperationKind; amount: bigint } {
  const remainder = p.authorizedAmount - p.capturedAmount - p.releasedAmount;
  const refundable = p.capturedAmount - p.refundedAmount;
  if (p.state === 'CANCELED' || p.state === 'REFUNDED') {
    throw new ApiError('WALLET_PAYMENT_ALREADY_CANCELED', `the payment is ${p.state}; nothing is left to ${action}`, { state: p.state });
  }
  const take = (limit: bigint, code: 'WALLET_AMOUNT_EXCEEDS_AUTHORIZED' | 'WALLET_AMOUNT_EXCEEDS_CAPTURED', what: string) => {
    const amount = requested === undefined ? limit : BigInt(requested);
    if (amount > limit) throw new ApiError(code, `amount ${amount} exceeds ${what} (${limit})`, { amount: Number(amount), available: Number(limit) });
    return amount;
  };
  if (action === 'capture') {
    if (!p.twoStage)
      throw new ApiError('WALLET_PAYMENT_ONE_STAGE', 'a one-stage payment is captured when it is paid; only two-stage payments (twoStage: true) are captured');
    if ((p.state !== 'AUTHORIZED' && p.state !== 'PARTIALLY_CAPTURED') || remainder <= 0n) {
      throw new ApiError('WALLET_PAYMENT_NOT_CAPTURABLE', `the payment is ${p.state} with no authorised remainder to capture`, { state: p.state });
    }
    return { kind: 'CAPTURE', amount: take(remainder, 'WALLET_AMOUNT_EXCEEDS_AUTHORIZED', 'the authorised remainder') };
  }
  if ((p.state === 'AUTHORIZED' || p.state === 'PARTIALLY_CAPTURED') && remainder > 0n) {
    return { kind: 'CANCEL_AUTHORIZATION', amount: take(remainder, 'WALLET_AMOUNT_EXCEEDS_AUTHORIZED', 'the authorised remainder') };
  }
  if ((p.state === 'APPROVED' || p.state === 'PARTIALLY_REFUNDED') && refundable > 0n) {
    return { kind: 'REFUND', amount: take(refundable, 'WALLET_AMOUNT_EXCEEDS_CAPTURED', 'the captured amount not yet refunded') };
  }
  throw new ApiError('WALLET_PAYMENT_NOT_CANCELABLE', `the payment is ${p.state}; only authorised or paid payments are cancelled`, { state: p.state });
}

/**
 * Wallet payments through Assist TokenPay. A payment row exists (PENDING, then PROCESSING) before
 * anything is sent; the outcome is stored as it comes; a lost or untrusted answer is UNKNOWN and
 * gets a resolution job, never a second charge. Tokens and full PANs are never stored or logged.
 */
/** Reads of a payment with its operations see one snapshot (read-only, so no serialisation failures). */
const ONE_SNAPSHOT = { isolationLevel: 'RepeatableRead' } as const;

@Injectable()
export class WalletPaymentsService {
  private readonly integrityFailures: Counter<'endpoint'>;

  constructor(
    @Inject(DATABASE) private readonly db: Database,
    @Inject(GATEWAY_CONFIG) private readonly config: GatewayConfig,
    @Inject(LOGGER) private readonly logger: Logger,
    @Inject(METRICS_REGISTRY) registry: Registry,
    private readonly merchants: AssistMerchantsService,
    private readonly queue: WalletPaymentsQueue,
    private readonly destinations: DestinationGuard,
  ) {
    this.integrityFailures = new Counter({
      name: 'payorch_assist_integrity_failures_total',
      help: 'Assist answers rejected for a bad/missing checkvalue or for describing another order (alert on any).',
      labelNames: ['endpoint'] as const,
      registers: [registry],
    });
  }

  async create(ctx: TenantContext, idempotencyKey: string, dto: CreateWalletPaymentDto): Promise<WalletPaymentResponse> {
    const requestHash = createHash('sha256').update(canonicalJson(dto)).digest('hex');
    const earlier = await this.findByKey(ctx, idempotencyKey, requestHash);
    if (earlier) return earlier;

    const id = randomUUID();
    const orderNumber = dto.orderNumber ?? id;
    // Settings the migration kept only for their old payments (a second row of one Assist account) take no new ones.
    const merchant = await this.db.withTenant(ctx, (tx) => this.merchants.open(tx, ctx, dto.merchantId, { forNewPayment: true }));
    const request = this.validatedRequest(merchant, dto, orderNumber);

    const inserted = await this.insert(ctx, { id, orderNumber, idempotencyKey, requestHash, dto });
    if (!inserted) {
      // Lost a race with the same key: answer like a retry.
      const replay = await this.findByKey(ctx, idempotencyKey, requestHash);
      if (replay) return replay;
      throw orderNumberTaken(orderNumber);
    }
    const started = await this.apply(ctx, id, ['PENDING'], { state: 'PROCESSING', error: null, completedAt: null });
    if (!started.written) {
      // The resolution job moved the PENDING payment first (e.g. REJECTED, ORDER_NOT_FOUND: nothing reached Assist).
      // Sending now would charge a payment already reported as not paid: answer with what is stored instead.
      this.logger.warn(
        { paymentId: id, tenantId: ctx.tenantId, state: started.row.state, requestId: ctx.requestId },
        'wallet payment not sent: it left PENDING first',
      );
      if (!isFinalState(started.row.state)) await this.queue.enqueueResolve(ctx.tenantId, id);
      return toWalletPaymentResponse(started.row);
    }

    const client = this.client(ctx, merchant, id);
    let outcome: TokenPayOutcome;
    try {
      outcome = await client.pay(request);
    } catch (error) {
      // Not a wire problem (those are outcomes): nothing was sent for a validation error; for
      // anything else the resolution job finds out what happened.
      if (error instanceof AssistValidationError) {
        await this.apply(ctx, id, ['PROCESSING'], {
          state: 'REJECTED',
          completedAt: new Date(),
          error: { source: 'payorch', code: 'VALIDATION_FAILED', message: error.message, firstCode: null, secondCode: null, field: null },
        });
        throw validationFailed(error);
      }
      await this.queue.enqueueResolve(ctx.tenantId, id);
      throw error;
    }

    const change =
      outcome.status === 'duplicate'
        ? await this.changeOfRefusal(ctx, id, merchant, outcome)
        : changeOfOutcome(outcome, new Date(), { amount: BigInt(dto.amount), currency: dto.currency, twoStage: dto.twoStage === true });
    const { row } = await this.apply(ctx, id, ['PROCESSING'], change);
    this.logger.info({ paymentId: id, tenantId: ctx.tenantId, state: row.state, outcome: outcome.status, requestId: ctx.requestId }, 'wallet payment sent');
    if (!isFinalState(row.state)) await this.queue.enqueueResolve(ctx.tenantId, id);
    return toWalletPaymentResponse(row);
  }

  /**
   * `POST /v1/wallet-payments/{id}/capture` (`capture`) and `…/cancel` (`cancel`): checks the amounts under the
   * payment's row lock, stores the operation PENDING (one open operation per payment), sends it to Assist once,
   * and records what came back. A lost or untrusted answer leaves the operation UNKNOWN for the resolution job,
   * which reads orderstate and never sends it again.
   */
  async operate(
    ctx: TenantContext,
    idempotencyKey: string,
    paymentId: string,
    action: 'capture' | 'cancel',
    dto: WalletOperationDto,
  ): Promise<WalletPaymentResponse> {
    // Stored on the operation like a payment's: the gateway's idempotency record lasts 24 h, the operation for ever.
    const requestHash = createHash('sha256')
      .update(canonicalJson({ action, paymentId, amount: dto.amount ?? null }))
      .digest('hex');
    const planned = await this.db.withTenant(ctx, async (tx) => {
      const earlier = await tx.walletPaymentOperation.findUnique({ where: { tenantId_idempotencyKey: { tenantId: ctx.tenantId, idempotencyKey } } });
      if (earlier) {
        // Operations stored before requestHash existed have none: their payment is all there is to compare.
        if (earlier.paymentId !== paymentId || (earlier.requestHash !== null && earlier.requestHash !== requestHash)) {
          throw new ApiError(
            'IDEMPOTENCY_KEY_REUSED',
            `Idempotency-Key "${idempotencyKey}" was already used for another wallet payment operation or with a different body`,
            { operationId: earlier.id },
          );
        }
        return null;
      }
      const [payment] = await tx.$queryRaw<LockedPayment[]>`
        SELECT "id", "state", "twoStage", "amount", "currency", "orderNumber", "merchantId", "assistOrder",
               "authorizedAmount", "capturedAmount", "releasedAmount", "refundedAmount"
        FROM "WalletPayment" WHERE "id" = ${paymentId}::uuid FOR UPDATE`;
      if (!payment) throw notFound('wallet payment', paymentId);
      const open = await tx.walletPaymentOperation.findFirst({ where: { paymentId, state: { in: ['PENDING', 'UNKNOWN'] } } });
      if (open) {
        throw new ApiError(
          'WALLET_OPERATION_IN_PROGRESS',
          `operation ${open.id} (${open.kind}) of this payment is still ${open.state}; retry when it is resolved`,
          {
            operationId: open.id,
          },
        );
      }
      const { kind, amount } = planOperation(payment, action, dto.amount);
      const billNumber = (payment.assistOrder as AssistOrderSummary | null)?.billNumber;
      if (!billNumber) throw new ApiError('WALLET_PAYMENT_NOT_CAPTURABLE', 'Assist gave this payment no billnumber; it cannot be operated on');
      // The records the payment's other operations hold, by billnumber or settled without one (operation-claims.ts).
      const others = await tx.walletPaymentOperation.findMany({
        where: { paymentId },
        select: { id: true, kind: true, amount: true, state: true, assistBillNumber: true, sentAt: true, createdAt: true, completedAt: true },
      });
      const operation = await insertWalletOperation(tx, {
        id: randomUUID(),
        tenantId: ctx.tenantId,
        paymentId,
        kind,
        amount,
        currency: payment.currency,
        idempotencyKey,
        requestHash,
      });
      await audit(tx, ctx, {
        action: `wallet_payment.${action}`,
        resourceType: 'wallet_payment',
        resourceId: paymentId,
        details: { operationId: operation.id, kind, amount: amount.toString() },
      });
      const merchant = await this.merchants.open(tx, ctx, payment.merchantId);
      return { payment, operation, billNumber, merchant, claims: operationClaims(others, operation, billNumber) };
    });
    if (!planned) return this.get(ctx, paymentId);

    const { payment, operation, billNumber, merchant } = planned;
    const client = this.client(ctx, merchant, paymentId);
    const request = {
      billNumber,
      orderNumber: payment.orderNumber,
      orderAmount: toOrderAmount(payment.amount, payment.currency),
      amount: toOrderAmount(operation.amount, payment.currency),
      currency: payment.currency,
      sentAt: operation.sentAt ?? operation.createdAt,
      knownBillNumbers: planned.claims.knownBillNumbers,
      unnamedClaims: planned.claims.unnamedClaims,
    };
    let outcome: AfterPaymentOutcome;
    try {
      outcome = operation.kind === 'CAPTURE' ? await client.charge(request) : await client.cancel(request);
    } catch (error) {
      if (error instanceof AssistValidationError) {
        // Refused before sending: nothing reached Assist.
        await this.db.withTenant(ctx, (tx) =>
          settleWalletOperation(tx, {
            operationId: operation.id,
            from: ['PENDING'],
            to: 'FAILED',
            error: { source: 'payorch', code: 'VALIDATION_FAILED', message: error.message, firstCode: null, secondCode: null, field: null },
          }),
        );
        throw validationFailed(error);
      }
      // Not a wire problem (those are outcomes): the resolution job finds out whether it was sent.
      await this.queue.enqueueResolve(ctx.tenantId, paymentId);
      throw error;
    }
    await this.db.withTenant(ctx, (tx) =>
      settleWalletOperation(tx, { operationId: operation.id, from: ['PENDING', 'UNKNOWN'], ...settlementOfOperation(outcome) }),
    );
    this.logger.info(
      { paymentId, operationId: operation.id, kind: operation.kind, outcome: outcome.status, tenantId: ctx.tenantId, requestId: ctx.requestId },
      'wallet payment operation sent',
    );
    const stillOpen = outcome.status === 'unknown' || outcome.status === 'in_process' || outcome.status === 'not_proven';
    if (stillOpen) await this.queue.enqueueResolve(ctx.tenantId, paymentId);
    return this.get(ctx, paymentId);
  }

  /**
   * `POST /v1/wallet-payments/{id}/resolve`: a person's verdict on a payment the system cannot resolve (UNKNOWN, e.g.
   * ORDER_NOT_PROVEN), after reading the order in Assist's back office. Only from UNKNOWN, under the payment's row lock
   * and through the state's owner (`resolveWalletPaymentByHand`: a compare-and-set from UNKNOWN), so the resolution job
   * and a person never both decide; audited (`wallet_payment.resolve`) in the same transaction. The audit row keeps the
   * Idempotency-Key and a hash of the request: a repeat of the same request answers the payment as it is now, also
   * after the gateway's 24 h record is gone; the same key with another verdict is IDEMPOTENCY_KEY_REUSED.
   */
  async resolve(ctx: TenantContext, idempotencyKey: string, paymentId: string, dto: ResolveWalletPaymentDto): Promise<WalletPaymentResponse> {
    const requestHash = createHash('sha256')
      .update(canonicalJson({ action: 'resolve', paymentId, state: dto.state, note: dto.note, billNumber: dto.billNumber ?? null }))
      .digest('hex');
    const state = walletPaymentState.toDb(dto.state) as HumanPaymentVerdict;
    const decided = await this.db.withTenant(ctx, async (tx) => {
      const [payment] = await tx.$queryRaw<Array<WalletPaymentRow & { assistMerchantId: string }>>`
        SELECT p.*, m."merchantId" AS "assistMerchantId"
        FROM "WalletPayment" p JOIN "AssistMerchant" m ON m."id" = p."merchantId"
        WHERE p."id" = ${paymentId}::uuid FOR UPDATE OF p`;
      if (!payment) throw notFound('wallet payment', paymentId);
      if (payment.state !== 'UNKNOWN') {
        if (await this.resolvedBefore(tx, 'wallet_payment.resolve', paymentId, idempotencyKey, requestHash)) return false;
        throw notUnknown('WALLET_PAYMENT_NOT_UNKNOWN', `wallet payment ${paymentId}`, payment.state);
      }
      if ((state === 'APPROVED' || state === 'AUTHORIZED') && state !== paidState(payment.twoStage)) {
        throw new ApiError(
          'WALLET_RESOLUTION_STATE_MISMATCH',
          `a ${payment.twoStage ? 'two' : 'one'}-stage payment that was paid is ${walletPaymentState.toApi(paidState(payment.twoStage))}, not ${dto.state}`,
          { state: dto.state, twoStage: payment.twoStage },
        );
      }
      if (dto.billNumber !== undefined) {
        // The billnumber Assist named to this payment's own request is its order (ownership.ts): a person cannot name another.
        const own = payment.assistOrder as Partial<AssistOrderSummary> | null;
        if (own && own.duplicate !== true && own.billNumber && own.billNumber !== dto.billNumber) {
          throw new ApiError('CONFLICT', `Assist named billnumber ${own.billNumber} in its answer to this payment's request, not ${dto.billNumber}`, {
            billNumber: own.billNumber,
          });
        }
        // Any order number: the billnumber a person gives may be a neighbouring payment's order (another number), whose
        // customer this payment's later cancel or refund would then pay. Until 2026-12-07 only payments of this payment's
        // own order number were asked.
        const holder = (await claimsOnOrder(tx, payment, payment.assistMerchantId, dto.billNumber, { anyOrderNumber: true })).payment;
        if (holder !== null) {
          throw new ApiError('CONFLICT', `the order with billnumber ${dto.billNumber} is wallet payment ${holder}'s`, { paymentId: holder });
        }
      }
      const written = await resolveWalletPaymentByHand(tx, {
        payment,
        state,
        note: dto.note,
        ...(dto.billNumber !== undefined ? { billNumber: dto.billNumber } : {}),
        actor: ctx.actor,
      });
      if (!written) throw notUnknown('WALLET_PAYMENT_NOT_UNKNOWN', `wallet payment ${paymentId}`, payment.state);
      await audit(tx, ctx, {
        action: 'wallet_payment.resolve',
        resourceType: 'wallet_payment',
        resourceId: paymentId,
        details: {
          state: dto.state,
          note: dto.note,
          ...(dto.billNumber !== undefined && { billNumber: dto.billNumber }),
          previousErrorCode: (payment.error as { code?: string } | null)?.code ?? null,
          idempotencyKey,
          requestHash,
        },
      });
      return true;
    });
    if (decided) {
      this.logger.warn(
        { paymentId, tenantId: ctx.tenantId, state: dto.state, actorType: ctx.actor.type, actorId: ctx.actor.id, requestId: ctx.requestId },
        'wallet payment resolved by hand',
      );
    }
    return this.get(ctx, paymentId);
  }

  /**
   * `POST /v1/wallet-payments/{id}/operations/{operationId}/resolve`: a person's verdict on a capture / cancel / refund
   * left UNKNOWN, through the resolution job's own path (`resolveWalletOperationByHand` → `settleWalletOperation`, a
   * compare-and-set from UNKNOWN), so a succeeded one moves the payment's amounts and state exactly as an orderstate
   * answer would. Audited (`wallet_payment.resolve_operation`); idempotent like {@link resolve}.
   */
  async resolveOperation(
    ctx: TenantContext,
    idempotencyKey: string,
    paymentId: string,
    operationId: string,
    dto: ResolveWalletOperationDto,
  ): Promise<WalletPaymentResponse> {
    const requestHash = createHash('sha256')
      .update(canonicalJson({ action: 'resolve_operation', paymentId, operationId, state: dto.state, note: dto.note, billNumber: dto.billNumber ?? null }))
      .digest('hex');
    const decided = await this.db.withTenant(ctx, async (tx) => {
      // No lock taken here: settleWalletOperation locks the operation, then the payment, in the job's order.
      const payment = await tx.walletPayment.findUnique({ where: { id: paymentId }, include: { operations: true } });
      const operation = payment?.operations.find((op) => op.id === operationId);
      if (!payment) throw notFound('wallet payment', paymentId);
      if (!operation) throw notFound('wallet payment operation', operationId);
      if (operation.state !== 'UNKNOWN') {
        if (await this.resolvedBefore(tx, 'wallet_payment.resolve_operation', paymentId, idempotencyKey, requestHash)) return false;
        throw notUnknown('WALLET_OPERATION_NOT_UNKNOWN', `wallet payment operation ${operationId}`, operation.state);
      }
      if (dto.billNumber !== undefined) this.checkOperationBillNumber(payment, operation, dto.billNumber);
      const written = await resolveWalletOperationByHand(tx, {
        operationId,
        state: dto.state === 'succeeded' ? 'SUCCEEDED' : 'FAILED',
        note: dto.note,
        ...(dto.billNumber !== undefined ? { billNumber: dto.billNumber } : {}),
        actor: ctx.actor,
      });
      if (!written) {
        const now = await tx.walletPaymentOperation.findUniqueOrThrow({ where: { id: operationId } });
        throw notUnknown('WALLET_OPERATION_NOT_UNKNOWN', `wallet payment operation ${operationId}`, now.state);
      }
      await audit(tx, ctx, {
        action: 'wallet_payment.resolve_operation',
        resourceType: 'wallet_payment',
        resourceId: paymentId,
        details: {
          operationId,
          kind: walletOperationKind.toApi(operation.kind),
          amount: operation.amount.toString(),
          state: dto.state,
          note: dto.note,
          ...(dto.billNumber !== undefined && { billNumber: dto.billNumber }),
          previousErrorCode: (operation.error as { code?: string } | null)?.code ?? null,
          idempotencyKey,
          requestHash,
        },
      });
      return true;
    });
    if (decided) {
      this.logger.warn(
        { paymentId, operationId, tenantId: ctx.tenantId, state: dto.state, actorType: ctx.actor.type, actorId: ctx.actor.id, requestId: ctx.requestId },
        'wallet payment operation resolved by hand',
      );
    }
    return this.get(ctx, paymentId);
  }

  /**
   * An operation's billnumber is the payment order's followed by `.<n>`; never the payment's own (`.1`, the payment
   * itself) nor another operation's. Anything else is a billnumber copied from the wrong row of the back office.
   */
  private checkOperationBillNumber(
    payment: { assistOrder: unknown; operations: Array<{ id: string; assistBillNumber: string | null }> },
    operation: { id: string; assistBillNumber: string | null },
    billNumber: string,
  ): void {
    const conflict = (message: string, details: Record<string, unknown>) => new ApiError('CONFLICT', message, details);
    if (operation.assistBillNumber !== null && operation.assistBillNumber !== billNumber) {
      throw conflict(`Assist named billnumber ${operation.assistBillNumber} for this operation, not ${billNumber}`, { billNumber: operation.assistBillNumber });
    }
    const order = (payment.assistOrder as Partial<AssistOrderSummary> | null)?.billNumber;
    if (order && (!billNumber.startsWith(`${order}.`) || billNumber === `${order}.1`)) {
      throw conflict(`billnumber ${billNumber} is not an operation of this payment's order ${order}`, { orderBillNumber: order });
    }
    const other = payment.operations.find((o) => o.id !== operation.id && o.assistBillNumber === billNumber);
    if (other) throw conflict(`billnumber ${billNumber} is operation ${other.id}'s`, { operationId: other.id });
  }

  /**
   * Whether this key already resolved the payment (or one of its operations): its audit row, the durable record of the
   * verdict. Same request → true (answer the payment as it is); another request → IDEMPOTENCY_KEY_REUSED.
   */
  private async resolvedBefore(tx: TransactionClient, action: string, paymentId: string, idempotencyKey: string, requestHash: string): Promise<boolean> {
    const earlier = await tx.auditLog.findFirst({
      where: { resourceType: 'wallet_payment', resourceId: paymentId, action, details: { path: ['idempotencyKey'], equals: idempotencyKey } },
      select: { details: true },
    });
    if (!earlier) return false;
    if ((earlier.details as { requestHash?: unknown } | null)?.requestHash !== requestHash) {
      throw new ApiError('IDEMPOTENCY_KEY_REUSED', `Idempotency-Key "${idempotencyKey}" already resolved this payment with a different body`, { paymentId });
    }
    return true;
  }

  /**
   * Assist refused the request as a duplicate: the order it holds under the number is somebody else's unless proven
   * (libs/wallet-payments ownership.ts) — never this payment's outcome. REJECTED (ORDER_NUMBER_TAKEN) when proven
   * another's, else UNKNOWN (ORDER_NOT_PROVEN) for a human.
   */
  private async changeOfRefusal(ctx: TenantContext, id: string, merchant: OpenedAssistMerchant, outcome: DuplicateOutcome): Promise<PaymentChange> {
    const { change, verdict } = await this.db.withTenant(ctx, async (tx) => {
      const row = await tx.walletPayment.findUniqueOrThrow({ where: { id } });
      const existing = outcome.existing;
      const billNumber = existing.status === 'not_found' || existing.status === 'unknown' ? '' : existing.order.billNumber;
      return changeOfRefusal(outcome, row, await claimsOnOrder(tx, row, merchant.merchantId, billNumber));
    });
    const level = change.state === 'REJECTED' ? 'warn' : 'error';
    this.logger[level](
      { alert: 'assist_order_number_reused', paymentId: id, tenantId: ctx.tenantId, state: change.state, reason: verdict?.reason, requestId: ctx.requestId },
      'Assist refused the wallet payment as a duplicate order number; the order under that number was not taken as its outcome',
    );
    return change;
  }

  private client(ctx: TenantContext, merchant: OpenedAssistMerchant, paymentId: string) {
    return createAssistClient(merchant, merchant.secrets, {
      timeoutMs: this.config.ASSIST_TIMEOUT_MS,
      // The merchant's server URL is tenant data: every request obeys the platform egress policy.
      // EGRESS_ALLOW_CIDRS plus the operator's Assist grants to this tenant, read before each request.
      fetch: guardedFetch({
        policy: () => this.destinations.policyFor(ctx, 'assist'),
        owner: ctx.tenantId,
        allowHttp: true,
        timeoutMs: this.config.ASSIST_TIMEOUT_MS,
        maxResponseBytes: 8 * 1024 * 1024,
      }),
      onIntegrityFailure: (error, context) => {
        this.integrityFailures.inc({ endpoint: context.endpoint });
        this.logger.error(
          { alert: 'assist_integrity_failure', code: error.code, endpoint: context.endpoint, paymentId, tenantId: ctx.tenantId },
          'Assist answer failed its integrity check and was not trusted',
        );
      },
    });
  }

  get(ctx: TenantContext, id: string): Promise<WalletPaymentResponse> {
    // The payment and its operations are two statements: one snapshot, so a settled operation is never shown
    // beside the amounts from before it (READ COMMITTED would read each statement's own snapshot).
    return this.db.withTenant(
      ctx,
      async (tx) => {
        const row = await tx.walletPayment.findUnique({ where: { id }, include: { operations: { orderBy: { createdAt: 'asc' } } } });
        if (!row) throw notFound('wallet payment', id);
        return toWalletPaymentResponse(row);
      },
      ONE_SNAPSHOT,
    );
  }

  list(ctx: TenantContext, query: ListWalletPaymentsQuery): Promise<Page<WalletPaymentResponse>> {
    return this.db.withTenant(
      ctx,
      async (tx) => {
        const filters = {
          state: query.state,
          merchantId: query.merchantId,
          tokenType: query.tokenType,
          orderNumber: query.orderNumber,
          // What needs a person: `state=unknown&errorCode=ORDER_NOT_PROVEN`, `errorCode=OPERATION_NOT_PROVEN`,
          // `operationState=unknown` (docs/wallet-payments.md). The code of the payment or of one of its operations.
          'id:errorCode':
            query.errorCode === undefined
              ? undefined
              : {
                  in: Prisma.sql`SELECT "id" FROM "WalletPayment" WHERE "error"->>'code' = ${query.errorCode}
                    UNION ALL SELECT "paymentId" FROM "WalletPaymentOperation" WHERE "error"->>'code' = ${query.errorCode}`,
                },
          'id:operationState':
            query.operationState === undefined
              ? undefined
              : { in: Prisma.sql`SELECT "paymentId" FROM "WalletPaymentOperation" WHERE "state" = ${query.operationState}::"WalletOperationState"` },
        };
        return keysetPage(
          tx,
          'WalletPayment',
          filters,
          query,
          (ids) => tx.walletPayment.findMany({ where: { id: { in: ids } }, orderBy: KEYSET_ORDER, include: { operations: { orderBy: { createdAt: 'asc' } } } }),
          toWalletPaymentResponse,
        );
      },
      ONE_SNAPSHOT,
    );
  }

  /** The payment an earlier request with this key created (same body), or 409 for a different body. */
  private findByKey(ctx: TenantContext, idempotencyKey: string, requestHash: string): Promise<WalletPaymentResponse | null> {
    return this.db.withTenant(ctx, async (tx) => {
      const row = await tx.walletPayment.findUnique({ where: { tenantId_idempotencyKey: { tenantId: ctx.tenantId, idempotencyKey } } });
      if (!row) return null;
      if (row.requestHash !== requestHash) {
        throw new ApiError(
          'IDEMPOTENCY_KEY_REUSED',
          `Idempotency-Key "${idempotencyKey}" was already used for wallet payment ${row.id} with a different body`,
          { paymentId: row.id },
        );
      }
      return toWalletPaymentResponse(row);
    });
  }

  /** Spec-rule validation before anything is stored or sent. */
  private validatedRequest(merchant: OpenedAssistMerchant, dto: CreateWalletPaymentDto, orderNumber: string): TokenPayRequest {
    try {
      const c = dto.customer;
      const request = {
        orderNumber,
        orderAmount: decimal(dto.amount, dto.currency, 'OrderAmount'),
        orderCurrency: dto.currency,
        orderComment: dto.orderComment,
        delay: dto.twoStage === undefined ? undefined : dto.twoStage ? 1 : 0,
        language: dto.language,
        clientIp: dto.clientIp,
        tokenType: TOKEN_TYPE_CODES[dto.tokenType],
        paymentToken: typeof dto.token === 'string' ? dto.token : JSON.stringify(dto.token),
        lastname: c.lastname,
        firstname: c.firstname,
        middlename: c.middlename,
        email: c.email,
        address: c.address,
        homePhone: c.homePhone,
        workPhone: c.workPhone,
        mobilePhone: c.mobilePhone,
        fax: c.fax,
        country: c.country,
        state: c.state,
        city: c.city,
        zip: c.zip,
        isConvert: dto.isConvert,
        ...(dto.recurring
          ? {
              recurringIndicator: 1,
              recurringMinAmount: decimal(dto.recurring.minAmount, dto.currency, 'RecurringMinAmount'),
              recurringMaxAmount: decimal(dto.recurring.maxAmount, dto.currency, 'RecurringMaxAmount'),
              recurringPeriod: dto.recurring.periodDays,
              recurringMaxDate: dto.recurring.maxDate,
            }
          : {}),
        chequeItems: dto.chequeItems?.map((item, i) => ({
          product: item.product,
          name: item.name,
          price: decimal(item.price, dto.currency, `ChequeItems[${i}].price`),
          quantity: item.quantity,
          amount: decimal(item.amount, dto.currency, `ChequeItems[${i}].amount`),
          tax: item.tax,
          fpmode: item.fpMode,
        })),
        generateReceipt: dto.generateReceipt === undefined ? undefined : dto.generateReceipt ? 1 : 0,
        tax: dto.tax,
        receiptLine: dto.receiptLine,
        fpMode: dto.fpMode,
        taxationSystem: dto.taxationSystem,
      } as TokenPayRequest;
      // Types above are the body's; the spec's value rules are checked here, all at once.
      buildTokenPayFields({ merchantId: merchant.merchantId, login: merchant.secrets.login, password: merchant.secrets.password }, request);
      return request;
    } catch (error) {
      if (error instanceof AssistValidationError) throw validationFailed(error);
      throw error;
    }
  }

  /** PENDING row + `wallet_payment.created`; null when the idempotency key or order number is taken. */
  private async insert(
    ctx: TenantContext,
    p: { id: string; orderNumber: string; idempotencyKey: string; requestHash: string; dto: CreateWalletPaymentDto },
  ): Promise<WalletPaymentRow | null> {
    try {
      return await this.db.withTenant(ctx, async (tx) => {
        // The order number's namespace is the Assist account, not this settings row: another row of the account (one
        // the migration kept for its old payments) may have used it. Those rows take no new payments, so no race.
        const [taken] = await tx.$queryRaw<Array<{ id: string }>>`
          SELECT p."id" FROM "WalletPayment" p
          JOIN "AssistMerchant" m ON m."id" = p."merchantId"
          JOIN "AssistMerchant" mine ON mine."id" = ${p.dto.merchantId}::uuid
          WHERE p."orderNumber" = ${p.orderNumber} AND m."id" <> mine."id"
            AND payorch_assist_account(m."serverUrl", m."merchantId") = payorch_assist_account(mine."serverUrl", mine."merchantId")
          LIMIT 1`;
        if (taken) throw orderNumberTaken(p.orderNumber);
        const { row } = await insertWalletPayment(tx, {
          id: p.id,
          tenantId: ctx.tenantId,
          merchantId: p.dto.merchantId,
          orderNumber: p.orderNumber,
          amount: BigInt(p.dto.amount),
          currency: p.dto.currency,
          tokenType: p.dto.tokenType,
          customer: p.dto.customer as Prisma.InputJsonValue,
          idempotencyKey: p.idempotencyKey,
          requestHash: p.requestHash,
          twoStage: p.dto.twoStage === true,
        });
        await audit(tx, ctx, {
          action: 'wallet_payment.create',
          resourceType: 'wallet_payment',
          resourceId: row.id,
          details: { merchantId: p.dto.merchantId, tokenType: p.dto.tokenType },
        });
        return row;
      });
    } catch (error) {
      if (error instanceof Prisma.PrismaClientKnownRequestError && error.code === 'P2002') return null;
      throw error;
    }
  }

  /**
   * Moves the payment to `change.state` through the owner (`transitionWalletPayment`: one compare-and-set
   * and `wallet_payment.updated`) if it is still in one of `from`; otherwise another writer — the resolution
   * job — got there first, and the row is returned as it stands with `written: false`.
   */
  private apply(ctx: TenantContext, id: string, from: WalletPaymentState[], change: PaymentChange): Promise<{ row: WalletPaymentRow; written: boolean }> {
    return this.db.withTenant(ctx, async (tx: TransactionClient) => {
      const written = await transitionWalletPayment(tx, { paymentId: id, from, change });
      if (written) return { row: written.row, written: true };
      const row = await tx.walletPayment.findUnique({ where: { id } });
      if (!row) throw notFound('wallet payment', id);
      return { row, written: false };
    });
  }
}
