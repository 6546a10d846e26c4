import { Body, Controller, Get, Headers, HttpCode, Param, Post, Res } from '@nestjs/common';
import { ApiBearerAuth, ApiBody, ApiHeader, ApiOperation, ApiProduces, ApiResponse, ApiTags } from '@nestjs/swagger';
import type { Response } from 'express';

import type { TenantContext } from '@payorch/domain';

import { RequireScopes } from '../common/auth.guard';
import { ApiErrors, IDEMPOTENCY_HEADER, pageSchema, ValidQuery } from '../common/openapi';
import { Tenant } from '../common/tenant.decorator';
import { openApi, uuidParam, ZodPipe } from '../common/zod';
import { CampaignsService } from './campaigns.service';
import {
  campaignResponseSchema,
  type CreateCampaignDto,
  createCampaignSchema,
  type ListCampaignsQuery,
  listCampaignsQuery,
  type ListTargetsQuery,
  listTargetsQuery,
  targetResponseSchema,
} from './dto/campaign.dto';

/** Fleet campaigns (docs/campaigns.md): one management command rolled out over many terminals in waves. */
@ApiTags('campaigns')
@ApiBearerAuth()
@Controller('v1/campaigns')
export class CampaignsController {
  constructor(private readonly service: CampaignsService) {}

  @Post()
  @HttpCode(201)
  @RequireScopes('terminals:write')
  @ApiOperation({ summary: 'Start a campaign: an operation type over the selected terminals, in waves (idempotent by Idempotency-Key)' })
  @ApiHeader(IDEMPOTENCY_HEADER)
  @ApiBody({ schema: openApi(createCampaignSchema) })
  @ApiResponse({ status: 201, schema: openApi(campaignResponseSchema) })
  @ApiResponse({ status: 422, description: '`UNPROCESSABLE`: the selector matches no terminal (or too many).' })
  @ApiResponse({
    status: 409,
    description:
      '`CONFLICT` with `details.reason: campaign_limit`: the tenant has `CAMPAIGNS_MAX_PER_TENANT` campaigns (operator setting, default 50) open or created in the last 24 hours.',
  })
  @ApiErrors('CONFLICT', 'UNPROCESSABLE', 'SERVICE_UNAVAILABLE')
  create(@Tenant() ctx: TenantContext, @Headers('idempotency-key') key: string, @Body(new ZodPipe(createCampaignSchema)) dto: CreateCampaignDto) {
    return this.service.create(ctx, dto, key);
  }

  @Get()
  @RequireScopes('terminals:read')
  @ApiOperation({ summary: 'List campaigns (newest first, cursor pagination) with their counts per target state' })
  @ApiResponse({ status: 200, schema: pageSchema(campaignResponseSchema) })
  list(@Tenant() ctx: TenantContext, @ValidQuery(listCampaignsQuery) query: ListCampaignsQuery) {
    return this.service.list(ctx, query);
  }

  @Get(':id')
  @RequireScopes('terminals:read')
  @ApiOperation({ summary: 'A campaign: counts per target state, per wave, and the ETA' })
  @ApiResponse({ status: 200, schema: openApi(campaignResponseSchema) })
  get(@Tenant() ctx: TenantContext, @Param('id', new ZodPipe(uuidParam)) id: string) {
    return this.service.get(ctx, id);
  }

  @Get(':id/targets')
  @RequireScopes('terminals:read')
  @ApiOperation({ summary: "Per-terminal results with the terminal's answer (cursor pagination), or `?format=csv` for all of them" })
  @ApiProduces('application/json', 'text/csv')
  @ApiResponse({ status: 200, schema: pageSchema(targetResponseSchema) })
  async targets(
    @Tenant() ctx: TenantContext,
    @Param('id', new ZodPipe(uuidParam)) id: string,
    @ValidQuery(listTargetsQuery) query: ListTargetsQuery,
    @Res({ passthrough: true }) res: Response,
  ) {
    if (query.format === 'json') return this.service.targets(ctx, id, query);
    const csv = await this.service.csv(ctx, id, query);
    res.type('text/csv; charset=utf-8').attachment(`campaign-${id}.csv`);
    return csv;
  }

  @Post(':id/pause')
  @HttpCode(200)
  @RequireScopes('terminals:write')
  @ApiOperation({ summary: 'Pause: no new terminal step starts; steps already on a terminal finish' })
  @ApiHeader(IDEMPOTENCY_HEADER)
  @ApiResponse({ status: 200, schema: openApi(campaignResponseSchema) })
  @ApiResponse({ status: 409, description: '`CONFLICT`: the campaign is not running.' })
  @ApiErrors('CONFLICT')
  pause(@Tenant() ctx: TenantContext, @Param('id', new ZodPipe(uuidParam)) id: string) {
    return this.service.pause(ctx, id);
  }

  @Post(':id/resume')
  @HttpCode(200)
  @RequireScopes('terminals:write')
  @ApiOperation({ summary: 'Resume a paused campaign (also one paused by a failed canary or the failure threshold)' })
  @ApiHeader(IDEMPOTENCY_HEADER)
  @ApiResponse({ status: 200, schema: openApi(campaignResponseSchema) })
  @ApiResponse({ status: 409, description: '`CONFLICT`: the campaign is not paused.' })
  @ApiErrors('CONFLICT')
  resume(@Tenant() ctx: TenantContext, @Param('id', new ZodPipe(uuidParam)) id: string) {
    return this.service.resume(ctx, id);
  }

  @Post(':id/cancel')
  @HttpCode(200)
  @RequireScopes('terminals:write')
  @ApiOperation({ summary: 'Cancel: open targets are skipped; steps already on a terminal finish' })
  @ApiHeader(IDEMPOTENCY_HEADER)
  @ApiResponse({ status: 200, schema: openApi(campaignResponseSchema) })
  @ApiResponse({ status: 409, description: '`CONFLICT`: the campaign has ended.' })
  @ApiErrors('CONFLICT')
  cancel(@Tenant() ctx: TenantContext, @Param('id', new ZodPipe(uuidParam)) id: string) {
    return this.service.cancel(ctx, id);
  }
}
