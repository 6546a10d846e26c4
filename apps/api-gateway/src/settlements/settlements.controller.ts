import { Body, Controller, Get, Header, Headers, HttpCode, Param, Post } from '@nestjs/common';
import { ApiBearerAuth, ApiBody, ApiHeader, ApiOperation, ApiProduces, ApiResponse, ApiTags } from '@nestjs/swagger';

import type { TenantContext } from '@payorch/domain';

import { RequireScopes } from '../common/auth.guard';
import { ApiErrors, IDEMPOTENCY_HEADER, pageSchema, ValidQuery } from '../common/openapi';
import { Tenant } from '../common/tenant.decorator';
import { openApi, uuidParam, ZodPipe } from '../common/zod';
import {
  discrepancyReportSchema,
  type ExportSettlementsQuery,
  exportSettlementsQuery,
  type ListSettlementsQuery,
  listSettlementsQuery,
  type RunSettlementDto,
  runSettlementSchema,
  settlementResponseSchema,
  summaryQuery,
  type SummaryQuery,
  summaryResponseSchema,
} from './dto/settlement.dto';
import { SettlementsService } from './settlements.service';

@ApiTags('settlements')
@ApiBearerAuth()
@Controller('v1')
export class SettlementsController {
  constructor(private readonly service: SettlementsService) {}

  @Post('terminals/:id/settlements')
  @HttpCode(202)
  @RequireScopes('settlements:write')
  @ApiOperation({ summary: "Close the terminal's day now (idempotent by Idempotency-Key)" })
  @ApiHeader(IDEMPOTENCY_HEADER)
  @ApiBody({ schema: openApi(runSettlementSchema), required: false })
  @ApiResponse({ status: 202, schema: openApi(settlementResponseSchema) })
  @ApiResponse({
    status: 409,
    description:
      '`TERMINAL_DISABLED` (terminal status DISABLED), `AGENT_REVOKED` (its agent is revoked) or `TERMINAL_RECOVERING` (an operation of the terminal is still unknown; `Retry-After`); no settlement is created.',
  })
  @ApiErrors('TERMINAL_DISABLED', 'AGENT_REVOKED', 'TERMINAL_RECOVERING')
  run(
    @Tenant() ctx: TenantContext,
    @Param('id', new ZodPipe(uuidParam)) id: string,
    @Headers('idempotency-key') key: string,
    @Body(new ZodPipe(runSettlementSchema)) dto: RunSettlementDto,
  ) {
    return this.service.run(ctx, id, key, dto);
  }

  @Get('settlements')
  @RequireScopes('settlements:read')
  @ApiOperation({ summary: 'List settlements (newest first, cursor pagination)' })
  @ApiResponse({ status: 200, schema: pageSchema(settlementResponseSchema) })
  list(@Tenant() ctx: TenantContext, @ValidQuery(listSettlementsQuery) query: ListSettlementsQuery) {
    return this.service.list(ctx, query);
  }

  @Get('settlements/summary')
  @RequireScopes('settlements:read')
  @ApiOperation({ summary: 'Progress and totals of one business date, for the chain and per store' })
  @ApiResponse({ status: 200, schema: openApi(summaryResponseSchema) })
  summary(@Tenant() ctx: TenantContext, @ValidQuery(summaryQuery) query: SummaryQuery) {
    return this.service.summary(ctx, query);
  }

  @Get('settlements/export.csv')
  @RequireScopes('settlements:read')
  @Header('Content-Type', 'text/csv; charset=utf-8')
  @Header('Content-Disposition', 'attachment; filename="settlements.csv"')
  @ApiProduces('text/csv')
  @ApiOperation({ summary: 'Export settlements as CSV (same filters as the list)' })
  exportCsv(@Tenant() ctx: TenantContext, @ValidQuery(exportSettlementsQuery) query: ExportSettlementsQuery) {
    return this.service.exportCsv(ctx, query);
  }

  @Get('settlements/:id/discrepancies')
  @RequireScopes('settlements:read')
  @ApiOperation({ summary: 'Discrepancy report of one settlement (batches and discrepancies) as JSON' })
  @ApiResponse({ status: 200, schema: openApi(discrepancyReportSchema) })
  discrepancies(@Tenant() ctx: TenantContext, @Param('id', new ZodPipe(uuidParam)) id: string) {
    return this.service.discrepancyReport(ctx, id);
  }

  @Get('settlements/:id/discrepancies.csv')
  @RequireScopes('settlements:read')
  @Header('Content-Type', 'text/csv; charset=utf-8')
  @Header('Content-Disposition', 'attachment; filename="discrepancies.csv"')
  @ApiOperation({ summary: 'Discrepancy report of one settlement as CSV (one row per discrepancy)' })
  @ApiProduces('text/csv')
  discrepanciesCsv(@Tenant() ctx: TenantContext, @Param('id', new ZodPipe(uuidParam)) id: string) {
    return this.service.discrepancyCsv(ctx, id);
  }

  @Get('settlements/:id')
  @RequireScopes('settlements:read')
  @ApiResponse({ status: 200, schema: openApi(settlementResponseSchema) })
  @ApiOperation({ summary: 'Get a settlement' })
  get(@Tenant() ctx: TenantContext, @Param('id', new ZodPipe(uuidParam)) id: string) {
    return this.service.get(ctx, id);
  }
}
