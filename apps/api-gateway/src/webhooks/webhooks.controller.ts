import { Body, Controller, Delete, Get, HttpCode, Param, Patch, Post } from '@nestjs/common';
import { ApiBearerAuth, ApiBody, ApiHeader, ApiOperation, ApiResponse, ApiTags } from '@nestjs/swagger';

import type { TenantContext } from '@payorch/domain';

import { RequireScopes } from '../common/auth.guard';
import { ReturnsOneTimeSecrets } from '../common/one-time-secret';
import { ApiErrors, IDEMPOTENCY_HEADER, pageSchema, ValidQuery } from '../common/openapi';
import { paginationQuery, type PaginationQuery } from '../common/pagination';
import { Tenant } from '../common/tenant.decorator';
import { openApi, uuidParam, ZodPipe } from '../common/zod';
import {
  type CreateWebhookDto,
  createWebhookSchema,
  deliveryResponseSchema,
  listDeliveriesQuery,
  type ListDeliveriesQuery,
  type UpdateWebhookDto,
  updateWebhookSchema,
  webhookResponseSchema,
  webhookWithSecretSchema,
} from './dto/webhook.dto';
import { WebhooksService } from './webhooks.service';

@ApiTags('webhooks')
@ApiBearerAuth()
@Controller('v1/webhooks')
export class WebhooksController {
  constructor(private readonly service: WebhooksService) {}

  @Post()
  @RequireScopes('webhooks:write')
  @ApiOperation({
    summary: 'Create a webhook endpoint',
    description:
      'The response carries the signing secret (`whsec_…`) once; it is never returned again, not even by a replay of the same Idempotency-Key (`Idempotent-Replayed: true`, `secret: null`, `secretWithheld: true`; rotate the secret if it was lost). See docs/webhooks.md for the signature and its verification. A tenant has at most `WEBHOOK_ENDPOINTS_MAX_PER_TENANT` endpoints (operator setting, default 16), enabled or not: one more is 409 `CONFLICT` with `details.reason: webhook_endpoint_limit`.',
  })
  @ApiHeader(IDEMPOTENCY_HEADER)
  @ReturnsOneTimeSecrets('secret')
  @ApiBody({ schema: openApi(createWebhookSchema) })
  @ApiResponse({ status: 201, schema: openApi(webhookWithSecretSchema) })
  @ApiErrors('CONFLICT', 'EGRESS_DENIED')
  create(@Tenant() ctx: TenantContext, @Body(new ZodPipe(createWebhookSchema)) dto: CreateWebhookDto) {
    return this.service.create(ctx, dto);
  }

  @Get()
  @RequireScopes('webhooks:read')
  @ApiResponse({ status: 200, schema: pageSchema(webhookResponseSchema) })
  @ApiOperation({ summary: 'List webhook endpoints (newest first, cursor pagination)' })
  list(@Tenant() ctx: TenantContext, @ValidQuery(paginationQuery) query: PaginationQuery) {
    return this.service.list(ctx, query);
  }

  @Get(':id')
  @RequireScopes('webhooks:read')
  @ApiResponse({ status: 200, schema: openApi(webhookResponseSchema) })
  @ApiOperation({ summary: 'Get a webhook endpoint' })
  get(@Tenant() ctx: TenantContext, @Param('id', new ZodPipe(uuidParam)) id: string) {
    return this.service.get(ctx, id);
  }

  @Patch(':id')
  @RequireScopes('webhooks:write')
  @ApiHeader(IDEMPOTENCY_HEADER)
  @ApiBody({ schema: openApi(updateWebhookSchema) })
  @ApiResponse({ status: 200, schema: openApi(webhookResponseSchema) })
  @ApiErrors('CONFLICT', 'EGRESS_DENIED')
  @ApiOperation({ summary: 'Change a webhook endpoint' })
  update(@Tenant() ctx: TenantContext, @Param('id', new ZodPipe(uuidParam)) id: string, @Body(new ZodPipe(updateWebhookSchema)) dto: UpdateWebhookDto) {
    return this.service.update(ctx, id, dto);
  }

  @Delete(':id')
  @HttpCode(204)
  @RequireScopes('webhooks:write')
  @ApiHeader(IDEMPOTENCY_HEADER)
  @ApiErrors('RESOURCE_IN_USE')
  @ApiOperation({ summary: 'Delete a webhook endpoint' })
  remove(@Tenant() ctx: TenantContext, @Param('id', new ZodPipe(uuidParam)) id: string) {
    return this.service.remove(ctx, id);
  }

  @Post(':id/rotate-secret')
  @HttpCode(200)
  @RequireScopes('webhooks:write')
  @ApiOperation({
    summary: 'Replace the signing secret (returned once)',
    description: 'A replay of the same Idempotency-Key answers `secret: null`, `secretWithheld: true`; rotate again if the secret was lost.',
  })
  @ApiHeader(IDEMPOTENCY_HEADER)
  @ReturnsOneTimeSecrets('secret')
  @ApiResponse({ status: 200, schema: openApi(webhookWithSecretSchema) })
  rotateSecret(@Tenant() ctx: TenantContext, @Param('id', new ZodPipe(uuidParam)) id: string) {
    return this.service.rotateSecret(ctx, id);
  }

  @Get(':id/deliveries')
  @RequireScopes('webhooks:read')
  @ApiOperation({ summary: 'Delivery log of an endpoint (newest first, cursor pagination; filter by status)' })
  @ApiResponse({ status: 200, schema: pageSchema(deliveryResponseSchema) })
  deliveries(@Tenant() ctx: TenantContext, @Param('id', new ZodPipe(uuidParam)) id: string, @ValidQuery(listDeliveriesQuery) query: ListDeliveriesQuery) {
    return this.service.deliveries(ctx, id, query);
  }

  @Post(':id/deliveries/:deliveryId/redeliver')
  @HttpCode(202)
  @RequireScopes('webhooks:write')
  @ApiOperation({ summary: 'Send a delivered or failed delivery again (fresh retry schedule); 409 while it is still scheduled' })
  @ApiHeader(IDEMPOTENCY_HEADER)
  @ApiResponse({ status: 202, schema: openApi(deliveryResponseSchema) })
  @ApiErrors('CONFLICT')
  redeliver(@Tenant() ctx: TenantContext, @Param('id', new ZodPipe(uuidParam)) id: string, @Param('deliveryId', new ZodPipe(uuidParam)) deliveryId: string) {
    return this.service.redeliver(ctx, id, deliveryId);
  }
}
