import type { TransactionClient } from '@payorch/db';
import type { TenantContext } from '@payorch/domain';

export interface AuditEntry {
  action: string;
  resourceType: string;
  resourceId: string | null;
  /** Ids and changed field names only; never secrets. */
  details?: Record<string, unknown>;
}

/** Written in the same transaction as the change it describes, so one never exists without the other. */
export async function audit(tx: TransactionClient, ctx: TenantContext, entry: AuditEntry): Promise<void> {
  await tx.auditLog.create({
    data: {
      tenantId: ctx.tenantId,
      actorType: ctx.actor.type,
      actorId: ctx.actor.id,
      requestId: ctx.requestId,
      action: entry.action,
      resourceType: entry.resourceType,
      resourceId: entry.resourceId,
      details: (entry.details ?? undefined) as never,
    },
  });
}
