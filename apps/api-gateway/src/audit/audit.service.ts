import { Inject, Injectable } from '@nestjs/common';

import type { Database } from '@payorch/db';
import type { TenantContext } from '@payorch/domain';

import { KEYSET_ORDER, keysetPage, type Page } from '../common/pagination';
import { DATABASE } from '../common/tokens';
import { type AuditEntryResponse, type AuditQuery, toAuditEntryResponse } from './dto/audit-entry.dto';

/** Reads the tenant's audit log (rows written by common/audit.ts with each change); RLS keeps tenants apart. */
@Injectable()
export class AuditService {
  constructor(@Inject(DATABASE) private readonly db: Database) {}

  list(ctx: TenantContext, query: AuditQuery): Promise<Page<AuditEntryResponse>> {
    const { action, actorId, apiKeyId, from, resourceId, resourceType, to } = query;
    return this.db.withTenant(ctx, async (tx) => {
      const load = (ids: string[]) => tx.auditLog.findMany({ where: { id: { in: ids } }, orderBy: KEYSET_ORDER });
      const filters = {
        action,
        actorId: actorId ?? apiKeyId,
        resourceId,
        resourceType,
        createdAt: from || to ? { gte: from, lt: to } : undefined,
      };
      return keysetPage(tx, 'AuditLog', filters, query, load, toAuditEntryResponse);
    });
  }
}
