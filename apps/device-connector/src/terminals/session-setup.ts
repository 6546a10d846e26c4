import { type AgentAccessState, type Database, inTenantsTransaction, insertEvents, newEvents, recordEvent, type SqlClient } from '@payorch/db';
import { OPEN_STATES_SQL } from '@payorch/operations';

import { type AgentAccessRow, revocationReason, type RevocationReason } from '../access/access-check';
import { agentsLockedFirst } from './agent-locks';
import { TERMINAL_ROW_COLUMNS, type TerminalRow } from './terminal-link';

export interface SessionSetUpInput {
  agentId: string;
  tenantId: string;
  /** The credential the tunnel authenticated with: it must still be the agent's active one. */
  credentialPrefix: string;
  version: string | null;
  instanceId: string;
  /** The tunnel's id (AgentSession.id): from this set-up on, the agent's presence writes are its own (Agent.presenceSession). */
  sessionId: string;
}

/**
 * What the batch's claim (`setUpSessions`' `claim`) did for one set-up the access check let in: took the agent's
 * ownership ('claimed'), found its tunnel no longer wanting it ('gone': closed, or replaced by a newer tunnel of the
 * agent here), or failed (the error: Redis).
 */
export type ClaimOutcome = 'claimed' | 'gone' | Error;

/** Claims the agents of set-ups that passed the access check: one outcome per input, in order; never rejects. */
export type ClaimAgents = (inputs: readonly SessionSetUpInput[]) => Promise<ClaimOutcome[]>;

export type SessionSetUp =
  | { revoked: RevocationReason }
  /** Let in by the check but not claimed (its tunnel is gone, error null; or the claim failed): nothing was written for it. */
  | { revoked: null; claimed: false; error: Error | null }
  | {
      revoked: null;
      claimed: true;
      /** The agent's enabled terminals, oldest first. */
      rows: TerminalRow[];
      /** Ids of those with a non-final operation (to recover once their link opens). */
      unfinished: Set<string>;
    };

/** The terminals of each agent a tenant's set-up wrote (writeSetUps), by agent id. */
type TerminalsByAgent = Map<string | null, { rows: TerminalRow[]; unfinished: Set<string> }>;

/** The access row revocationReason judges, from the check of the prefix the tunnel holds (checkAgentAccess). */
function accessRow(state: AgentAccessState | null, heldPrefix: string): AgentAccessRow | null {
  if (state === null) return null;
  return { credentialPrefix: state.credentialHeld ? heldPrefix : null, status: state.status, tenant: { status: state.tenantStatus } };
}

/**
 * Everything new tunnels need from PostgreSQL, for the set-ups of any tenants at once (issue 19: the set-up was 4
 * Prisma transactions per agent and most of the connector's CPU in a reconnect storm; then one transaction per
 * tenant, whose batch held one or two agents once the agents came back spread out after a kill -9):
 *  1. the access check of every input, in one statement (Database.checkAgentAccess: a revocation, a replaced
 *     credential or a disabled tenant committed since the upgrade is caught here);
 *  2. `claim` for the agents the check let in, and only for them (the ownership keys in Redis: the command bus routes
 *     the agent's commands by them, and another instance holding the agent closes its tunnel when it finds its key
 *     taken, so a tunnel the check refuses must never have touched them);
 *  3. one transaction for every tenant's claimed agents (Database.withTenantsSql), one statement per tenant under its
 *     own tenant's scope: the agents' `online` rows and events, and their enabled terminals with which of those have
 *     non-final operations. The claim comes before that read, so an operation the read does not see as unfinished was
 *     created after the claim and dispatched to this instance.
 * Nothing is written for an agent that was refused or not claimed. One result per input, in order: an Error when its
 * tenant's writes failed (the tenants of a transaction share its fate, so when it fails other than because PostgreSQL
 * is unavailable each tenant's writes are made again in a transaction of their own: one tenant's failure is its own).
 */
export async function setUpSessions(db: Database, inputs: readonly SessionSetUpInput[], claim: ClaimAgents): Promise<Array<SessionSetUp | Error>> {
  const access = await db.checkAgentAccess(inputs);
  const revoked = inputs.map((input, i) => revocationReason(accessRow(access[i]!, input.credentialPrefix), input.credentialPrefix));
  // The access decision is final for this batch: only now are the agents it let in claimed (in Redis; the claims of a
  // tick leave in one write).
  const checkedAt = inputs.flatMap((_, i) => (revoked[i] === null ? [i] : []));
  const claims: Array<ClaimOutcome | undefined> = [];
  if (checkedAt.length > 0) (await claim(checkedAt.map((i) => inputs[i]!))).forEach((outcome, k) => (claims[checkedAt[k]!] = outcome));
  const live = new Map<string, SessionSetUpInput[]>();
  inputs.forEach((input, i) => {
    if (claims[i] !== 'claimed') return;
    const own = live.get(input.tenantId);
    if (own) own.push(input);
    else live.set(input.tenantId, [input]);
  });
  const written = live.size === 0 ? new Map<string, TerminalsByAgent | Error>() : await writeTenants(db, live);
  return inputs.map((input, i): SessionSetUp | Error => {
    if (revoked[i] !== null) return { revoked: revoked[i]! };
    const outcome = claims[i]!;
    if (outcome !== 'claimed') return { revoked: null, claimed: false, error: outcome === 'gone' ? null : outcome };
    const terminals = written.get(input.tenantId)!;
    if (terminals instanceof Error) return terminals;
    const own = terminals.get(input.agentId);
    return { revoked: null, claimed: true, rows: own?.rows ?? [], unfinished: own?.unfinished ?? new Set<string>() };
  });
}

/** The tenants' set-up writes in one transaction, each tenant's on its own when it failed for one (inTenantsTransaction). */
async function writeTenants(db: Database, live: Map<string, SessionSetUpInput[]>): Promise<Map<string, TerminalsByAgent | Error>> {
  const tenants = [...live];
  // Each tenant's statement is sent before any answer is awaited: the batch's statements leave in one write.
  const outcomes = await inTenantsTransaction(
    db,
    tenants.map(([tenantId, inputs]) => ({ tenantId, fn: (tx: SqlClient) => writeSetUps(tx, tenantId, inputs) })),
  );
  return new Map(
    tenants.map(([tenantId], i) => {
      const outcome = outcomes[i]!;
      return [tenantId, 'error' in outcome ? (outcome.error as Error) : outcome.value];
    }),
  );
}

/**
 * One tenant's claimed agents, in the caller's transaction under that tenant's scope, in one statement: their `online`
 * rows (lastSeenAt, version, the tunnel that holds their presence from now on), their `agent.online` events (handed over
 * with the transaction's commit), and their enabled terminals with which of those have non-final operations.
 */
async function writeSetUps(tx: SqlClient, tenantId: string, live: readonly SessionSetUpInput[]): Promise<TerminalsByAgent> {
  const agentIds = live.map((input) => input.agentId);
  const events = newEvents(
    tenantId,
    live.map((input) => ({
      type: 'agent.online' as const,
      subjectType: 'agent' as const,
      subjectId: input.agentId,
      data: { agentId: input.agentId, version: input.version, instance: input.instanceId },
    })),
  );
  // The data-modifying CTEs run whether or not the SELECT reads them. The agents' rows are taken by id before the UPDATE
  // writes any (agentsLockedFirst: the order of the presence batches, which may share a transaction's tenants with this
  // one; before, in the order of the UPDATE's plan). The open operations are asked by completedAt (the
  // partial index TerminalOperation_open_by_terminal_idx), not the tenant's history: under row-level security a
  // condition on an enum column is never an index condition (enum equality is not LEAKPROOF).
  const rows = tx.$queryRaw<Array<TerminalRow & { unfinished: boolean }>>`
    WITH seen AS (
      UPDATE "Agent" a SET "lastSeenAt" = now(), "version" = COALESCE(x.version, a."version"), "presenceSession" = x.session, "updatedAt" = now()
      FROM unnest(${agentIds}::uuid[], ${live.map((input) => input.version)}::text[], ${live.map((input) => input.sessionId)}::uuid[]) AS x(id, version, session)
      WHERE a."id" = x.id AND ${agentsLockedFirst(agentIds)}),
    events AS (${insertEvents(tenantId, events)}),
    open AS (
      SELECT DISTINCT o."terminalId" FROM "TerminalOperation" o
      WHERE o."tenantId" = ${tenantId}::uuid AND o."completedAt" IS NULL AND o."state" IN (${OPEN_STATES_SQL})
        AND o."terminalId" IN (SELECT t."id" FROM "Terminal" t WHERE t."agentId" = ANY(${agentIds}::uuid[])))
    SELECT ${TERMINAL_ROW_COLUMNS}, t."id" IN (SELECT "terminalId" FROM open) AS "unfinished"
    FROM "Terminal" t
    WHERE t."agentId" = ANY(${agentIds}::uuid[]) AND t."status" <> 'DISABLED'
    ORDER BY t."createdAt" ASC, t."id" ASC`;
  // Handed over when the transaction commits (nothing, if it fails).
  for (const event of events) recordEvent(tx, event);
  const terminals: TerminalsByAgent = new Map();
  for (const { unfinished, ...row } of await rows) {
    let own = terminals.get(row.agentId);
    if (!own) terminals.set(row.agentId, (own = { rows: [], unfinished: new Set() }));
    own.rows.push(row);
    if (unfinished) own.unfinished.add(row.id);
  }
  return terminals;
}

interface Waiting {
  input: SessionSetUpInput;
  resolve: (result: SessionSetUp) => void;
  reject: (error: Error) => void;
}

/** Set-ups per batch at most. */
const MAX_BATCH = 200;

/** Batches of set-ups running at once. */
const CONCURRENT_BATCHES = 2;

/**
 * The set-ups of new tunnels, batched whatever their tenants (issue 19, reconnect storms): a batch is formed when it gets
 * its database slot (`slot`: DatabaseSlots), after the current turn of the event loop, from every set-up waiting then (at
 * most MAX_BATCH), and made by `transact` (setUpSessions: one access check, one claim, one transaction); CONCURRENT_BATCHES
 * run at once. Before, each tenant's set-ups were a batch of their own: after a connector's kill -9 the agents come back
 * spread out by their backoff, so a tenant's batch held one or two agents and each agent cost ~4 statements and a
 * commit. A set-up whose result is an Error, or whose batch failed, is rejected (its tunnel is refused with SETUP_FAILED
 * and its agent comes back after its backoff).
 */
export class SessionSetups {
  private waiting: Waiting[] = [];
  private running = 0;
  private scheduled = false;

  constructor(
    private readonly slot: <T>(fn: () => Promise<T>) => Promise<T>,
    /** The set-ups of a batch; one result per input, in order (an Error: that set-up failed). */
    private readonly transact: (inputs: SessionSetUpInput[]) => Promise<Array<SessionSetUp | Error>>,
  ) {}

  setUp(input: SessionSetUpInput): Promise<SessionSetUp> {
    return new Promise<SessionSetUp>((resolve, reject) => {
      this.waiting.push({ input, resolve, reject });
      this.schedule();
    });
  }

  /** Starts a batch after this turn of the event loop, when one may run and set-ups are waiting. */
  private schedule(): void {
    if (this.scheduled || this.running >= CONCURRENT_BATCHES || this.waiting.length === 0) return;
    this.scheduled = true;
    // The rest of this turn of the event loop first: the handshakes read in the same I/O phase (a storm's) join the
    // batch even when a slot is free at once (without it, an idle pool made every set-up a batch of one).
    setImmediate(() => {
      this.scheduled = false;
      this.start();
    });
  }

  private start(): void {
    if (this.running >= CONCURRENT_BATCHES || this.waiting.length === 0) return;
    this.running += 1;
    let batch: Waiting[] = [];
    void this.slot(async () => {
      // Formed now, when it has its slot: whatever arrived while it waited joins it.
      batch = this.waiting.splice(0, MAX_BATCH);
      return batch.length === 0 ? [] : this.transact(batch.map((waiting) => waiting.input));
    })
      .then(
        (results) =>
          batch.forEach((waiting, i) => {
            const result = results[i]!;
            if (result instanceof Error) waiting.reject(result);
            else waiting.resolve(result);
          }),
        (error: Error) => batch.forEach((waiting) => waiting.reject(error)),
      )
      .finally(() => {
        this.running -= 1;
        this.schedule();
      });
    // Another batch may form while this one waits for its slot or runs (up to CONCURRENT_BATCHES).
    this.schedule();
  }
}
