import { Inject, Injectable } from '@nestjs/common';
import { Counter } from 'prom-client';

import { type Database, eventIdentity, expectEvents, publishEvent, publishEvents, recordEvent, SharedTenantTransactions, type SqlClient } from '@payorch/db';
import type { Logger, Registry } from '@payorch/logging';

import { DATABASE, INSTANCE_ID, LOGGER, REGISTRY } from '../tokens';
import { DatabaseSlots } from '../tunnel/database-slots';
import { agentsLockedFirst, lockAgentsThenTerminals, terminalsLockedFirst } from './agent-locks';

export interface AgentRef {
  agentId: string;
  tenantId: string;
}

/**
 * An agent as one of its tunnels (AgentSession.id) speaks for it: status writes and the tunnel's offline apply only
 * while Agent.presenceSession names that tunnel (its set-up set it), so a late write of an older tunnel never
 * overwrites a newer one's, on this instance or another.
 */
export interface SessionRef extends AgentRef {
  session: string;
}

/** Attempts of one presence batch before its writes are given up (the caller then refuses the tunnel). */
export const PRESENCE_WRITE_ATTEMPTS = 3;
/** Pause before each retry of a failed batch (attempt 2, attempt 3). */
const RETRY_DELAYS_MS = [100, 400] as const;

/** Longest `detail` of a status mark (an agent's link report, a failed open: its event's data), in UTF-16 code units. */
const MAX_DETAIL_CHARS = 200;
/** Terminal.info as stored (`storableInfo`): nesting, entries per object or array, string length, and all of it (JSON characters, about). */
export const INFO_LIMITS = { depth: 8, entries: 256, stringChars: 1024, totalChars: 32 * 1024 } as const;

/** NUL (PostgreSQL refuses it in text and jsonb) and the other C0/C1 control characters. */
const CONTROL_CHARACTERS = /[\u0000-\u001f\u007f-\u009f]/g;
/** A UTF-16 surrogate without its pair (jsonb refuses it; a cut in the middle of a pair leaves one). */
const LONE_SURROGATE = /[\uD800-\uDBFF](?![\uDC00-\uDFFF])|(?<![\uD800-\uDBFF])[\uDC00-\uDFFF]/g;

/**
 * Text from an agent or a terminal made storable: at most `maxChars` code units, NUL, lone surrogates (and, with
 * `controls`, every control character) replaced by U+FFFD. Before, one `detail` or info string with a NUL (or an
 * emoji cut in half) failed its whole batch — the presence writes of every other agent of the tenant batched with it —
 * three times, and the tunnels whose set-up waited for them were refused (SETUP_FAILED).
 */
export function storableText(text: string, maxChars: number, controls = false): string {
  const cut = text.length > maxChars ? text.slice(0, maxChars) : text;
  return cut.replace(controls ? CONTROL_CHARACTERS : /\u0000/g, '\uFFFD').replace(LONE_SURROGATE, '\uFFFD');
}

/**
 * A terminal's info (what its driver read from the terminal: SSI's `raw` is whatever the terminal sent) made storable
 * as Terminal.info: strings as `storableText`, numbers finite, bigints as strings, at most INFO_LIMITS.depth levels and
 * INFO_LIMITS.entries entries per level (keys cut like strings), and once INFO_LIMITS.totalChars of JSON are taken the
 * rest left out; `truncated: true` says something was. Deeper JSON than PostgreSQL's stack takes, a 64 KiB string or a
 * NUL failed the tenant's presence batch (see `storableText`).
 */
export function storableInfo(info: Record<string, unknown>): Record<string, unknown> {
  let left: number = INFO_LIMITS.totalChars;
  let truncated = false;
  const take = (chars: number): boolean => {
    if (left < chars) {
      truncated = true;
      return false;
    }
    left -= chars;
    return true;
  };
  const walk = (input: unknown, depth: number): unknown => {
    const value =
      input !== null && typeof input === 'object' && typeof (input as { toJSON?: unknown }).toJSON === 'function'
        ? (input as { toJSON(): unknown }).toJSON()
        : input;
    if (typeof value === 'string') {
      if (value.length > INFO_LIMITS.stringChars) truncated = true;
      const text = storableText(value, INFO_LIMITS.stringChars);
      return take(text.length + 2) ? text : undefined;
    }
    if (typeof value === 'bigint') return walk(value.toString(), depth);
    if (typeof value === 'number') return take(24) ? (Number.isFinite(value) ? value : null) : undefined;
    if (typeof value === 'boolean' || value === null) return take(5) ? value : undefined;
    if (typeof value !== 'object' || depth >= INFO_LIMITS.depth) {
      if (value !== undefined && typeof value !== 'function' && typeof value !== 'symbol') truncated = true;
      return undefined;
    }
    if (!take(2)) return undefined;
    const entries: Array<[string, unknown]> = Array.isArray(value) ? value.map((item, i) => [String(i), item]) : Object.entries(value);
    if (entries.length > INFO_LIMITS.entries) truncated = true;
    const kept: Array<[string, unknown]> = [];
    for (const [key, item] of entries.slice(0, INFO_LIMITS.entries)) {
      const name = Array.isArray(value) ? key : storableText(key, INFO_LIMITS.stringChars);
      if (!take(name.length + 4)) break;
      const stored = walk(item, depth + 1);
      if (stored !== undefined) kept.push([name, stored]);
    }
    return Array.isArray(value) ? kept.map(([, item]) => item) : Object.fromEntries(kept);
  };
  const stored = (walk(info, 0) ?? {}) as Record<string, unknown>;
  return truncated ? { ...stored, truncated: true } : stored;
}

/** A terminal presence or info write that still failed after PRESENCE_WRITE_ATTEMPTS attempts. */
export class PresenceWriteError extends Error {
  constructor(
    readonly agentId: string,
    cause: Error,
  ) {
    super(`could not record presence after ${PRESENCE_WRITE_ATTEMPTS} attempts: ${cause.message}`, { cause });
  }
}

interface Waiter {
  agentId: string;
  resolve: () => void;
  reject: (error: Error) => void;
}

/** What is to be written for one terminal (its latest status and/or info: later marks replace earlier ones), or for an agent seen alive (terminalId null). */
interface TerminalMark {
  terminalId: string | null;
  agentId: string;
  /** The tunnel a status mark comes from (SessionRef): written only while it holds the agent's presence. */
  session?: string;
  status?: 'ONLINE' | 'OFFLINE';
  detail?: string;
  info?: Record<string, unknown>;
  waiters: Waiter[];
}

interface TenantQueue {
  marks: Map<string, TerminalMark>;
  /** A batch of this tenant is being written: new marks wait for the next one. */
  writing: boolean;
}

/**
 * Agent and terminal presence: Terminal.status ONLINE/OFFLINE + lastSeenAt and Terminal.info,
 * Agent.lastSeenAt/version, and the `terminal.*` / `agent.*` events, written in tenant transactions
 * (transactional outbox). Events are published on transitions only; DISABLED terminals are never touched.
 *
 * Terminal status and info writes are coalesced per tenant (issue 19, reconnect storms): while one
 * batch of a tenant is being written, the marks of every other terminal of that tenant gather, and
 * the next batch writes them all in one transaction (one UPDATE for the statuses, one for the infos,
 * an INSERT per event). Nothing is lost silently: a failed batch is retried (PRESENCE_WRITE_ATTEMPTS in
 * all, counted in `payorch_connector_presence_write_retries_total`); when it still fails, every
 * caller's promise rejects with PresenceWriteError (counted in `payorch_connector_presence_write_failures_total`)
 * and, for the writes of a tunnel's set-up (its terminals' first link probe and info), the TerminalHub
 * refuses the tunnel (SETUP_FAILED), so the agent comes back after its backoff and they are made again;
 * a later write (a link opened for a command, an agent's link report) is logged and counted, and the
 * tunnel, with its commands in flight, stays up. The agent's `online` row is written in the hub's set-up transaction
 * (session-setup.ts), the `offline` one when the tunnel closed (best effort: the next set-up rewrites it).
 */
@Injectable()
export class TerminalPresence {
  private readonly queues = new Map<string, TenantQueue>();
  private readonly retries: Counter;
  private readonly failures: Counter;
  /** The tenants' status batches of one turn of the event loop share a transaction (and a database slot). */
  private readonly shared: SharedTenantTransactions;

  constructor(
    @Inject(DATABASE) private readonly db: Database,
    @Inject(LOGGER) private readonly logger: Logger,
    @Inject(INSTANCE_ID) private readonly instanceId: string,
    @Inject(REGISTRY) registry: Registry,
    slots: DatabaseSlots,
  ) {
    this.shared = new SharedTenantTransactions(db, (fn) => slots.run(fn));
    this.retries = new Counter({
      name: 'payorch_connector_presence_write_retries_total',
      help: 'Presence/info batches and tunnel offline writes written again after a failed attempt.',
      registers: [registry],
    });
    this.failures = new Counter({
      name: 'payorch_connector_presence_write_failures_total',
      help: 'Terminal presence/info writes (their tunnels are refused with SETUP_FAILED) and tunnel offline writes given up after every attempt.',
      registers: [registry],
    });
  }

  /**
   * The tunnel closed: the agent and all its terminals are offline — unless another tunnel of the agent holds its
   * presence by now (it reconnected, here or on another instance: Agent.presenceSession names that one), whose state
   * stands; then nothing is written. The Agent row is locked first, as status batches do. Retried like a status batch
   * (PRESENCE_WRITE_ATTEMPTS, counted); when every attempt failed it is logged and counted as a failure, and the
   * agent's next set-up writes presence again. `alsoEnded`: earlier tunnels of the agent that ended on this instance
   * without writing their offline (a newer tunnel of the agent was here then, and its set-up may never have taken
   * their presence over): their presence is released too.
   */
  async agentOffline(agent: SessionRef, reason: string, alsoEnded: readonly string[] = []): Promise<void> {
    for (let attempt = 1; ; attempt++) {
      try {
        await this.writeOffline(agent, reason, [agent.session, ...alsoEnded]);
        return;
      } catch (error) {
        if (attempt < PRESENCE_WRITE_ATTEMPTS) {
          this.retries.inc();
          await new Promise((resolve) => setTimeout(resolve, RETRY_DELAYS_MS[attempt - 1]));
          continue;
        }
        this.failures.inc();
        this.logger.warn({ agentId: agent.agentId, err: (error as Error).message }, 'could not record agent offline');
        return;
      }
    }
  }

  private async writeOffline(agent: SessionRef, reason: string, sessions: readonly string[]): Promise<void> {
    await this.db.withTenant(agent.tenantId, async (tx) => {
      const released = await tx.$executeRaw`
        UPDATE "Agent" SET "lastSeenAt" = now(), "presenceSession" = NULL
        WHERE "id" = ${agent.agentId}::uuid AND "presenceSession" = ANY(${sessions}::uuid[])`;
      if (released === 0) return;
      await publishEvent(tx, agent.tenantId, {
        type: 'agent.offline',
        subjectType: 'agent',
        subjectId: agent.agentId,
        data: { agentId: agent.agentId, reason },
      });
      const online = await tx.terminal.findMany({ where: { agentId: agent.agentId, status: 'ONLINE' }, select: { id: true } });
      if (online.length === 0) return;
      // By id (terminalsLockedFirst), as every writer of several terminals' rows takes them.
      const ids = online.map((t) => t.id);
      await tx.$executeRaw`
        UPDATE "Terminal" SET "status" = 'OFFLINE', "updatedAt" = now()
        WHERE "id" = ANY(${ids}::uuid[]) AND "status" = 'ONLINE' AND ${terminalsLockedFirst(ids)}`;
      await publishEvents(
        tx,
        agent.tenantId,
        online.map(({ id }) => ({
          type: 'terminal.offline' as const,
          subjectType: 'terminal' as const,
          subjectId: id,
          data: { terminalId: id, agentId: agent.agentId, reason: 'tunnel closed' },
        })),
      );
    });
  }

  /**
   * A link to the terminal opened (ONLINE) or failed (OFFLINE). Only the agent's own terminals are
   * touched. Resolves once written; rejects with PresenceWriteError when every attempt failed.
   */
  terminal(agent: SessionRef, terminalId: string, online: boolean, detail?: string): Promise<void> {
    return this.mark(agent, terminalId, (mark) => {
      mark.status = online ? 'ONLINE' : 'OFFLINE';
      mark.detail = detail === undefined ? undefined : storableText(detail, MAX_DETAIL_CHARS, true);
    });
  }

  /** Stores the terminal's info (Terminal.info, made storable: `storableInfo`); same batching and failure contract as `terminal`. */
  terminalInfo(agent: AgentRef, terminalId: string, info: Record<string, unknown>): Promise<void> {
    const stored = storableInfo(info);
    return this.mark(agent, terminalId, (mark) => (mark.info = stored));
  }

  /** The agent answered a ping: Agent.lastSeenAt, batched with the tenant's other agents (one UPDATE every few seconds, not one transaction per pong). */
  agentSeen(agent: AgentRef): Promise<void> {
    return this.mark(agent, null, () => undefined);
  }

  private mark(agent: AgentRef | SessionRef, terminalId: string | null, apply: (mark: TerminalMark) => void): Promise<void> {
    let queue = this.queues.get(agent.tenantId);
    if (!queue) this.queues.set(agent.tenantId, (queue = { marks: new Map(), writing: false }));
    // Keyed by agent and tunnel too: each write is guarded by the terminal still belonging to that agent, and a status
    // by that tunnel still holding the agent's presence (an older tunnel's mark does not replace a newer one's).
    const session = 'session' in agent ? agent.session : undefined;
    const key = `${agent.agentId}:${session ?? ''}:${terminalId ?? 'agent'}`;
    let mark = queue.marks.get(key);
    // Every field present from the start, in one order: marks keep one hidden class whatever `apply` sets, so the batch
    // writer's optimised code is thrown away less often in a storm (`--trace-deopt`, 5,000 agents: writeBatch was compiled
    // three times, twice after a 'wrong map' deopt, ~200 ms of V8's compiler threads; now twice).
    if (!mark)
      queue.marks.set(key, (mark = { terminalId, agentId: agent.agentId, session, status: undefined, detail: undefined, info: undefined, waiters: [] }));
    apply(mark);
    const written = new Promise<void>((resolve, reject) => mark.waiters.push({ agentId: agent.agentId, resolve, reject }));
    if (!queue.writing) {
      queue.writing = true;
      // The rest of this tick's marks (other agents of the tenant) join the batch.
      setImmediate(() => void this.drain(agent.tenantId, queue));
    }
    return written;
  }

  /** Writes the tenant's batches one after the other until nothing is left. */
  private async drain(tenantId: string, queue: TenantQueue): Promise<void> {
    while (queue.marks.size > 0) {
      const batch = queue.marks;
      queue.marks = new Map();
      await this.write(tenantId, batch);
    }
    queue.writing = false;
    if (this.queues.get(tenantId) === queue) this.queues.delete(tenantId);
  }

  private async write(tenantId: string, batch: Map<string, TerminalMark>): Promise<void> {
    const marks = [...batch.values()];
    for (let attempt = 1; ; attempt++) {
      try {
        // Shared with the batches of other tenants written in the same turn (issue 19: after a kill -9 the agents come back
        // spread out, a tenant's batch held one or two terminals, and each was a transaction of its own). One tenant's
        // failure is its own: the shared transaction failed, each batch is written again alone (SharedTenantTransactions).
        await this.shared.run(tenantId, (tx) => this.writeBatch(tx, tenantId, marks));
        for (const mark of marks) for (const waiter of mark.waiters) waiter.resolve();
        return;
      } catch (error) {
        if (attempt < PRESENCE_WRITE_ATTEMPTS) {
          this.retries.inc();
          this.logger.warn({ tenantId, terminals: marks.length, attempt, err: (error as Error).message }, 'presence write failed; retrying');
          await new Promise((resolve) => setTimeout(resolve, RETRY_DELAYS_MS[attempt - 1]));
          continue;
        }
        this.failures.inc(marks.length);
        this.logger.error({ tenantId, terminals: marks.length, err: (error as Error).message }, 'presence write failed for good');
        for (const mark of marks) for (const waiter of mark.waiters) waiter.reject(new PresenceWriteError(waiter.agentId, error as Error));
        return;
      }
    }
  }

  private async writeBatch(tx: SqlClient, tenantId: string, marks: TerminalMark[]): Promise<void> {
    const seen = [...new Set(marks.filter((m) => m.terminalId === null).map((m) => m.agentId))];
    const statuses = marks.filter((m) => m.status !== undefined);
    const infos = marks.filter((m) => m.info !== undefined);
    // Each status mark's event, made here (its id and time: eventIdentity, so events keep their order).
    const events = statuses.map((m) => ({
      ...eventIdentity(),
      type: m.status === 'ONLINE' ? ('terminal.online' as const) : ('terminal.offline' as const),
      data: { terminalId: m.terminalId!, agentId: m.agentId, ...(m.detail && { detail: m.detail }) },
    }));
    const writes: Array<PromiseLike<unknown>> = [];
    /** Where the statuses' UPDATE is in `writes`, when there are statuses. */
    let moved: number | undefined;
    // The lock order (agent-locks.ts): a batch takes its agents' rows by id before any other row; every statement is
    // sent before any answer is awaited. A batch of seen agents only, or of infos only, does it in its one statement
    // (agentsLockedFirst); the others lock every agent of the batch in a statement of their own first (so a status
    // write's presence check reads the rows as they are once locked). Before, the seen agents' UPDATE went first and the
    // status agents' rows were taken after it, and an info write took no agent row at all: a set-up (or a tunnel's
    // offline, which takes the agent's row, then its terminals) holding one of those rows and waiting for another could
    // deadlock with the batch.
    if (statuses.length > 0 || (seen.length > 0 && infos.length > 0)) {
      // Held to the end of the transaction: a tunnel's offline cannot change which tunnel holds an agent's presence
      // until this batch has committed, and then it sees its writes.
      // Then every terminal of the batch, by id, before the status and info writes take theirs each in its own statement.
      const terminals = [...statuses, ...infos].map((m) => m.terminalId!);
      writes.push(tx.$queryRaw(lockAgentsThenTerminals([...seen, ...statuses.map((m) => m.agentId), ...infos.map((m) => m.agentId)], terminals)));
    }
    if (seen.length > 0) writes.push(tx.$executeRaw`UPDATE "Agent" SET "lastSeenAt" = now() WHERE "id" = ANY(${seen}::uuid[]) AND ${agentsLockedFirst(seen)}`);
    if (statuses.length > 0) {
      // Old and new status per row; lastSeenAt on every ONLINE mark. Only the marks of the tunnel that holds the agent's
      // presence (Agent.presenceSession) are applied. Each mark's event (`events`) is inserted in the same statement for
      // the rows whose status changed (issue 19: the INSERT was a statement of its own, ~0.6 per agent in a storm).
      expectEvents(tx);
      const update = tx.$queryRaw<Array<{ n: string | bigint }>>`
        WITH x AS (
          SELECT m.* FROM unnest(${statuses.map((m) => m.terminalId)}::uuid[], ${statuses.map((m) => m.agentId)}::uuid[], ${statuses.map((m) => m.status!)}::text[],
            ${statuses.map((m) => m.session ?? null)}::uuid[], ${events.map((e) => e.id)}::uuid[], ${events.map((e) => JSON.stringify(e.data))}::text[],
            ${events.map((e) => e.createdAt)}::timestamptz[]) WITH ORDINALITY AS m(id, agent, status, session, event, data, at, n)
          JOIN "Agent" a ON a."id" = m.agent AND a."presenceSession" = m.session),
        old AS (SELECT t."id", t."status"::text AS status FROM "Terminal" t JOIN x ON t."id" = x.id AND t."agentId" = x.agent WHERE t."status" <> 'DISABLED' ORDER BY t."id" FOR NO KEY UPDATE OF t),
        changed AS (
          UPDATE "Terminal" t
          SET "status" = x.status::"TerminalStatus",
              "lastSeenAt" = CASE WHEN x.status = 'ONLINE' THEN now() ELSE t."lastSeenAt" END,
              "updatedAt" = CASE WHEN old.status <> x.status THEN now() ELSE t."updatedAt" END
          FROM x JOIN old ON old."id" = x.id
          WHERE t."id" = x.id
          RETURNING x.n, x.event, x.data, x.at, x.status, old.status <> x.status AS moved),
        published AS (
          INSERT INTO "DomainEvent" ("id", "tenantId", "type", "subjectType", "subjectId", "data", "createdAt")
          SELECT c.event, ${tenantId}::uuid, CASE WHEN c.status = 'ONLINE' THEN 'terminal.online' ELSE 'terminal.offline' END, 'terminal',
            (c.data::jsonb ->> 'terminalId'), c.data::jsonb, c.at
          FROM changed c WHERE c.moved
          RETURNING "id")
        SELECT c.n FROM changed c JOIN published p ON p."id" = c.event`;
      moved = writes.push(update) - 1;
    }
    if (infos.length > 0) {
      writes.push(tx.$executeRaw`
        UPDATE "Terminal" t SET "info" = x.info::jsonb, "infoReadAt" = now(), "updatedAt" = now()
        FROM unnest(${infos.map((m) => m.terminalId)}::uuid[], ${infos.map((m) => m.agentId)}::uuid[], ${infos.map((m) => JSON.stringify(m.info))}::text[]) AS x(id, agent, info)
        WHERE t."id" = x.id AND t."agentId" = x.agent
          AND ${agentsLockedFirst(infos.map((m) => m.agentId))} AND ${terminalsLockedFirst(infos.map((m) => m.terminalId!))}`);
    }
    // Sent together (one round trip on the bare driver), in this order.
    const answers = await Promise.all(writes);
    if (moved === undefined) return;
    // The events of the rows whose status changed: handed over when the transaction commits.
    for (const { n } of answers[moved] as Array<{ n: string | bigint }>) {
      const event = events[Number(n) - 1]!;
      recordEvent(tx, { ...event, tenantId, subjectType: 'terminal', subjectId: event.data.terminalId });
    }
  }
}
