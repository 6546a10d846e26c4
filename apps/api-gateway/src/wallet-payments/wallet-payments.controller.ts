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
  @ApiOperation({ summary: 'List wallet payments (newest first, cursor pagination; filters state, merchantId, tokenType, orderNumber)' })
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

  @Get(':id')
  @RequireScopes('wallet:read')
  @ApiResponse({ status: 200, schema: openApi(walletPaymentResponseSchema) })
  @ApiOperation({ summary: 'Get a wallet payment with its operations' })
  get(@Tenant() ctx: TenantContext, @Param('id', new ZodPipe(uuidParam)) id: string) {
    return this.service.get(ctx, id);
  }
}
