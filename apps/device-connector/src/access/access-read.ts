import type { SqlClient } from '@payorch/db';

import { TERMINAL_ROW_COLUMNS, type TerminalRow } from '../terminals/terminal-link';
import type { AgentAccessRow } from './access-check';

/**
 * The access rows of agents (credential, status, tenant status), by agent id; a deleted agent is absent. Raw SQL in
 * the caller's tenant transaction (the tunnel set-up's and the re-checks': `Database.withTenantSql`), one statement
 * for any number of agents.
 */
export async function readAgentAccess(tx: SqlClient, agentIds: readonly string[]): Promise<Map<string, AgentAccessRow>> {
  const rows = await tx.$queryRaw<
    Array<{ id: string; credentialPrefix: string | null; status: AgentAccessRow['status']; tenantStatus: 'ACTIVE' | 'DISABLED' | null }>
  >`
    SELECT a."id", a."credentialPrefix", a."status"::text AS "status", t."status"::text AS "tenantStatus"
    FROM "Agent" a LEFT JOIN "Tenant" t ON t."id" = a."tenantId"
    WHERE a."id" = ANY(${[...agentIds]}::uuid[])`;
  return new Map(
    rows.map((row) => [
      row.id,
      { credentialPrefix: row.credentialPrefix, status: row.status, ...(row.tenantStatus && { tenant: { status: row.tenantStatus } }) },
    ]),
  );
}

/** What live revocation enforces on one agent's tunnel: its access row (null: deleted) and its enabled terminals, oldest first. */
export interface AgentAccessNow {
  access: AgentAccessRow | null;
  terminals: TerminalRow[];
}

/**
 * The access rows and enabled terminals of agents of one tenant, sent together (one round trip): the re-checks of
 * live revocation, for one agent (a live event naming it) or a batch of the agents held here (the periodic re-check
 * and the one after the Redis subscription reconnects: issue 19, one transaction per agent was ~170 Prisma
 * transactions a second at 5,000 agents).
 */
export async function readAgentsNow(tx: SqlClient, agentIds: readonly string[]): Promise<Map<string, AgentAccessNow>> {
  const [access, terminals] = await Promise.all([
    readAgentAccess(tx, agentIds),
    tx.$queryRaw<TerminalRow[]>`
      SELECT ${TERMINAL_ROW_COLUMNS} FROM "Terminal" t
      WHERE t."agentId" = ANY(${[...agentIds]}::uuid[]) AND t."status" <> 'DISABLED'
      ORDER BY t."createdAt" ASC, t."id" ASC`,
  ]);
  const now = new Map<string, AgentAccessNow>(agentIds.map((id) => [id, { access: access.get(id) ?? null, terminals: [] }]));
  for (const row of terminals) if (row.agentId !== null) now.get(row.agentId)?.terminals.push(row);
  return now;
}
