import { randomUUID } from 'node:crypto';

import { isSqlTransaction, Prisma, type SqlClient, type TransactionClient } from '@payorch/db';
import type { TenantContext } from '@payorch/domain';

export interface AuditEntry {
  action: string;
  resourceType: string;
  resourceId: string | null;
  /** Ids and changed field names only; never secrets. */
  details?: Record<string, unknown>;
}

/**
 * Written in the same transaction as the change it describes, so one never exists without the other. In a
 * SqlTransaction (the operation hot path) nothing waits for it: it is pipelined with the COMMIT, which fails
 * with it.
 */
export async function audit(tx: SqlClient | TransactionClient, ctx: TenantContext, entry: AuditEntry): Promise<void> {
  if (isSqlTransaction(tx)) {
    tx.defer(Prisma.sql`INSERT INTO "AuditLog" ("id", "tenantId", "actorType", "actorId", "requestId", "action", "resourceType", "resourceId", "details", "createdAt")
      VALUES (${randomUUID()}::uuid, ${ctx.tenantId}::uuid, ${ctx.actor.type}, ${ctx.actor.id}, ${ctx.requestId}, ${entry.action}, ${entry.resourceType},
        ${entry.resourceId}, ${entry.details === undefined ? null : JSON.stringify(entry.details)}::jsonb, ${new Date()}::timestamptz)`);
    return;
  }
  await (tx as TransactionClient).auditLog.create({
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
