import { Body, Controller, Get, Headers, Param, Post, Query } from '@nestjs/common';
import { ApiBearerAuth, ApiBody, ApiHeader, ApiOperation, ApiResponse, ApiTags } from '@nestjs/swagger';

import type { TenantContext } from '@payorch/domain';

import { RequireScopes } from '../common/auth.guard';
import { IDEMPOTENCY_HEADER, pageSchema } from '../common/openapi';
import { Tenant } from '../common/tenant.decorator';
import { openApi, uuidParam, ZodPipe } from '../common/zod';
import {
  type CreateWalletPaymentDto,
  createWalletPaymentSchema,
  type ListWalletPaymentsQuery,
  listWalletPaymentsQuery,
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
  list(@Tenant() ctx: TenantContext, @Query(new ZodPipe(listWalletPaymentsQuery)) query: ListWalletPaymentsQuery) {
    return this.service.list(ctx, query);
  }

  @Get(':id')
  @RequireScopes('wallet:read')
  @ApiResponse({ status: 200, schema: openApi(walletPaymentResponseSchema) })
  get(@Tenant() ctx: TenantContext, @Param('id', new ZodPipe(uuidParam)) id: string) {
    return this.service.get(ctx, id);
  }
}
