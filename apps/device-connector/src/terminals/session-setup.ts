import { publishEvents, type SqlClient } from '@payorch/db';
import { OPEN_STATES_SQL } from '@payorch/operations';

import { revocationReason, type RevocationReason } from '../access/access-check';
import { readAgentAccess } from '../access/access-read';
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

/**
 * Everything new tunnels of one tenant need from PostgreSQL, in the caller's tenant transaction (raw SQL, so it
 * runs on the bare pipelined driver of `Database.withTenantSql`; issue 19: the set-up was 4 Prisma transactions
 * per agent and most of the connector's CPU in a reconnect storm), for every agent of `inputs` at once (a storm's
 * set-ups of a tenant are batched: SessionSetups): the credential checks (a revocation committed since the
 * upgrade is caught here); then `claim` for the agents the check let in, and only for them (the ownership keys in
 * Redis: the command bus routes the agent's commands by them, and another instance holding the agent closes its
 * tunnel when it finds its key taken, so a tunnel the check refuses must never have touched them); then, sent
 * together, the claimed agents' `online` rows and events, and their enabled terminals with which of those have
 * non-final operations (one statement). The claim comes before that read, so an operation the read does not see as
 * unfinished was created after the claim and dispatched to this instance. Nothing is written for an agent that was
 * refused or not claimed. One result per input, in order.
 */
export async function setUpSessions(tx: SqlClient, inputs: readonly SessionSetUpInput[], claim: ClaimAgents): Promise<SessionSetUp[]> {
  const tenantId = inputs[0]!.tenantId;
  if (inputs.some((input) => input.tenantId !== tenantId)) throw new Error('setUpSessions: one tenant per batch');
  const access = await readAgentAccess(
    tx,
    inputs.map((input) => input.agentId),
  );
  const revoked = inputs.map((input) => revocationReason(access.get(input.agentId) ?? null, input.credentialPrefix));
  // The access decision is final for this batch: only now are the agents it let in claimed (in Redis, while this
  // transaction waits between two statements: one round trip for the batch, the claims of a tick leave in one write).
  const checkedAt = inputs.flatMap((_, i) => (revoked[i] === null ? [i] : []));
  const claims: Array<ClaimOutcome | undefined> = [];
  if (checkedAt.length > 0) (await claim(checkedAt.map((i) => inputs[i]!))).forEach((outcome, k) => (claims[checkedAt[k]!] = outcome));
  const live = inputs.filter((_, i) => claims[i] === 'claimed');
  const result = (i: number, terminals?: Map<string | null, { rows: TerminalRow[]; unfinished: Set<string> }>): SessionSetUp => {
    if (revoked[i] !== null) return { revoked: revoked[i]! };
    const outcome = claims[i]!;
    if (outcome !== 'claimed') return { revoked: null, claimed: false, error: outcome === 'gone' ? null : outcome };
    const own = terminals?.get(inputs[i]!.agentId);
    return { revoked: null, claimed: true, rows: own?.rows ?? [], unfinished: own?.unfinished ?? new Set<string>() };
  };
  if (live.length === 0) return inputs.map((_, i) => result(i));
  const agentIds = live.map((input) => input.agentId);
  const [, , rows] = await Promise.all([
    tx.$executeRaw`
      UPDATE "Agent" a SET "lastSeenAt" = now(), "version" = COALESCE(x.version, a."version"), "presenceSession" = x.session, "updatedAt" = now()
      FROM unnest(${agentIds}::uuid[], ${live.map((input) => input.version)}::text[], ${live.map((input) => input.sessionId)}::uuid[]) AS x(id, version, session)
      WHERE a."id" = x.id`,
    publishEvents(
      tx,
      tenantId,
      live.map((input) => ({
        type: 'agent.online' as const,
        subjectType: 'agent' as const,
        subjectId: input.agentId,
        data: { agentId: input.agentId, version: input.version, instance: input.instanceId },
      })),
    ),
    // The terminals and, in the same statement, which of them have non-final operations: the open operations (no
    // completedAt: the partial index TerminalOperation_open_by_terminal_idx), not the tenant's history. Asked by state
    // alone it read the tenant's every operation: under row-level security a condition on an enum column is never an
    // index condition (enum equality is not LEAKPROOF).
    tx.$queryRaw<Array<TerminalRow & { unfinished: boolean }>>`
      WITH open AS (
        SELECT DISTINCT o."terminalId" FROM "TerminalOperation" o
        WHERE o."tenantId" = ${tenantId}::uuid AND o."completedAt" IS NULL AND o."state" IN (${OPEN_STATES_SQL})
          AND o."terminalId" IN (SELECT t."id" FROM "Terminal" t WHERE t."agentId" = ANY(${agentIds}::uuid[])))
      SELECT ${TERMINAL_ROW_COLUMNS}, t."id" IN (SELECT "terminalId" FROM open) AS "unfinished"
      FROM "Terminal" t
      WHERE t."agentId" = ANY(${agentIds}::uuid[]) AND t."status" <> 'DISABLED'
      ORDER BY t."createdAt" ASC, t."id" ASC`,
  ]);
  const terminalsOf = new Map<string | null, { rows: TerminalRow[]; unfinished: Set<string> }>();
  for (const { unfinished, ...row } of rows) {
    let own = terminalsOf.get(row.agentId);
    if (!own) terminalsOf.set(row.agentId, (own = { rows: [], unfinished: new Set() }));
    own.rows.push(row);
    if (unfinished) own.unfinished.add(row.id);
  }
  return inputs.map((_, i) => result(i, terminalsOf));
}

interface Waiting {
  input: SessionSetUpInput;
  resolve: (result: SessionSetUp) => void;
  reject: (error: Error) => void;
}

/** Set-ups per transaction at most. */
const MAX_BATCH = 200;

/**
 * The set-ups of one tenant's tunnels, batched (issue 19, reconnect storms): a tenant has one batch at a time,
 * formed when it gets its database slot (`slot`: DatabaseSlots) after the current turn of the event loop, so the
 * set-ups of the tenant that arrived in the same I/O phase, while the previous batch ran or while this one waited
 * for its slot are made by one transaction (`transact`: setUpSessions): a storm over a 50-till chain is a few
 * transactions, not 50. A failed batch rejects each of its set-ups (each tunnel is then refused with SETUP_FAILED
 * and its agent comes back after its backoff).
 */
export class SessionSetups {
  private readonly tenants = new Map<string, Waiting[]>();

  constructor(
    private readonly slot: <T>(fn: () => Promise<T>) => Promise<T>,
    private readonly transact: (tenantId: string, inputs: SessionSetUpInput[]) => Promise<SessionSetUp[]>,
  ) {}

  setUp(input: SessionSetUpInput): Promise<SessionSetUp> {
    return new Promise<SessionSetUp>((resolve, reject) => {
      const queue = this.tenants.get(input.tenantId);
      if (queue) return void queue.push({ input, resolve, reject });
      const fresh = [{ input, resolve, reject }];
      this.tenants.set(input.tenantId, fresh);
      void this.drain(input.tenantId, fresh);
    });
  }

  /** Runs the tenant's batches one after the other until none is waiting. */
  private async drain(tenantId: string, queue: Waiting[]): Promise<void> {
    while (queue.length > 0) {
      // The rest of this turn of the event loop first: the handshakes read in the same I/O phase (a storm's) join the
      // batch even when a slot is free at once (without it, an idle pool made every set-up a batch of one).
      await new Promise((resolve) => setImmediate(resolve));
      let batch: Waiting[] = [];
      try {
        const results = await this.slot(() => {
          batch = queue.splice(0, MAX_BATCH);
          return this.transact(
            tenantId,
            batch.map((waiting) => waiting.input),
          );
        });
        batch.forEach((waiting, i) => waiting.resolve(results[i]!));
      } catch (error) {
        for (const waiting of batch) waiting.reject(error as Error);
      }
    }
    this.tenants.delete(tenantId);
  }
}
