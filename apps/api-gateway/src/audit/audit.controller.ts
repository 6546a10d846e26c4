import { Controller, Get } from '@nestjs/common';
import { ApiBearerAuth, ApiOperation, ApiResponse, ApiTags } from '@nestjs/swagger';

import type { TenantContext } from '@payorch/domain';

import { RequireScopes } from '../common/auth.guard';
import { pageSchema, ValidQuery } from '../common/openapi';
import { Tenant } from '../common/tenant.decorator';
import { AuditService } from './audit.service';
import { auditEntryResponseSchema, type AuditQuery, auditQuerySchema } from './dto/audit-entry.dto';

@ApiTags('audit-log')
@ApiBearerAuth()
@Controller('v1/audit-log')
export class AuditController {
  constructor(private readonly service: AuditService) {}

  @Get()
  @RequireScopes('audit:read')
  @ApiOperation({ summary: "The tenant's audit log: every change made through the API or the operator CLI (newest first, cursor pagination)" })
  @ApiResponse({ status: 200, schema: pageSchema(auditEntryResponseSchema) })
  list(@Tenant() ctx: TenantContext, @ValidQuery(auditQuerySchema) query: AuditQuery) {
    return this.service.list(ctx, query);
  }
}
