import { Prisma } from '@payorch/db';

/**
 * The rows of `agentIds` (one tenant's: the caller's scope), locked FOR NO KEY UPDATE one after the other by id.
 *
 * The connector's lock order, which keeps its writers from waiting for each other in a circle (a deadlock that
 * PostgreSQL breaks only after its deadlock_timeout, by aborting one of them): a transaction takes the agents' rows it
 * needs by id, all of them before any terminal's row (a write of a terminal's row needs its agent's), each tenant's in
 * the first statement of its part, the parts by tenant id (inTenantsTransaction); then the terminals' rows, by id (as
 * the admin `secrets rewrap` takes its batches). The writers: the tunnels' set-ups (session-setup.ts), the presence
 * batches and a tunnel's offline (terminal-presence.ts: one agent, then its terminals).
 *
 * Taken by a statement of its own ({@link lockAgentsThenTerminals}: the statements after it read the rows as they are
 * once locked, a status write's presence check), or by a condition of a statement that writes ({@link agentsLockedFirst}).
 */
function lockAgents(agentIds: readonly string[]): Prisma.Sql {
  return Prisma.sql`SELECT "id" FROM "Agent" WHERE "id" = ANY(${agentIds}::uuid[]) ORDER BY "id" FOR NO KEY UPDATE`;
}

/** The rows of `terminalIds`, locked FOR NO KEY UPDATE one after the other by id (after their agents': see above). */
function lockTerminals(terminalIds: readonly string[]): Prisma.Sql {
  return Prisma.sql`SELECT "id" FROM "Terminal" WHERE "id" = ANY(${terminalIds}::uuid[]) ORDER BY "id" FOR NO KEY UPDATE`;
}

/**
 * A condition (always true) that makes the statement it is part of lock the rows of `agentIds` by id before it writes
 * any row, whatever its plan: an uncorrelated scalar sub-select is an InitPlan, and a condition on nothing else is a
 * one-time filter PostgreSQL evaluates before the rows under it are read (EXPLAIN: `InitPlan 1` above
 * `One-Time Filter: ($1 >= 0)`). A join with the locking sub-select instead (`FROM (lockAgents(…)) l`) took them as its
 * plan pulled them: an agent, that agent's terminal, the next agent. The statement's snapshot predates the wait, so only
 * for writes that read nothing else of the rows they wait for (a plain UPDATE re-reads its own target rows).
 */
export function agentsLockedFirst(agentIds: readonly string[]): Prisma.Sql {
  return Prisma.sql`(SELECT count(*) FROM (${lockAgents(agentIds)}) "locked") >= 0`;
}

/**
 * {@link agentsLockedFirst} for terminals' rows: every writer of several terminals' rows takes them by id, as the admin
 * `secrets rewrap` does its batches (and a status write's `FOR NO KEY UPDATE … ORDER BY "id"`). Placed after the
 * agents' condition, it runs after it (the conditions of a one-time filter are evaluated in order).
 */
export function terminalsLockedFirst(terminalIds: readonly string[]): Prisma.Sql {
  return Prisma.sql`(SELECT count(*) FROM (${lockTerminals(terminalIds)}) "locked") >= 0`;
}

/**
 * A statement of its own that locks the rows of `agentIds`, then those of `terminalIds`, each by id: what a presence
 * batch that writes more than one kind of row sends first, so that no later statement of it takes a row out of that
 * order (two statements taking their rows each by id would not: a status write's terminal, then a lower one's info).
 */
export function lockAgentsThenTerminals(agentIds: readonly string[], terminalIds: readonly string[]): Prisma.Sql {
  return Prisma.sql`SELECT ${agentsLockedFirst(agentIds)} AND ${terminalsLockedFirst(terminalIds)} AS "locked"`;
}
