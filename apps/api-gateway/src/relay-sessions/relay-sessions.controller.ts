import { Controller, Get } from '@nestjs/common';
import { ApiBearerAuth, ApiOperation, ApiResponse, ApiTags } from '@nestjs/swagger';

import type { TenantContext } from '@payorch/domain';

import { RequireScopes } from '../common/auth.guard';
import { pageSchema, ValidQuery } from '../common/openapi';
import { Tenant } from '../common/tenant.decorator';
import { type ListRelaySessionsQuery, listRelaySessionsQuery, relaySessionResponseSchema } from './dto/relay-session.dto';
import { RelaySessionsService } from './relay-sessions.service';

@ApiTags('relay-sessions')
@ApiBearerAuth()
@Controller('v1/relay-sessions')
export class RelaySessionsController {
  constructor(private readonly service: RelaySessionsService) {}

  @Get()
  @RequireScopes('egress:read')
  @ApiOperation({
    summary: 'The Joinproto relay audit (91–94 sessions): newest first, cursor pagination',
    description: 'Filters: terminalId, storeId, state (open/ended), outcome, from/to on startedAt. docs/relay.md, "Audit".',
  })
  @ApiResponse({ status: 200, schema: pageSchema(relaySessionResponseSchema) })
  list(@Tenant() ctx: TenantContext, @ValidQuery(listRelaySessionsQuery) query: ListRelaySessionsQuery) {
    return this.service.list(ctx, query);
  }
}
