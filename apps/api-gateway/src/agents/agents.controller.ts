import { Body, Controller, Delete, Get, HttpCode, Param, Patch, Post } from '@nestjs/common';
import { ApiBearerAuth, ApiBody, ApiHeader, ApiOperation, ApiResponse, ApiTags } from '@nestjs/swagger';

import type { TenantContext } from '@payorch/domain';

import { RequireScopes } from '../common/auth.guard';
import { ReturnsOneTimeSecrets } from '../common/one-time-secret';
import { ApiErrors, IDEMPOTENCY_HEADER, pageSchema, ValidQuery } from '../common/openapi';
import { Tenant } from '../common/tenant.decorator';
import { openApi, uuidParam, ZodPipe } from '../common/zod';
import { AgentsService } from './agents.service';
import {
  agentResponseSchema,
  type CreateAgentDto,
  createAgentSchema,
  enrollmentResponseSchema,
  type ListAgentsQuery,
  listAgentsQuery,
  type UpdateAgentDto,
  updateAgentSchema,
} from './dto/agent.dto';

@ApiTags('agents')
@ApiBearerAuth()
@Controller('v1/agents')
export class AgentsController {
  constructor(private readonly service: AgentsService) {}

  @Post()
  @RequireScopes('agents:write')
  @ApiOperation({
    summary: 'Create an agent; the response carries its one-time enrollment token',
    description:
      'A replay of the same Idempotency-Key returns the agent with `enrollmentToken: null` and `secretWithheld: true`; issue a new token if it was lost.',
  })
  @ApiHeader(IDEMPOTENCY_HEADER)
  @ReturnsOneTimeSecrets('enrollmentToken')
  @ApiBody({ schema: openApi(createAgentSchema) })
  @ApiResponse({ status: 201, schema: openApi(enrollmentResponseSchema) })
  @ApiErrors('CONFLICT')
  create(@Tenant() ctx: TenantContext, @Body(new ZodPipe(createAgentSchema)) dto: CreateAgentDto) {
    return this.service.create(ctx, dto);
  }

  @Get()
  @RequireScopes('agents:read')
  @ApiResponse({ status: 200, schema: pageSchema(agentResponseSchema) })
  @ApiOperation({ summary: 'List agents (newest first, cursor pagination; filter by store)' })
  list(@Tenant() ctx: TenantContext, @ValidQuery(listAgentsQuery) query: ListAgentsQuery) {
    return this.service.list(ctx, query);
  }

  @Get(':id')
  @RequireScopes('agents:read')
  @ApiResponse({ status: 200, schema: openApi(agentResponseSchema) })
  @ApiOperation({ summary: 'Get an agent' })
  get(@Tenant() ctx: TenantContext, @Param('id', new ZodPipe(uuidParam)) id: string) {
    return this.service.get(ctx, id);
  }

  @Patch(':id')
  @RequireScopes('agents:write')
  @ApiHeader(IDEMPOTENCY_HEADER)
  @ApiBody({ schema: openApi(updateAgentSchema) })
  @ApiResponse({ status: 200, schema: openApi(agentResponseSchema) })
  @ApiErrors('CONFLICT', 'UNPROCESSABLE')
  @ApiOperation({
    summary: 'Rename an agent or move it to another store',
    description:
      'Moving it to another store while it bridges terminals of its current store is 422 naming `storeId` (`details.terminalIds`): move the terminals, or detach them (`agentId: null`), first.',
  })
  update(@Tenant() ctx: TenantContext, @Param('id', new ZodPipe(uuidParam)) id: string, @Body(new ZodPipe(updateAgentSchema)) dto: UpdateAgentDto) {
    return this.service.update(ctx, id, dto);
  }

  @Post(':id/enrollment-token')
  @RequireScopes('agents:write')
  @ApiOperation({
    summary: 'Issue a new one-time enrollment token (the previous one stops working)',
    description: 'A replay of the same Idempotency-Key answers `enrollmentToken: null`, `secretWithheld: true`.',
  })
  @ApiHeader(IDEMPOTENCY_HEADER)
  @ReturnsOneTimeSecrets('enrollmentToken')
  @ApiResponse({ status: 201, schema: openApi(enrollmentResponseSchema) })
  @ApiErrors('CONFLICT')
  rotateEnrollment(@Tenant() ctx: TenantContext, @Param('id', new ZodPipe(uuidParam)) id: string) {
    return this.service.rotateEnrollment(ctx, id);
  }

  @Post(':id/revoke')
  @HttpCode(200)
  @RequireScopes('agents:write')
  @ApiOperation({ summary: 'Revoke the agent: its credential stops working at once' })
  @ApiHeader(IDEMPOTENCY_HEADER)
  @ApiResponse({ status: 200, schema: openApi(agentResponseSchema) })
  revoke(@Tenant() ctx: TenantContext, @Param('id', new ZodPipe(uuidParam)) id: string) {
    return this.service.revoke(ctx, id);
  }

  @Delete(':id')
  @HttpCode(204)
  @RequireScopes('agents:write')
  @ApiHeader(IDEMPOTENCY_HEADER)
  @ApiErrors('UNPROCESSABLE', 'RESOURCE_IN_USE')
  @ApiOperation({ summary: 'Delete an agent that has no terminals' })
  remove(@Tenant() ctx: TenantContext, @Param('id', new ZodPipe(uuidParam)) id: string) {
    return this.service.remove(ctx, id);
  }
}
