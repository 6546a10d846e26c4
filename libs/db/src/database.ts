import type pg from 'pg';

import { isUuid, PayorchError } from '@payorch/domain';

import { createPool, Prisma, type PrismaClient, prismaOnPool, type TransactionClient } from './client';
import { collectEvents, type PublishedEvent, writesEvents } from './events';
import { isStalePreparedStatement, statementName } from './prepared-statements';
import { isStatementError, SqlTransaction } from './sql-transaction';

export interface ApiKeyLookup {
  id: string;
  tenantId: string;
  hash: string;
  scopes: string[];
  revokedAt: Date | null;
  expiresAt: Date | null;
}

export interface AgentCredentialLookup {
  id: string;
  tenantId: string;
  credentialHash: string | null;
  status: 'PENDING_ENROLLMENT' | 'ACTIVE' | 'REVOKED';
}

/** What a tunnel's access check asks about one agent: the credential prefix the tunnel authenticated with. */
export interface AgentAccessCheck {
  agentId: string;
  tenantId: string;
  credentialPrefix: string;
}

/** The agent's access now (checkAgentAccess); absent (null) when it was deleted or is not of that tenant. */
export interface AgentAccessState {
  status: 'PENDING_ENROLLMENT' | 'ACTIVE' | 'REVOKED';
  tenantStatus: 'ACTIVE' | 'DISABLED';
  /** The prefix asked about is still the agent's credential. */
  credentialHeld: boolean;
}

export interface AgentEnrollmentLookup {
  id: string;
  tenantId: string;
  enrollmentTokenHash: string | null;
  enrollmentExpiresAt: Date | null;
  status: 'PENDING_ENROLLMENT' | 'ACTIVE' | 'REVOKED';
}

export interface WithTenantSqlOptions {
  /**
   * `fn` issues all its statements before its first `await` (it decides nothing on an answer before the end),
   * so `COMMIT` is written right behind them: the whole transaction in one round trip. A statement issued
   * after that is refused (SqlTransaction), never run outside the transaction.
   */
  pipelineCommit?: boolean;
}

export interface WithTenantOptions {
  /** Interactive transaction timeout (ms). */
  timeout?: number;
  isolationLevel?: 'ReadCommitted' | 'RepeatableRead' | 'Serializable';
}

/**
 * The application's only door to PostgreSQL. It connects as the `payorch_app` role, which row-level
 * security confines to the tenant set by `withTenant`; there is no API here to run an unscoped query
 * on a tenant table. The three `find*` lookups are SECURITY DEFINER functions for authentication.
 */
export interface DatabaseOptions {
  /**
   * Receives the domain events of every committed `withTenant` transaction (e.g. to PUBLISH them to
   * the tenants' live channels). Called after commit only; must not throw (errors are swallowed).
   */
  onCommitted?: (events: readonly PublishedEvent[]) => void;
  /** Runs in close(), after the pool is closed (e.g. to quit the connection onCommitted publishes on). */
  onClose?: () => Promise<void>;
  /**
   * The hot path's statements (`withTenantSql`, the API-key lookup) are prepared on the server once per connection
   * (default true; prepared-statements.ts). Off for a pooler that cannot keep them (PgBouncer before 1.21).
   */
  preparedStatements?: boolean;
  /** Bound of a committed transaction's wait for another one's COMMIT to number its events (default SEQUENCE_DEFER_MS). */
  sequenceDeferMs?: number;
}

/**
 * A SqlTransaction's limits, in place of the interactive transaction's 10 s timeout: a statement, and an idle
 * wait for the process between two statements (holding the row locks), end at 10 s.
 */
const SQL_TRANSACTION_LIMIT = '10s';

/**
 * The tenant scope and the limits of a SqlTransaction, transaction-local, in one statement. The tenant id is a
 * checked UUID (isUuid), never free text.
 */
const scopeSqlTransaction = (tenantId: string) =>
  Prisma.sql`SELECT set_config('app.tenant_id', ${tenantId}, true), set_config('statement_timeout', ${SQL_TRANSACTION_LIMIT}, true),
    set_config('idle_in_transaction_session_timeout', ${SQL_TRANSACTION_LIMIT}, true)`;

/** The limits of a multi-tenant SqlTransaction (withTenantsSql), which has no tenant scope of its own. */
const limitSqlTransaction = Prisma.sql`SELECT set_config('statement_timeout', ${SQL_TRANSACTION_LIMIT}, true),
    set_config('idle_in_transaction_session_timeout', ${SQL_TRANSACTION_LIMIT}, true)`;

/** Events numbered per payorch_sequence_events call (a backlog is numbered in several). */
const SEQUENCE_BATCH = 1000;
const SEQUENCE_EVENTS = `SELECT * FROM payorch_sequence_events(${SEQUENCE_BATCH}::int)`;

/**
 * Longest a committed transaction's events wait for another open transaction of this process that wrote events too
 * (its COMMIT then carries one sequencer call for both, afterCommit): the bound of that deferral, not its usual
 * length (the other transaction's remaining round trip).
 */
export const SEQUENCE_DEFER_MS = 5;

/** A promise and the function that resolves it. */
function ending(): { ended: Promise<void>; end: () => void } {
  let end!: () => void;
  const ended = new Promise<void>((resolve) => (end = resolve));
  return { ended, end };
}

/** A committed transaction's events, and its place in this process's commit order (Database.commits). */
interface CommittedBatch {
  events: PublishedEvent[];
  commit: number;
}

export class Database {
  /** Events of committed transactions waiting for the background sequencer (afterCommit). */
  private readonly unsequenced: CommittedBatch[] = [];
  private sequencer: Promise<void> | undefined;
  /** A sequencer call is on its way with a COMMIT whose transaction has not handed its events over yet. */
  private sequencerOnItsWay = false;
  /** Ends when the transaction whose COMMIT carries that call has ended (eventsSettled waits for it). */
  private carrier: { ended: Promise<void>; end: () => void } | undefined;
  /** The events of this process's open bare-driver transactions (withTenantSql), while they are open. */
  private readonly writing = new Set<PublishedEvent[]>();
  /** Commits of transactions with events, counted when their COMMIT was answered. */
  private commits = 0;
  /** Set while committed events wait for another open transaction's COMMIT (afterCommit): ends the wait. */
  private deferral: NodeJS.Timeout | undefined;
  private closing: Promise<void> | undefined;

  /**
   * @param sqlPool the `pg` pool under `prisma` (Database.connect), on which `withTenantSql` runs; without one,
   * `withTenantSql` runs through Prisma.
   */
  constructor(
    readonly prisma: PrismaClient,
    private readonly options: DatabaseOptions = {},
    private readonly sqlPool?: pg.Pool,
  ) {}

  /**
   * One `pg` pool of `poolSize` connections (default 10, opened on demand) in pipeline mode, shared by Prisma
   * and the hot path (`withTenantSql`, `querySql`, the API-key lookup, the event sequencer).
   */
  static connect(appDatabaseUrl: string, poolSize?: number, options: DatabaseOptions = {}): Database {
    const pool = createPool(appDatabaseUrl, { max: poolSize });
    return new Database(prismaOnPool(pool), options, pool);
  }

  /**
   * Runs `fn` in an interactive transaction whose first statement scopes it to `tenantId`
   * (transaction-local, so it never leaks to the pooled connection).
   */
  async withTenant<T>(tenant: string | { tenantId: string }, fn: (tx: TransactionClient) => Promise<T>, options: WithTenantOptions = {}): Promise<T> {
    const tenantId = typeof tenant === 'string' ? tenant : tenant.tenantId;
    if (!isUuid(tenantId)) throw new PayorchError('TENANT_INVALID', 'tenant id must be a UUID');
    let events: PublishedEvent[] = [];
    const result = await this.prisma.$transaction(
      async (tx) => {
        events = collectEvents(tx);
        await tx.$executeRaw`SELECT set_config('app.tenant_id', ${tenantId}, true)`;
        return fn(tx);
      },
      { timeout: options.timeout ?? 10_000, maxWait: 5_000, isolationLevel: options.isolationLevel },
    );
    if (events.length > 0) this.afterCommit(events);
    return result;
  }

  /**
   * `withTenant` for the hot path (the operation write path): the same tenant scope, RLS and event hand-over,
   * on a `pg` connection of the shared pool whose statements are pipelined (SqlTransaction). `fn` gets the raw-SQL
   * surface only (`$queryRaw`, `$executeRaw`, `defer`): repository functions written against `SqlClient`
   * run in it unchanged. Read committed; instead of the interactive transaction's timeout, a statement and an
   * idle wait between two statements end after 10 s. `fn` waits on nothing but its statements.
   */
  async withTenantSql<T>(
    tenant: string | { tenantId: string },
    fn: (tx: SqlTransaction | TransactionClient) => Promise<T>,
    options: WithTenantSqlOptions = {},
  ): Promise<T> {
    const tenantId = typeof tenant === 'string' ? tenant : tenant.tenantId;
    if (!isUuid(tenantId)) throw new PayorchError('TENANT_INVALID', 'tenant id must be a UUID');
    if (this.sqlPool === undefined) return this.withTenant(tenantId, fn);
    return this.runSql(this.sqlPool, tenantId, fn, options);
  }

  /**
   * One bare-driver transaction for the work of several tenants (issue 19: a reconnect storm's tunnel set-ups and
   * presence writes, a few agents of each of many tenants at a time, cost a transaction per tenant): `fn` sends each
   * tenant's statements through `tx.forTenant(tenantId)`, which sends them behind that tenant's scope, so each runs
   * under its own tenant's row-level security as in `withTenantSql`; a statement sent on `tx` itself is refused. Its
   * limits, pipelining and event hand-over are withTenantSql's. The tenants share its fate: one statement that fails
   * rolls back every tenant's writes, so a caller that must keep tenants apart runs each again on its own
   * (SessionSetups, TerminalPresence). Needs the bare-driver pool (Database.connect).
   */
  async withTenantsSql<T>(fn: (tx: SqlTransaction) => Promise<T>, options: WithTenantSqlOptions = {}): Promise<T> {
    if (this.sqlPool === undefined) throw new Error('withTenantsSql needs the bare-driver pool (Database.connect)');
    return this.runSql(this.sqlPool, null, (tx) => fn(tx as SqlTransaction), options);
  }

  /** withTenantSql / withTenantsSql (`tenantId` null: several tenants, each statement scoped by forTenant). */
  private async runSql<T>(
    pool: pg.Pool,
    tenantId: string | null,
    fn: (tx: SqlTransaction | TransactionClient) => Promise<T>,
    options: WithTenantSqlOptions,
  ): Promise<T> {
    const pipelineCommit = options.pipelineCommit ?? false;
    const client = await pool.connect();
    let carriesSequencer = false;
    /** With a carried sequencer call: the commits it numbers (those answered before it was sent). */
    let covers = 0;
    // With events and no sequencer run going or on its way, the sequencer's call travels with the COMMIT (one write,
    // and its answer right behind the COMMIT's) instead of a write and a round trip of its own afterwards (afterCommit).
    // One at a time: commits meanwhile are numbered together by the run it starts, as before. While another open
    // transaction has written events, it is left to that one's COMMIT, which then numbers both (afterCommit).
    const tx = new SqlTransaction(
      client,
      () => {
        if (!writesEvents(events) || this.sequencer !== undefined || this.sequencerOnItsWay || this.othersWriting(events)) return undefined;
        carriesSequencer = this.sequencerOnItsWay = true;
        this.carrier = ending();
        covers = this.commits;
        return SEQUENCE_EVENTS;
      },
      this.options.preparedStatements ?? true,
      tenantId === null,
    );
    const events = collectEvents(tx);
    this.writing.add(events);
    let broken: unknown;
    /** The event sequencer's call sent with COMMIT (afterCommit), when it was: the connection is released after it. */
    let sequencing: Promise<pg.QueryResult> | undefined;
    try {
      // Pipelined with fn's first statement: one round trip for the three.
      void tx.send('BEGIN').catch(() => undefined);
      void tx.send(tenantId === null ? limitSqlTransaction : scopeSqlTransaction(tenantId)).catch(() => undefined);
      let result: T;
      try {
        const running = fn(tx);
        if (pipelineCommit) {
          const [value, committed] = await Promise.all([running, tx.commit()]);
          result = value;
          sequencing = committed.followed;
        } else result = await running;
      } catch (error) {
        try {
          const ended = await tx.rollback();
          // The sequencer's call sent behind a COMMIT (pipelineCommit, commitNow): the connection waits for it.
          sequencing = ended.followed;
          // fn failed after its COMMIT was written, and that COMMIT committed (every statement had succeeded): its writes
          // stand, so its events are numbered and handed over like any committed transaction's.
          if (ended.committed && events.length > 0) this.afterCommit(events, sequencing === undefined ? undefined : { call: sequencing, covers });
        } catch (rollbackError) {
          broken = rollbackError;
        }
        throw error;
      }
      try {
        if (!pipelineCommit) sequencing = (await tx.commit()).followed;
      } catch (error) {
        // A failed COMMIT leaves the connection in an unknown state: do not pool it.
        broken = error;
        throw error;
      }
      if (events.length > 0) this.afterCommit(events, sequencing === undefined ? undefined : { call: sequencing, covers });
      return result;
    } finally {
      this.writing.delete(events);
      // Its run has started (afterCommit), or its COMMIT failed: the next commit may carry one again.
      if (carriesSequencer) this.sequencerOnItsWay = false;
      // Events left waiting for this transaction's COMMIT, which did not carry a call (it failed, or others write). When
      // it carried the call but had no events to hand over, and their wait's bound passed while the call was on its way
      // (the timer then left them to this COMMIT), they are numbered now: not after the other open transactions end.
      this.startDeferred(carriesSequencer && this.deferral === undefined);
      if (carriesSequencer) {
        this.carrier?.end();
        this.carrier = undefined;
      }
      // Its prepared statements no longer match the schema (a migration ran): a new connection prepares them afresh.
      if (tx.stalePreparedStatement || tx.connectionLost) broken ??= true;
      const release = () => client.release(broken instanceof Error ? broken : broken === undefined ? undefined : true);
      if (sequencing === undefined || broken !== undefined) release();
      else
        void sequencing.then(release, (error: unknown) => {
          // The sequencer's call failed other than as a statement (its backend ended): the connection is not pooled again.
          if (!isStatementError(error)) broken = error;
          release();
        });
    }
  }

  /**
   * One read in its own tenant transaction with nothing to decide in between, so `BEGIN`, the tenant scope,
   * the statement and `COMMIT` are written together: one round trip on the bare-driver path.
   */
  async querySql<T>(tenant: string | { tenantId: string }, query: Prisma.Sql): Promise<T[]> {
    return this.withTenantSql(tenant, (tx) => tx.$queryRaw<T[]>(query), { pipelineCommit: true });
  }

  /**
   * Resolves once the events of every transaction committed so far are numbered and handed to
   * `onCommitted` (or the attempt failed: the rows are committed either way). Tests and shutdown wait here.
   */
  async eventsSettled(): Promise<void> {
    for (;;) {
      // Deferred events (afterCommit) are numbered now rather than after their wait.
      this.startDeferred(true);
      if (this.sequencer !== undefined) await this.sequencer;
      // Committed events left to a COMMIT that carries the sequencer's call: numbered once that transaction has ended.
      else if (this.unsequenced.length > 0 && this.carrier !== undefined) await this.carrier.ended;
      else return;
    }
  }

  /**
   * Off the caller's path: numbers the committed events (sequenceEvents) and then hands them to
   * `onCommitted`, in that order, so a live stream woken by the publish finds them numbered. One run at
   * a time; commits that arrive meanwhile are numbered together by the next run (one
   * payorch_sequence_events call for many transactions under load), and their publishes keep commit order.
   *
   * A commit that did not carry a sequencer call, with no run going, while another open transaction of this process
   * has written events: its events wait for that transaction's COMMIT, which carries one call for both (issue 19: under
   * load each commit paid a sequencer transaction of its own, ~3 per payment, each an UPDATE of the events and a WAL
   * flush under the sequencer's lock). The wait ends when no open transaction has written events any more (the last
   * one's COMMIT carried the call, or it ended without one: then a run starts) and after SEQUENCE_DEFER_MS at most.
   */
  private afterCommit(events: PublishedEvent[], carried?: { call: Promise<pg.QueryResult>; covers: number }): void {
    this.commits += 1;
    // A carried call follows its own COMMIT on the connection: it numbers its own batch too.
    this.unsequenced.push({ events, commit: carried === undefined ? this.commits : carried.covers });
    if (this.sequencer !== undefined || carried !== undefined || !this.othersWriting(events)) {
      this.endDeferral();
      this.sequencer ??= this.runSequencer(carried);
      return;
    }
    this.deferral ??= setTimeout(() => {
      this.deferral = undefined;
      this.startDeferred(true);
    }, this.options.sequenceDeferMs ?? SEQUENCE_DEFER_MS);
  }

  /** Another open bare-driver transaction of this process (not the one whose `events` these are) has written events. */
  private othersWriting(events: PublishedEvent[]): boolean {
    for (const other of this.writing) if (other !== events && writesEvents(other)) return true;
    return false;
  }

  /** Starts a run for deferred events: when no other transaction writes events any more, or at once (`now`). */
  private startDeferred(now: boolean): void {
    if (this.unsequenced.length === 0 || this.sequencer !== undefined || this.sequencerOnItsWay) return;
    if (!now && this.othersWriting([])) return;
    this.endDeferral();
    this.sequencer = this.runSequencer();
  }

  private endDeferral(): void {
    if (this.deferral === undefined) return;
    clearTimeout(this.deferral);
    this.deferral = undefined;
  }

  /**
   * `carried`: the payorch_sequence_events call sent with a COMMIT, which ran after that commit and after every commit
   * answered before it was sent (`covers`, in Database.commits): it numbered those batches. A batch committed later
   * (its COMMIT answered after the call left) gets a call of its own, as does every later round of the run.
   */
  private async runSequencer(carried?: { call: Promise<pg.QueryResult>; covers: number }): Promise<void> {
    try {
      while (this.unsequenced.length > 0) {
        const batches = this.unsequenced.splice(0);
        const sent = carried;
        carried = undefined;
        try {
          // A carried call that failed (the connection dropped, a lock or statement timeout) numbered nothing.
          const numbered =
            sent === undefined
              ? undefined
              : await sent.call.then(
                  (r) => Number(r.rows[0]?.assigned),
                  () => undefined,
                );
          const covered = numbered !== undefined && numbered >= 0 && numbered < SEQUENCE_BATCH && batches.every((b) => b.commit <= sent!.covers);
          // Nothing carried or it failed, a batch the carried call could not see, or a full batch of a backlog: a call of its own.
          if (!covered) await this.sequenceEvents();
        } catch {
          // The rows are committed; the next commit with events, or the webhook sweep, numbers them.
        }
        for (const batch of batches) {
          try {
            this.options.onCommitted?.(batch.events);
          } catch {
            // Best effort: the DomainEvent rows are the record; streams catch up and webhooks sweep from them.
          }
        }
      }
    } finally {
      // In the same synchronous step as the loop's last check: a commit after it starts a new run.
      this.sequencer = undefined;
    }
  }

  /**
   * Numbers committed domain events in commit order (`DomainEvent.seq`, payorch_sequence_events: one
   * caller at a time, numbers visible in increasing order) and returns the highest seq: every event up
   * to it is visible to any query started after this resolves. Runs after each commit that wrote events
   * (before `onCommitted`, so a live stream woken by the publish finds the event) and in the webhook
   * sweep; readers of the event log only look at numbered events. Its own transaction, never inside one.
   * After a commit it runs in the background (afterCommit): the committing caller does not wait for it.
   */
  async sequenceEvents(): Promise<bigint> {
    for (;;) {
      const [row] =
        this.sqlPool === undefined
          ? await this.prisma.$queryRaw<[{ assigned: number; high: bigint }]>`SELECT * FROM payorch_sequence_events(${SEQUENCE_BATCH}::int)`
          : (await this.sqlPool.query<{ assigned: number; high: string }>('SELECT * FROM payorch_sequence_events($1::int)', [SEQUENCE_BATCH])).rows.map(
              (r) => ({ assigned: r.assigned, high: BigInt(r.high) }),
            );
      if (row!.assigned < SEQUENCE_BATCH) return row!.high;
    }
  }

  /** Every authenticated request runs it: on the bare-driver pool when there is one (no tenant scope: SECURITY DEFINER). */
  async findApiKeyByPrefix(prefix: string): Promise<ApiKeyLookup | null> {
    if (this.sqlPool !== undefined) {
      const { rows } = await this.poolQuery<ApiKeyLookup>('SELECT * FROM payorch_find_api_key($1)', [prefix]);
      return rows[0] ?? null;
    }
    const rows = await this.prisma.$queryRaw<ApiKeyLookup[]>`SELECT * FROM payorch_find_api_key(${prefix})`;
    return rows[0] ?? null;
  }

  /**
   * The agents of up to 1,000 credential prefixes in one statement (the connector batches the upgrades that arrive
   * together: BatchedLookup), by prefix; a prefix without an agent of an active tenant is absent. No tenant scope
   * (SECURITY DEFINER); on the bare-driver pool when there is one.
   */
  async findAgentsByCredentialPrefixes(prefixes: readonly string[]): Promise<Map<string, AgentCredentialLookup>> {
    if (prefixes.length > 1000) throw new RangeError('at most 1,000 credential prefixes per lookup');
    type Row = AgentCredentialLookup & { credentialPrefix: string };
    const rows =
      this.sqlPool !== undefined
        ? (await this.poolQuery<Row>('SELECT * FROM payorch_find_agents_by_credentials($1::text[])', [prefixes])).rows
        : await this.prisma.$queryRaw<Row[]>`SELECT * FROM payorch_find_agents_by_credentials(${[...prefixes]}::text[])`;
    return new Map(rows.map(({ credentialPrefix, ...agent }) => [credentialPrefix, agent]));
  }

  /**
   * The access of up to 1,000 agents of any tenants in one statement (the device connector's check of new tunnels, before
   * their set-up transaction: a reconnect storm's set-ups come a few agents per tenant at a time), one answer per check
   * in order: null for an agent deleted or not of that tenant. No tenant scope (SECURITY DEFINER,
   * payorch_check_agent_access: it returns statuses and whether the prefix asked about still holds, no credential).
   */
  async checkAgentAccess(checks: readonly AgentAccessCheck[]): Promise<Array<AgentAccessState | null>> {
    if (checks.length > 1000) throw new RangeError('at most 1,000 agents per access check');
    if (checks.length === 0) return [];
    type Row = AgentAccessState & { n: string | bigint };
    const agents = checks.map((c) => c.agentId);
    const tenants = checks.map((c) => c.tenantId);
    const prefixes = checks.map((c) => c.credentialPrefix);
    const rows =
      this.sqlPool !== undefined
        ? (await this.poolQuery<Row>('SELECT * FROM payorch_check_agent_access($1::uuid[], $2::uuid[], $3::text[])', [agents, tenants, prefixes])).rows
        : await this.prisma.$queryRaw<Row[]>`SELECT * FROM payorch_check_agent_access(${agents}::uuid[], ${tenants}::uuid[], ${prefixes}::text[])`;
    const found: Array<AgentAccessState | null> = checks.map(() => null);
    for (const { n, ...state } of rows) found[Number(n) - 1] = state;
    return found;
  }

  /** One statement on the bare pool, prepared once per connection (as `withTenantSql`'s statements). */
  private async poolQuery<R extends pg.QueryResultRow>(text: string, values: unknown[]): Promise<pg.QueryResult<R>> {
    const client = await this.sqlPool!.connect();
    let failure: unknown;
    try {
      const name = (this.options.preparedStatements ?? true) ? statementName(client, text) : undefined;
      return await client.query<R>({ name, text, values });
    } catch (error) {
      failure = error;
      throw error;
    } finally {
      // A failed lookup leaves the connection as it was (autocommit), except a prepared statement a migration made stale
      // or a failure of the connection itself.
      client.release(failure !== undefined && (isStalePreparedStatement(failure) || !isStatementError(failure)) ? (failure as Error) : undefined);
    }
  }

  async findAgentByEnrollmentPrefix(prefix: string): Promise<AgentEnrollmentLookup | null> {
    const rows = await this.prisma.$queryRaw<AgentEnrollmentLookup[]>`SELECT * FROM payorch_find_agent_by_enrollment(${prefix})`;
    return rows[0] ?? null;
  }

  async ping(): Promise<void> {
    await this.prisma.$queryRaw`SELECT 1`;
  }

  /**
   * Whether the migration step has applied `name` (payorch_migration_applied: no tenant scope, SECURITY DEFINER). False
   * too on a schema older than that function itself (SQLSTATE 42883): older than any build that asks.
   */
  async migrationApplied(name: string): Promise<boolean> {
    try {
      const [row] = await this.prisma.$queryRaw<[{ applied: boolean }]>`SELECT payorch_migration_applied(${name}::text) AS "applied"`;
      return row?.applied === true;
    } catch (error) {
      if (isUndefinedFunction(error)) return false;
      throw error;
    }
  }

  /** Idempotent: a second call waits for the first (the bare pool may be ended once only). */
  close(): Promise<void> {
    this.closing ??= (async () => {
      await this.eventsSettled();
      // Ends the pool too (disposeExternalPool) if Prisma ever connected; otherwise it is ended here.
      await this.prisma.$disconnect();
      if (this.sqlPool !== undefined && !this.sqlPool.ended) await this.sqlPool.end();
      await this.options.onClose?.();
    })();
    return this.closing;
  }
}

/** PostgreSQL's 42883 (undefined_function), as the pg driver or Prisma's adapter reports it. */
function isUndefinedFunction(error: unknown): boolean {
  const e = error as { code?: unknown; meta?: { driverAdapterError?: { cause?: { code?: unknown } } } } | null;
  return e?.code === '42883' || e?.meta?.driverAdapterError?.cause?.code === '42883';
}
