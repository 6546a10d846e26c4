import { Body, Controller, Delete, Get, HttpCode, Param, Patch, Post } from '@nestjs/common';
import { ApiBearerAuth, ApiBody, ApiHeader, ApiOperation, ApiResponse, ApiTags } from '@nestjs/swagger';

import type { TenantContext } from '@payorch/domain';

import { RequireScopes, SettingsRoutes } from '../common/auth.guard';
import { ApiErrors, IDEMPOTENCY_HEADER, pageSchema, ValidQuery } from '../common/openapi';
import { Tenant } from '../common/tenant.decorator';
import { openApi, uuidParam, ZodPipe } from '../common/zod';
import {
  type CreateScheduleDto,
  createScheduleSchema,
  type ListSchedulesQuery,
  listSchedulesQuery,
  scheduleResponseSchema,
  type UpdateScheduleDto,
  updateScheduleSchema,
} from './dto/settlement-schedule.dto';
import { SettlementSchedulesService } from './settlement-schedules.service';

@ApiTags('settlements')
@ApiBearerAuth()
@SettingsRoutes()
@Controller('v1/settlement-schedules')
export class SettlementSchedulesController {
  constructor(private readonly service: SettlementSchedulesService) {}

  @Post()
  @RequireScopes('settlements:write')
  @ApiOperation({
    summary: 'Schedule a daily close-day for a store or a terminal at a local time',
    description:
      "A terminal is settled once per business day, so a store has at most one enabled store-wide schedule and a terminal at most one enabled own schedule (a terminal's own schedule overrides its store's; disabled schedules do not count): a second enabled one for the same `storeId` or `terminalId` is 409 `CONFLICT` with `details.reason: settlement_schedule_exists` and `details.scheduleId` of the enabled one (change that one instead). A tenant has at most `SETTLEMENT_SCHEDULES_MAX_PER_TENANT` schedules (operator setting, default 10,000), enabled or not: one more is 409 `CONFLICT` with `details.reason: settlement_schedule_limit`.",
  })
  @ApiHeader(IDEMPOTENCY_HEADER)
  @ApiBody({ schema: openApi(createScheduleSchema) })
  @ApiResponse({ status: 201, schema: openApi(scheduleResponseSchema) })
  @ApiErrors('CONFLICT')
  create(@Tenant() ctx: TenantContext, @Body(new ZodPipe(createScheduleSchema)) dto: CreateScheduleDto) {
    return this.service.create(ctx, dto);
  }

  @Get()
  @RequireScopes('settlements:read')
  @ApiResponse({ status: 200, schema: pageSchema(scheduleResponseSchema) })
  @ApiOperation({ summary: 'List settlement schedules (newest first, cursor pagination)' })
  list(@Tenant() ctx: TenantContext, @ValidQuery(listSchedulesQuery) query: ListSchedulesQuery) {
    return this.service.list(ctx, query);
  }

  @Get(':id')
  @RequireScopes('settlements:read')
  @ApiResponse({ status: 200, schema: openApi(scheduleResponseSchema) })
  @ApiOperation({ summary: 'Get a settlement schedule' })
  get(@Tenant() ctx: TenantContext, @Param('id', new ZodPipe(uuidParam)) id: string) {
    return this.service.get(ctx, id);
  }

  @Patch(':id')
  @RequireScopes('settlements:write')
  @ApiHeader(IDEMPOTENCY_HEADER)
  @ApiBody({ schema: openApi(updateScheduleSchema) })
  @ApiResponse({ status: 200, schema: openApi(scheduleResponseSchema) })
  @ApiErrors('CONFLICT')
  @ApiOperation({
    summary: 'Change a settlement schedule',
    description:
      'Enabling a disabled schedule whose store (or terminal) already has an enabled schedule of its own is 409 `CONFLICT` with `details.reason: settlement_schedule_exists` and `details.scheduleId` of the enabled one.',
  })
  update(@Tenant() ctx: TenantContext, @Param('id', new ZodPipe(uuidParam)) id: string, @Body(new ZodPipe(updateScheduleSchema)) dto: UpdateScheduleDto) {
    return this.service.update(ctx, id, dto);
  }

  @Delete(':id')
  @HttpCode(204)
  @RequireScopes('settlements:write')
  @ApiHeader(IDEMPOTENCY_HEADER)
  @ApiErrors('RESOURCE_IN_USE')
  @ApiOperation({ summary: 'Delete a settlement schedule' })
  remove(@Tenant() ctx: TenantContext, @Param('id', new ZodPipe(uuidParam)) id: string) {
    return this.service.remove(ctx, id);
  }
}
