import { Controller, Get, Param } from '@nestjs/common';
import { ApiBearerAuth, ApiOperation, ApiResponse, ApiTags } from '@nestjs/swagger';

import type { TenantContext } from '@payorch/domain';

import { RequireScopes } from '../common/auth.guard';
import { pageSchema, ValidQuery } from '../common/openapi';
import { Tenant } from '../common/tenant.decorator';
import { uuidParam, ZodPipe } from '../common/zod';
import { type ListOperationEventsQuery, listOperationEventsQuery, operationEventResponseSchema } from './dto/operation-event.dto';
import { OperationEventsService } from './operation-events.service';

@ApiTags('operations')
@ApiBearerAuth()
@Controller('v1/operations')
export class OperationEventsController {
  constructor(private readonly service: OperationEventsService) {}

  @Get(':id/events')
  @RequireScopes('operations:read')
  @ApiOperation({
    summary: "An operation's timeline: its recorded steps, oldest first (cursor pagination)",
    description:
      'Every step the operation went through (created, state transitions, terminal progress, recovery attempts, manual resolution) with its masked data. Another tenant’s operation → 404.',
  })
  @ApiResponse({ status: 200, schema: pageSchema(operationEventResponseSchema) })
  list(@Tenant() ctx: TenantContext, @Param('id', new ZodPipe(uuidParam)) id: string, @ValidQuery(listOperationEventsQuery) query: ListOperationEventsQuery) {
    return this.service.list(ctx, id, query);
  }
}
