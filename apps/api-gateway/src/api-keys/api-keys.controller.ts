import { Body, Controller, Get, HttpCode, Param, Post } from '@nestjs/common';
import { ApiBearerAuth, ApiBody, ApiHeader, ApiOperation, ApiResponse, ApiTags } from '@nestjs/swagger';

import type { TenantContext } from '@payorch/domain';

import { RequireScopes } from '../common/auth.guard';
import { ReturnsOneTimeSecrets } from '../common/one-time-secret';
import { ApiErrors, IDEMPOTENCY_HEADER, pageSchema, ValidQuery } from '../common/openapi';
import { paginationQuery, type PaginationQuery } from '../common/pagination';
import { Tenant } from '../common/tenant.decorator';
import { openApi, uuidParam, ZodPipe } from '../common/zod';
import { ApiKeysService } from './api-keys.service';
import { CallerScopes } from './caller-scopes.decorator';
import { apiKeyResponseSchema, apiKeyWithSecretSchema, type CreateApiKeyDto, createApiKeySchema } from './dto/api-key.dto';

/** The tenant's API keys; only `admin` keys manage them (docs/security.md "Key management"). */
@ApiTags('api-keys')
@ApiBearerAuth()
@Controller('v1/api-keys')
export class ApiKeysController {
  constructor(private readonly service: ApiKeysService) {}

  @Post()
  @RequireScopes('admin')
  @ApiOperation({
    summary: 'Create an API key',
    description:
      'The response carries the key (`pok_…`) once; only its prefix and a hash are stored. A replay of the same Idempotency-Key answers `apiKey: null`, `secretWithheld: true` (create another key if it was lost). A key cannot grant scopes it does not hold (403). A tenant holds at most `API_KEYS_MAX_PER_TENANT` working (unrevoked, unexpired) keys (default 100): one more is 409 `CONFLICT` (`details.reason: api_key_limit`, `details.limit`) until one is revoked.',
  })
  @ApiHeader(IDEMPOTENCY_HEADER)
  @ApiErrors('CONFLICT')
  @ReturnsOneTimeSecrets('apiKey')
  @ApiBody({ schema: openApi(createApiKeySchema) })
  @ApiResponse({ status: 201, schema: openApi(apiKeyWithSecretSchema) })
  create(@Tenant() ctx: TenantContext, @CallerScopes() scopes: readonly string[], @Body(new ZodPipe(createApiKeySchema)) dto: CreateApiKeyDto) {
    return this.service.create(ctx, scopes, dto);
  }

  @Get()
  @RequireScopes('admin')
  @ApiOperation({ summary: 'List API keys, revoked ones included (newest first, cursor pagination)' })
  @ApiResponse({ status: 200, schema: pageSchema(apiKeyResponseSchema) })
  list(@Tenant() ctx: TenantContext, @ValidQuery(paginationQuery) query: PaginationQuery) {
    return this.service.list(ctx, query);
  }

  @Get(':id')
  @RequireScopes('admin')
  @ApiResponse({ status: 200, schema: openApi(apiKeyResponseSchema) })
  get(@Tenant() ctx: TenantContext, @Param('id', new ZodPipe(uuidParam)) id: string) {
    return this.service.get(ctx, id);
  }

  @Post(':id/revoke')
  @HttpCode(200)
  @RequireScopes('admin')
  @ApiOperation({
    summary: 'Revoke an API key: it stops working at once',
    description: "409 CONFLICT for the tenant's last working admin key (create another admin key first). Revoking a revoked key answers it unchanged.",
  })
  @ApiHeader(IDEMPOTENCY_HEADER)
  @ApiErrors('CONFLICT')
  @ApiResponse({ status: 200, schema: openApi(apiKeyResponseSchema) })
  revoke(@Tenant() ctx: TenantContext, @Param('id', new ZodPipe(uuidParam)) id: string) {
    return this.service.revoke(ctx, id);
  }
}
