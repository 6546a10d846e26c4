import { Body, Controller, Delete, Get, HttpCode, Param, Patch, Post } from '@nestjs/common';
import { ApiBearerAuth, ApiBody, ApiHeader, ApiOperation, ApiResponse, ApiTags } from '@nestjs/swagger';

import type { TenantContext } from '@payorch/domain';

import { RequireScopes } from '../common/auth.guard';
import { ApiErrors, IDEMPOTENCY_HEADER, pageSchema, ValidQuery } from '../common/openapi';
import { Tenant } from '../common/tenant.decorator';
import { openApi, uuidParam, ZodPipe } from '../common/zod';
import {
  terminalResponseSchema,
  type CreateTerminalDto,
  createTerminalSchema,
  type ListTerminalsQuery,
  listTerminalsQuery,
  type UpdateTerminalDto,
  updateTerminalSchema,
} from './dto/terminal.dto';
import { TerminalsService } from './terminals.service';

@ApiTags('terminals')
@ApiBearerAuth()
@Controller('v1/terminals')
export class TerminalsController {
  constructor(private readonly service: TerminalsService) {}

  @Post()
  @RequireScopes('terminals:write')
  @ApiOperation({ summary: 'Register a terminal (credentials are stored encrypted and never returned)' })
  @ApiHeader(IDEMPOTENCY_HEADER)
  @ApiBody({ schema: openApi(createTerminalSchema) })
  @ApiResponse({ status: 201, schema: openApi(terminalResponseSchema) })
  @ApiErrors('CONFLICT', 'UNPROCESSABLE')
  create(@Tenant() ctx: TenantContext, @Body(new ZodPipe(createTerminalSchema)) dto: CreateTerminalDto) {
    return this.service.create(ctx, dto);
  }

  @Get()
  @RequireScopes('terminals:read')
  @ApiResponse({ status: 200, schema: pageSchema(terminalResponseSchema) })
  @ApiOperation({ summary: 'List terminals (newest first, cursor pagination; filter by store, agent, protocol, status)' })
  list(@Tenant() ctx: TenantContext, @ValidQuery(listTerminalsQuery) query: ListTerminalsQuery) {
    return this.service.list(ctx, query);
  }

  @Get(':id')
  @RequireScopes('terminals:read')
  @ApiResponse({ status: 200, schema: openApi(terminalResponseSchema) })
  @ApiOperation({ summary: 'Get a terminal' })
  get(@Tenant() ctx: TenantContext, @Param('id', new ZodPipe(uuidParam)) id: string) {
    return this.service.get(ctx, id);
  }

  @Patch(':id')
  @RequireScopes('terminals:write')
  @ApiHeader(IDEMPOTENCY_HEADER)
  @ApiBody({ schema: openApi(updateTerminalSchema) })
  @ApiResponse({ status: 200, schema: openApi(terminalResponseSchema) })
  @ApiErrors('CONFLICT', 'UNPROCESSABLE')
  @ApiOperation({ summary: 'Change a terminal (connection, credentials, agent, disabled)' })
  update(@Tenant() ctx: TenantContext, @Param('id', new ZodPipe(uuidParam)) id: string, @Body(new ZodPipe(updateTerminalSchema)) dto: UpdateTerminalDto) {
    return this.service.update(ctx, id, dto);
  }

  @Delete(':id')
  @HttpCode(204)
  @RequireScopes('terminals:write')
  @ApiHeader(IDEMPOTENCY_HEADER)
  @ApiErrors('RESOURCE_IN_USE')
  @ApiOperation({ summary: 'Delete a terminal' })
  remove(@Tenant() ctx: TenantContext, @Param('id', new ZodPipe(uuidParam)) id: string) {
    return this.service.remove(ctx, id);
  }
}
