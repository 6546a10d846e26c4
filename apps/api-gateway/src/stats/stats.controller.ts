import { Controller, Get } from '@nestjs/common';
import { ApiBearerAuth, ApiOperation, ApiResponse, ApiTags } from '@nestjs/swagger';

import type { TenantContext } from '@payorch/domain';

import { RequireScopes } from '../common/auth.guard';
import { ValidQuery } from '../common/openapi';
import { Tenant } from '../common/tenant.decorator';
import { openApi } from '../common/zod';
import { operationStatsQuery, type OperationStatsQuery, operationStatsResponseSchema } from './dto/stats.dto';
import { StatsService } from './stats.service';

/**
 * `GET /v1/stats/operations`: the console's plots (approval rate, operations per minute, p50/p99 terminal
 * time per protocol, terminals going offline), aggregated in PostgreSQL under RLS.
 */
@ApiTags('stats')
@ApiBearerAuth()
@Controller('v1/stats')
export class StatsController {
  constructor(private readonly service: StatsService) {}

  @Get('operations')
  @RequireScopes('operations:read')
  @ApiOperation({ summary: 'Operation aggregates per time bucket over the last hours' })
  @ApiResponse({ status: 200, schema: openApi(operationStatsResponseSchema) })
  operations(@Tenant() ctx: TenantContext, @ValidQuery(operationStatsQuery) query: OperationStatsQuery) {
    return this.service.operations(ctx, query);
  }
}
