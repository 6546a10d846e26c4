import { Prisma } from '@payorch/db';

/**
 * The rows of `agentIds` (one tenant's: the caller's scope), locked FOR NO KEY UPDATE one after the other by id.
 *
 * The connector's lock order, which keeps its writers from waiting for each other in a circle (a deadlock that
 * PostgreSQL breaks only after its deadlock_timeout, by aborting one of them): a write of a terminal's row takes its
 * agent's row first, and a transaction that takes several agents' rows takes them by id, each tenant's in the first
 * statement of its part, the parts by tenant id (inTenantsTransaction). The writers: the tunnels' set-ups
 * (session-setup.ts), the presence batches and a tunnel's offline (terminal-presence.ts: one agent, then its terminals).
 *
 * A statement of its own, or the driving sub-select of an UPDATE (`FROM (lockAgents(…)) l WHERE a."id" = l."id"`): the
 * UPDATE then writes only rows whose agent the sub-select has already locked, whatever its plan, where a plain
 * `UPDATE … WHERE "id" = ANY(…)` or `FROM unnest(…)` takes them in the order of its plan's scan.
 */
export function lockAgents(agentIds: readonly string[]): Prisma.Sql {
  return Prisma.sql`SELECT "id" FROM "Agent" WHERE "id" = ANY(${agentIds}::uuid[]) ORDER BY "id" FOR NO KEY UPDATE`;
}
