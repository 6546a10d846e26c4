import { Body, Controller, Delete, Get, HttpCode, Param, Patch, Post } from '@nestjs/common';
import { ApiBearerAuth, ApiBody, ApiHeader, ApiOperation, ApiResponse, ApiTags } from '@nestjs/swagger';

import type { TenantContext } from '@payorch/domain';

import { RequireScopes } from '../common/auth.guard';
import { ApiErrors, IDEMPOTENCY_HEADER, pageSchema, ValidQuery } from '../common/openapi';
import { paginationQuery, type PaginationQuery } from '../common/pagination';
import { Tenant } from '../common/tenant.decorator';
import { openApi, uuidParam, ZodPipe } from '../common/zod';
import { type CreateStoreDto, createStoreSchema, storeResponseSchema, type UpdateStoreDto, updateStoreSchema } from './dto/store.dto';
import { StoresService } from './stores.service';

@ApiTags('stores')
@ApiBearerAuth()
@Controller('v1/stores')
export class StoresController {
  constructor(private readonly service: StoresService) {}

  @Post()
  @RequireScopes('stores:write')
  @ApiOperation({ summary: 'Create a store' })
  @ApiHeader(IDEMPOTENCY_HEADER)
  @ApiBody({ schema: openApi(createStoreSchema) })
  @ApiResponse({ status: 201, schema: openApi(storeResponseSchema) })
  @ApiErrors('CONFLICT')
  create(@Tenant() ctx: TenantContext, @Body(new ZodPipe(createStoreSchema)) dto: CreateStoreDto) {
    return this.service.create(ctx, dto);
  }

  @Get()
  @RequireScopes('stores:read')
  @ApiOperation({ summary: 'List stores (newest first, cursor pagination)' })
  @ApiResponse({ status: 200, schema: pageSchema(storeResponseSchema) })
  list(@Tenant() ctx: TenantContext, @ValidQuery(paginationQuery) query: PaginationQuery) {
    return this.service.list(ctx, query);
  }

  @Get(':id')
  @RequireScopes('stores:read')
  @ApiResponse({ status: 200, schema: openApi(storeResponseSchema) })
  @ApiOperation({ summary: 'Get a store' })
  get(@Tenant() ctx: TenantContext, @Param('id', new ZodPipe(uuidParam)) id: string) {
    return this.service.get(ctx, id);
  }

  @Patch(':id')
  @RequireScopes('stores:write')
  @ApiHeader(IDEMPOTENCY_HEADER)
  @ApiBody({ schema: openApi(updateStoreSchema) })
  @ApiResponse({ status: 200, schema: openApi(storeResponseSchema) })
  @ApiErrors('CONFLICT')
  @ApiOperation({ summary: 'Change a store' })
  update(@Tenant() ctx: TenantContext, @Param('id', new ZodPipe(uuidParam)) id: string, @Body(new ZodPipe(updateStoreSchema)) dto: UpdateStoreDto) {
    return this.service.update(ctx, id, dto);
  }

  @Delete(':id')
  @HttpCode(204)
  @RequireScopes('stores:write')
  @ApiHeader(IDEMPOTENCY_HEADER)
  @ApiErrors('RESOURCE_IN_USE')
  @ApiOperation({ summary: 'Delete a store that nothing references' })
  remove(@Tenant() ctx: TenantContext, @Param('id', new ZodPipe(uuidParam)) id: string) {
    return this.service.remove(ctx, id);
  }
}
