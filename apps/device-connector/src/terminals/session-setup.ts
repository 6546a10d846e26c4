import { publishEvent, type SqlClient } from '@payorch/db';

import { type AgentAccessRow, revocationReason, type RevocationReason } from '../access/access-check';
import type { TerminalRow } from './terminal-link';

export interface SessionSetUpInput {
  agentId: string;
  tenantId: string;
  /** The credential the tunnel authenticated with: it must still be the agent's active one. */
  credentialPrefix: string;
  version: string | null;
  instanceId: string;
}

export type SessionSetUp =
  | { revoked: RevocationReason }
  | {
      revoked: null;
      /** The agent's enabled terminals, oldest first. */
      rows: TerminalRow[];
      /** Ids of those with a non-final operation (to recover once their link opens). */
      unfinished: Set<string>;
    };

/**
 * Everything a new tunnel needs from PostgreSQL, in the caller's tenant transaction (raw SQL, so it runs
 * on the bare pipelined driver of `Database.withTenantSql`; issue 19: the set-up was 4 Prisma transactions
 * and most of the connector's CPU in a reconnect storm): the credential check (a revocation committed
 * since the upgrade is caught here), then, sent together, the agent's `online` row and event, its enabled
 * terminals, and which of them have non-final operations (one range of the tenant's non-final operations,
 * index (tenantId, state, createdAt, id), not each terminal's history). Nothing is written for a revoked agent.
 */
export async function setUpSession(tx: SqlClient, input: SessionSetUpInput): Promise<SessionSetUp> {
  const [access] = await tx.$queryRaw<Array<{ credentialPrefix: string | null; status: AgentAccessRow['status']; tenantStatus: 'ACTIVE' | 'DISABLED' | null }>>`
    SELECT a."credentialPrefix", a."status"::text AS "status", t."status"::text AS "tenantStatus"
    FROM "Agent" a LEFT JOIN "Tenant" t ON t."id" = a."tenantId"
    WHERE a."id" = ${input.agentId}::uuid`;
  const row: AgentAccessRow | null = access
    ? { credentialPrefix: access.credentialPrefix, status: access.status, ...(access.tenantStatus && { tenant: { status: access.tenantStatus } }) }
    : null;
  const revoked = revocationReason(row, input.credentialPrefix);
  if (revoked !== null) return { revoked };
  const [, , rows, unfinished] = await Promise.all([
    tx.$executeRaw`
      UPDATE "Agent" SET "lastSeenAt" = now(), "version" = COALESCE(${input.version}::text, "version"), "updatedAt" = now()
      WHERE "id" = ${input.agentId}::uuid`,
    publishEvent(tx, input.tenantId, {
      type: 'agent.online',
      subjectType: 'agent',
      subjectId: input.agentId,
      data: { agentId: input.agentId, version: input.version, instance: input.instanceId },
    }),
    tx.$queryRaw<TerminalRow[]>`
      SELECT t."agentId", t."connection", t."credentialsEncrypted", t."department", t."dialect", t."encryptionEnabled", t."id",
             t."merchantId", t."name", t."protocol"::text AS "protocol", t."status"::text AS "status", t."tenantId", t."terminalId"
      FROM "Terminal" t
      WHERE t."agentId" = ${input.agentId}::uuid AND t."status" <> 'DISABLED'
      ORDER BY t."createdAt" ASC`,
    tx.$queryRaw<Array<{ terminalId: string }>>`
      SELECT DISTINCT o."terminalId" FROM "TerminalOperation" o
      WHERE o."tenantId" = ${input.tenantId}::uuid AND o."state" IN ('PENDING', 'SENT', 'IN_PROGRESS', 'UNKNOWN')
        AND o."terminalId" IN (SELECT t."id" FROM "Terminal" t WHERE t."agentId" = ${input.agentId}::uuid)`,
  ]);
  return { revoked: null, rows, unfinished: new Set(unfinished.map((r) => r.terminalId)) };
}
