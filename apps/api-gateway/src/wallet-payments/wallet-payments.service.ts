import { createHash, randomUUID } from 'node:crypto';

import { Inject, Injectable } from '@nestjs/common';
import { Counter } from 'prom-client';

import { AssistValidationError, buildTokenPayFields, toOrderAmount, type TokenPayOutcome, type TokenPayRequest } from '@payorch/assist-tokenpay';
import type { GatewayConfig } from '@payorch/config';
import { type Database, Prisma, type TransactionClient } from '@payorch/db';
import { ApiError, canonicalJson, notFound, type TenantContext } from '@payorch/domain';
import { guardedFetch } from '@payorch/egress-guard';
import type { Logger, Registry } from '@payorch/logging';
import type { WalletPaymentState } from '@payorch/prisma';
import {
  bodyPathOf,
  changeOfOutcome,
  createAssistClient,
  insertWalletPayment,
  isFinalState,
  type PaymentChange,
  transitionWalletPayment,
} from '@payorch/wallet-payments';

import { AssistMerchantsService, type OpenedAssistMerchant } from '../assist-merchants/assist-merchants.service';
import { audit } from '../common/audit';
import { DestinationGuard } from '../common/destination.guard';
import { keyset, type Page, toPage } from '../common/pagination';
import { DATABASE, GATEWAY_CONFIG, LOGGER } from '../common/tokens';
import { METRICS_REGISTRY } from '../health/health.controller';
import {
  type CreateWalletPaymentDto,
  type ListWalletPaymentsQuery,
  toWalletPaymentResponse,
  type WalletPaymentResponse,
  type WalletPaymentRow,
} from './dto/wallet-payment.dto';
import { WalletPaymentsQueue } from './wallet-payments.queue';

const TOKEN_TYPE_CODES = { APPLE_PAY: 1, GOOGLE_PAY: 2, SAMSUNG_PAY: 3 } as const;

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

/**
 * Wallet payments through Assist TokenPay. A payment row exists (PENDING, then PROCESSING) before
 * anything is sent; the outcome is stored as it comes; a lost or untrusted answer is UNKNOWN and
 * gets a resolution job, never a second charge. Tokens and full PANs are never stored or logged.
 */
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
    const merchant = await this.db.withTenant(ctx, (tx) => this.merchants.open(tx, ctx, dto.merchantId));
    const request = this.validatedRequest(merchant, dto, orderNumber);

    const inserted = await this.insert(ctx, { id, orderNumber, idempotencyKey, requestHash, dto });
    if (!inserted) {
      // Lost a race with the same key: answer like a retry.
      const replay = await this.findByKey(ctx, idempotencyKey, requestHash);
      if (replay) return replay;
      throw new ApiError('CONFLICT', `orderNumber "${orderNumber}" was already used with this merchant; Assist order numbers are never reused`);
    }
    await this.apply(ctx, id, ['PENDING'], { state: 'PROCESSING', error: null, completedAt: null });

    const client = createAssistClient(merchant, merchant.secrets, {
      timeoutMs: this.config.ASSIST_TIMEOUT_MS,
      // The merchant's server URL is tenant data: every request obeys the platform egress policy.
      fetch: guardedFetch({ policy: this.destinations.policy, allowHttp: true, timeoutMs: this.config.ASSIST_TIMEOUT_MS, maxResponseBytes: 8 * 1024 * 1024 }),
      onIntegrityFailure: (error, context) => {
        this.integrityFailures.inc({ endpoint: context.endpoint });
        this.logger.error(
          { alert: 'assist_integrity_failure', code: error.code, endpoint: context.endpoint, paymentId: id, tenantId: ctx.tenantId },
          'Assist answer failed its integrity check and was not trusted',
        );
      },
    });
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

    const row = await this.apply(ctx, id, ['PROCESSING'], changeOfOutcome(outcome));
    this.logger.info({ paymentId: id, tenantId: ctx.tenantId, state: row.state, outcome: outcome.status, requestId: ctx.requestId }, 'wallet payment sent');
    if (!isFinalState(row.state)) await this.queue.enqueueResolve(ctx.tenantId, id);
    return toWalletPaymentResponse(row);
  }

  get(ctx: TenantContext, id: string): Promise<WalletPaymentResponse> {
    return this.db.withTenant(ctx, async (tx) => {
      const row = await tx.walletPayment.findUnique({ where: { id } });
      if (!row) throw notFound('wallet payment', id);
      return toWalletPaymentResponse(row);
    });
  }

  list(ctx: TenantContext, query: ListWalletPaymentsQuery): Promise<Page<WalletPaymentResponse>> {
    return this.db.withTenant(ctx, async (tx) => {
      const { where, ...page } = keyset(query);
      const filters = {
        ...(query.state ? { state: query.state } : {}),
        ...(query.merchantId ? { merchantId: query.merchantId } : {}),
        ...(query.tokenType ? { tokenType: query.tokenType } : {}),
        ...(query.orderNumber ? { orderNumber: query.orderNumber } : {}),
      };
      const rows = await tx.walletPayment.findMany({ where: { AND: [where, filters] }, ...page });
      return toPage(rows, query, toWalletPaymentResponse);
    });
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
   * job — got there first, and the row is returned as it stands.
   */
  private apply(ctx: TenantContext, id: string, from: WalletPaymentState[], change: PaymentChange): Promise<WalletPaymentRow> {
    return this.db.withTenant(ctx, async (tx: TransactionClient) => {
      const written = await transitionWalletPayment(tx, { paymentId: id, from, change });
      if (written) return written.row;
      const row = await tx.walletPayment.findUnique({ where: { id } });
      if (!row) throw notFound('wallet payment', id);
      return row;
    });
  }
}
