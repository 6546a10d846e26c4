import { Body, Controller, Get, Headers, HttpCode, Param, Post } from '@nestjs/common';
import { ApiBearerAuth, ApiBody, ApiHeader, ApiOperation, ApiResponse, ApiTags } from '@nestjs/swagger';

import type { TenantContext } from '@payorch/domain';

import { RequireScopes } from '../common/auth.guard';
import { ApiErrors, IDEMPOTENCY_HEADER, pageSchema, ValidQuery } from '../common/openapi';
import { Tenant } from '../common/tenant.decorator';
import { openApi, uuidParam, ZodPipe } from '../common/zod';
import {
  type CreateWalletPaymentDto,
  createWalletPaymentSchema,
  type ListWalletPaymentsQuery,
  listWalletPaymentsQuery,
  type ResolveWalletOperationDto,
  resolveWalletOperationSchema,
  type ResolveWalletPaymentDto,
  resolveWalletPaymentSchema,
  type WalletOperationDto,
  walletOperationSchema,
  walletPaymentResponseSchema,
} from './dto/wallet-payment.dto';
import { WalletPaymentsService } from './wallet-payments.service';

@ApiTags('wallet-payments')
@ApiBearerAuth()
@Controller('v1/wallet-payments')
export class WalletPaymentsController {
  constructor(private readonly service: WalletPaymentsService) {}

  @Post()
  @RequireScopes('wallet:write')
  @ApiOperation({
    summary: 'Pay an Apple Pay / Google Pay / Samsung Pay token through Assist',
    description:
      'Answers 201 with the payment in its state after Assist answered: APPROVED, AUTHORIZED, DECLINED, REQUIRES_ACTION (continueUrl), REJECTED (error with Assist codes), PROCESSING or UNKNOWN (resolved later by a job; never charged twice). See docs/wallet-payments.md.',
  })
  @ApiHeader(IDEMPOTENCY_HEADER)
  @ApiBody({ schema: openApi(createWalletPaymentSchema) })
  @ApiResponse({ status: 201, schema: openApi(walletPaymentResponseSchema) })
  @ApiErrors('CONFLICT', 'ASSIST_MERCHANT_DUPLICATE', 'EGRESS_DENIED')
  create(
    @Tenant() ctx: TenantContext,
    @Headers('idempotency-key') idempotencyKey: string,
    @Body(new ZodPipe(createWalletPaymentSchema)) dto: CreateWalletPaymentDto,
  ) {
    return this.service.create(ctx, idempotencyKey, dto);
  }

  @Get()
  @RequireScopes('wallet:read')
  @ApiOperation({
    summary: 'List wallet payments (newest first, cursor pagination; filters state, merchantId, tokenType, orderNumber, errorCode, operationState)',
    description:
      'Payments left to a person: `state=unknown&errorCode=ORDER_NOT_PROVEN` (and any `state=unknown` with a high `resolutionAttempts`), `operationState=unknown` (a capture / cancel / refund whose outcome is open). Resolve them with `POST …/resolve`.',
  })
  @ApiResponse({ status: 200, schema: pageSchema(walletPaymentResponseSchema) })
  list(@Tenant() ctx: TenantContext, @ValidQuery(listWalletPaymentsQuery) query: ListWalletPaymentsQuery) {
    return this.service.list(ctx, query);
  }

  @Post(':id/capture')
  @HttpCode(200)
  @RequireScopes('wallet:write')
  @ApiOperation({
    summary: 'Capture (part of) a two-stage payment (Assist charge.cfm)',
    description:
      'amount ≤ the authorised remainder (default: all of it). 409 WALLET_PAYMENT_ONE_STAGE, WALLET_PAYMENT_NOT_CAPTURABLE, WALLET_PAYMENT_ALREADY_CANCELED, WALLET_OPERATION_IN_PROGRESS; 422 WALLET_AMOUNT_EXCEEDS_AUTHORIZED. A lost answer leaves the operation UNKNOWN until orderstate resolves it; it is never sent twice.',
  })
  @ApiHeader(IDEMPOTENCY_HEADER)
  @ApiBody({ schema: openApi(walletOperationSchema) })
  @ApiResponse({ status: 200, schema: openApi(walletPaymentResponseSchema) })
  @ApiErrors(
    'WALLET_PAYMENT_ONE_STAGE',
    'WALLET_PAYMENT_NOT_CAPTURABLE',
    'WALLET_PAYMENT_ALREADY_CANCELED',
    'WALLET_OPERATION_IN_PROGRESS',
    'WALLET_AMOUNT_EXCEEDS_AUTHORIZED',
  )
  capture(
    @Tenant() ctx: TenantContext,
    @Headers('idempotency-key') idempotencyKey: string,
    @Param('id', new ZodPipe(uuidParam)) id: string,
    @Body(new ZodPipe(walletOperationSchema)) dto: WalletOperationDto,
  ) {
    return this.service.operate(ctx, idempotencyKey, id, 'capture', dto);
  }

  @Post(':id/cancel')
  @HttpCode(200)
  @RequireScopes('wallet:write')
  @ApiOperation({
    summary: 'Release the authorisation, or cancel / refund a paid payment, fully or partly (Assist wscancel.cfm)',
    description:
      'While an authorised remainder exists the cancel releases it (amount ≤ remainder), otherwise it refunds (amount ≤ captured − refunded). 409 WALLET_PAYMENT_ALREADY_CANCELED, WALLET_PAYMENT_NOT_CANCELABLE, WALLET_OPERATION_IN_PROGRESS; 422 WALLET_AMOUNT_EXCEEDS_AUTHORIZED, WALLET_AMOUNT_EXCEEDS_CAPTURED.',
  })
  @ApiHeader(IDEMPOTENCY_HEADER)
  @ApiBody({ schema: openApi(walletOperationSchema) })
  @ApiResponse({ status: 200, schema: openApi(walletPaymentResponseSchema) })
  @ApiErrors(
    'WALLET_PAYMENT_ALREADY_CANCELED',
    'WALLET_PAYMENT_NOT_CANCELABLE',
    'WALLET_OPERATION_IN_PROGRESS',
    'WALLET_AMOUNT_EXCEEDS_AUTHORIZED',
    'WALLET_AMOUNT_EXCEEDS_CAPTURED',
  )
  cancel(
    @Tenant() ctx: TenantContext,
    @Headers('idempotency-key') idempotencyKey: string,
    @Param('id', new ZodPipe(uuidParam)) id: string,
    @Body(new ZodPipe(walletOperationSchema)) dto: WalletOperationDto,
  ) {
    return this.service.operate(ctx, idempotencyKey, id, 'cancel', dto);
  }

  @Post(':id/resolve')
  @HttpCode(200)
  @RequireScopes('wallet:write')
  @ApiOperation({
    summary: 'Resolve an UNKNOWN wallet payment by hand (approved / authorized / declined / rejected)',
    description:
      'For a payment the system cannot resolve (e.g. `error.code` ORDER_NOT_PROVEN: the order Assist shows under its number is not provably its own), after reading the order in Assist\'s back office. Only from `unknown` (409 WALLET_PAYMENT_NOT_UNKNOWN otherwise, also when the resolution job decided first; it never overwrites the verdict afterwards). A paid payment is `approved` when one-stage, `authorized` when two-stage (422 WALLET_RESOLUTION_STATE_MISMATCH), with the amounts a paid order sets. `billNumber` becomes the payment\'s order (409 CONFLICT when Assist named another to this payment, or another payment holds it). Audited (`wallet_payment.resolve`, with the note); publishes `wallet_payment.updated` with `resolvedBy: "human"`, `note`, `billNumber`. Find candidates with `GET /v1/wallet-payments?state=unknown&errorCode=ORDER_NOT_PROVEN`.',
  })
  @ApiHeader(IDEMPOTENCY_HEADER)
  @ApiBody({ schema: openApi(resolveWalletPaymentSchema) })
  @ApiResponse({ status: 200, schema: openApi(walletPaymentResponseSchema) })
  @ApiErrors('WALLET_PAYMENT_NOT_UNKNOWN', 'WALLET_RESOLUTION_STATE_MISMATCH', 'CONFLICT')
  resolve(
    @Tenant() ctx: TenantContext,
    @Headers('idempotency-key') idempotencyKey: string,
    @Param('id', new ZodPipe(uuidParam)) id: string,
    @Body(new ZodPipe(resolveWalletPaymentSchema)) dto: ResolveWalletPaymentDto,
  ) {
    return this.service.resolve(ctx, idempotencyKey, id, dto);
  }

  @Post(':id/operations/:operationId/resolve')
  @HttpCode(200)
  @RequireScopes('wallet:write')
  @ApiOperation({
    summary: 'Resolve an UNKNOWN capture / cancel / refund by hand (succeeded / failed)',
    description:
      'For an operation whose outcome the job cannot read (e.g. every orderstate answer about it is untrusted, ORDER_MISMATCH), after finding it in Assist\'s back office. Only from `unknown` (409 WALLET_OPERATION_NOT_UNKNOWN otherwise). `succeeded` moves the payment\'s amounts and state exactly as the resolution job does (events `wallet_payment.captured`, `.partially_captured`, `.canceled`, `.partially_canceled`, `.refunded`, `.partially_refunded`); `failed` moves no money (`wallet_payment.operation_failed`). Events carry `resolvedBy: "human"`, `note`, `billNumber`; audited (`wallet_payment.resolve_operation`). Answers the payment. Find candidates with `GET /v1/wallet-payments?operationState=unknown`.',
  })
  @ApiHeader(IDEMPOTENCY_HEADER)
  @ApiBody({ schema: openApi(resolveWalletOperationSchema) })
  @ApiResponse({ status: 200, schema: openApi(walletPaymentResponseSchema) })
  @ApiErrors('WALLET_OPERATION_NOT_UNKNOWN', 'CONFLICT')
  resolveOperation(
    @Tenant() ctx: TenantContext,
    @Headers('idempotency-key') idempotencyKey: string,
    @Param('id', new ZodPipe(uuidParam)) id: string,
    @Param('operationId', new ZodPipe(uuidParam)) operationId: string,
    @Body(new ZodPipe(resolveWalletOperationSchema)) dto: ResolveWalletOperationDto,
  ) {
    return this.service.resolveOperation(ctx, idempotencyKey, id, operationId, dto);
  }

  @Get(':id')
  @RequireScopes('wallet:read')
  @ApiResponse({ status: 200, schema: openApi(walletPaymentResponseSchema) })
  @ApiOperation({ summary: 'Get a wallet payment with its operations' })
  get(@Tenant() ctx: TenantContext, @Param('id', new ZodPipe(uuidParam)) id: string) {
    return this.service.get(ctx, id);
  }
}
