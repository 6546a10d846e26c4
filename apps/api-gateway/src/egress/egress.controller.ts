import { Body, Controller, Delete, Get, HttpCode, Param, Patch, Post } from '@nestjs/common';
import { ApiBearerAuth, ApiBody, ApiHeader, ApiOperation, ApiResponse, ApiTags } from '@nestjs/swagger';

import type { TenantContext } from '@payorch/domain';

import { RequireScopes } from '../common/auth.guard';
import { ApiErrors, IDEMPOTENCY_HEADER, pageSchema, ValidQuery } from '../common/openapi';
import { paginationQuery, type PaginationQuery } from '../common/pagination';
import { Tenant } from '../common/tenant.decorator';
import { openApi, uuidParam, ZodPipe } from '../common/zod';
import {
  type CreateEgressRuleDto,
  createEgressRuleSchema,
  egressRuleResponseSchema,
  type UpdateEgressRuleDto,
  updateEgressRuleSchema,
} from './dto/egress-rule.dto';
import { EgressService } from './egress.service';

@ApiTags('egress-rules')
@ApiBearerAuth()
@Controller('v1/egress-rules')
export class EgressController {
  constructor(private readonly service: EgressService) {}

  @Post()
  @RequireScopes('egress:write')
  @ApiOperation({ summary: 'Allow Joinproto relay traffic to a host or CIDR on one port' })
  @ApiHeader(IDEMPOTENCY_HEADER)
  @ApiBody({ schema: openApi(createEgressRuleSchema) })
  @ApiResponse({ status: 201, schema: openApi(egressRuleResponseSchema) })
  @ApiErrors('CONFLICT', 'EGRESS_DENIED')
  create(@Tenant() ctx: TenantContext, @Body(new ZodPipe(createEgressRuleSchema)) dto: CreateEgressRuleDto) {
    return this.service.create(ctx, dto);
  }

  @Get()
  @RequireScopes('egress:read')
  @ApiOperation({ summary: 'List egress rules (newest first, cursor pagination)' })
  @ApiResponse({ status: 200, schema: pageSchema(egressRuleResponseSchema) })
  list(@Tenant() ctx: TenantContext, @ValidQuery(paginationQuery) query: PaginationQuery) {
    return this.service.list(ctx, query);
  }

  @Get(':id')
  @RequireScopes('egress:read')
  @ApiResponse({ status: 200, schema: openApi(egressRuleResponseSchema) })
  @ApiOperation({ summary: 'Get an egress rule' })
  get(@Tenant() ctx: TenantContext, @Param('id', new ZodPipe(uuidParam)) id: string) {
    return this.service.get(ctx, id);
  }

  @Patch(':id')
  @RequireScopes('egress:write')
  @ApiHeader(IDEMPOTENCY_HEADER)
  @ApiBody({ schema: openApi(updateEgressRuleSchema) })
  @ApiResponse({ status: 200, schema: openApi(egressRuleResponseSchema) })
  @ApiErrors('CONFLICT', 'EGRESS_DENIED')
  @ApiOperation({ summary: 'Change an egress rule' })
  update(@Tenant() ctx: TenantContext, @Param('id', new ZodPipe(uuidParam)) id: string, @Body(new ZodPipe(updateEgressRuleSchema)) dto: UpdateEgressRuleDto) {
    return this.service.update(ctx, id, dto);
  }

  @Delete(':id')
  @HttpCode(204)
  @RequireScopes('egress:write')
  @ApiHeader(IDEMPOTENCY_HEADER)
  @ApiErrors('RESOURCE_IN_USE')
  @ApiOperation({ summary: 'Delete an egress rule' })
  remove(@Tenant() ctx: TenantContext, @Param('id', new ZodPipe(uuidParam)) id: string) {
    return this.service.remove(ctx, id);
  }
}
