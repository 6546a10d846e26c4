import { Body, Controller, Delete, Get, HttpCode, Param, Patch, Post } from '@nestjs/common';
import { ApiBearerAuth, ApiBody, ApiHeader, ApiOperation, ApiResponse, ApiTags } from '@nestjs/swagger';

import type { TenantContext } from '@payorch/domain';

import { RequireScopes, SettingsRoutes } from '../common/auth.guard';
import { ApiErrors, IDEMPOTENCY_HEADER, pageSchema, ValidQuery } from '../common/openapi';
import { paginationQuery, type PaginationQuery } from '../common/pagination';
import { Tenant } from '../common/tenant.decorator';
import { openApi, uuidParam, ZodPipe } from '../common/zod';
import { AssistMerchantsService } from './assist-merchants.service';
import {
  assistMerchantResponseSchema,
  type CreateAssistMerchantDto,
  createAssistMerchantSchema,
  type UpdateAssistMerchantDto,
  updateAssistMerchantSchema,
} from './dto/assist-merchant.dto';

@ApiTags('assist-merchants')
@ApiBearerAuth()
@SettingsRoutes()
@Controller('v1/assist-merchants')
export class AssistMerchantsController {
  constructor(private readonly service: AssistMerchantsService) {}

  @Post()
  @RequireScopes('wallet:write')
  @ApiOperation({ summary: 'Add Assist merchant settings (secrets are write-only and encrypted at rest)' })
  @ApiHeader(IDEMPOTENCY_HEADER)
  @ApiBody({ schema: openApi(createAssistMerchantSchema) })
  @ApiResponse({ status: 201, schema: openApi(assistMerchantResponseSchema) })
  @ApiErrors('ASSIST_MERCHANT_DUPLICATE', 'EGRESS_DENIED')
  create(@Tenant() ctx: TenantContext, @Body(new ZodPipe(createAssistMerchantSchema)) dto: CreateAssistMerchantDto) {
    return this.service.create(ctx, dto);
  }

  @Get()
  @RequireScopes('wallet:read')
  @ApiOperation({ summary: 'List Assist merchant settings (newest first, cursor pagination)' })
  @ApiResponse({ status: 200, schema: pageSchema(assistMerchantResponseSchema) })
  list(@Tenant() ctx: TenantContext, @ValidQuery(paginationQuery) query: PaginationQuery) {
    return this.service.list(ctx, query);
  }

  @Get(':id')
  @RequireScopes('wallet:read')
  @ApiResponse({ status: 200, schema: openApi(assistMerchantResponseSchema) })
  @ApiOperation({ summary: 'Get Assist merchant settings (secrets are never returned)' })
  get(@Tenant() ctx: TenantContext, @Param('id', new ZodPipe(uuidParam)) id: string) {
    return this.service.get(ctx, id);
  }

  @Patch(':id')
  @RequireScopes('wallet:write')
  @ApiOperation({ summary: 'Change settings; secrets given are re-sealed, the others kept' })
  @ApiHeader(IDEMPOTENCY_HEADER)
  @ApiBody({ schema: openApi(updateAssistMerchantSchema) })
  @ApiResponse({ status: 200, schema: openApi(assistMerchantResponseSchema) })
  @ApiErrors('ASSIST_MERCHANT_DUPLICATE', 'EGRESS_DENIED')
  update(
    @Tenant() ctx: TenantContext,
    @Param('id', new ZodPipe(uuidParam)) id: string,
    @Body(new ZodPipe(updateAssistMerchantSchema)) dto: UpdateAssistMerchantDto,
  ) {
    return this.service.update(ctx, id, dto);
  }

  @Delete(':id')
  @HttpCode(204)
  @RequireScopes('wallet:write')
  @ApiOperation({ summary: 'Delete settings (409 RESOURCE_IN_USE while payments reference them)' })
  @ApiHeader(IDEMPOTENCY_HEADER)
  @ApiErrors('RESOURCE_IN_USE')
  remove(@Tenant() ctx: TenantContext, @Param('id', new ZodPipe(uuidParam)) id: string) {
    return this.service.remove(ctx, id);
  }
}
