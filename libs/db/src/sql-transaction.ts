import pg from 'pg';

import { isUuid } from '@payorch/domain';

import { Prisma } from './client';
import { isStalePreparedStatement, statementName } from './prepared-statements';

/**
 * The raw-SQL surface that a Prisma interactive transaction and a {@link SqlTransaction} both offer. A
 * repository function written against it (`transitionOperation`, `insertOperation`, `publishEvent`, `audit`)
 * runs unchanged in either: Prisma where it is cheap, the bare driver on the hot path, under the same RLS.
 */
export interface SqlClient {
  $queryRaw<T = unknown>(query: TemplateStringsArray | Prisma.Sql, ...values: unknown[]): PromiseLike<T>;
  $executeRaw(query: TemplateStringsArray | Prisma.Sql, ...values: unknown[]): PromiseLike<number>;
}

/** A bare-driver client that can send a write nobody reads ({@link SqlTransaction.defer}): pipelined with what follows. */
export interface DeferringSqlClient extends SqlClient {
  defer(query: Prisma.Sql): void;
}

/** The tenant scope a statement of a multi-tenant transaction is sent behind (Database.withTenantsSql). */
const tenantScope = (tenantId: string) => Prisma.sql`SELECT set_config('app.tenant_id', ${tenantId}, true)`;

const INT8_OID = 20;
const DATE_OID = 1082;
/** A `date` as Prisma returns it: midnight UTC of that day (pg's default parser makes local midnight, which depends on TZ). */
const utcDate = (value: string): Date => new Date(`${value}T00:00:00.000Z`);

/**
 * Values as Prisma's `$queryRaw` returns them, so a repository function gives the same rows on either path: int8 as
 * bigint (pg's default is a string), `date` as midnight UTC; everything else as pg parses it.
 */
const TYPES = {
  getTypeParser: (oid: number, format?: string) =>
    oid === INT8_OID ? (value: string) => BigInt(value) : oid === DATE_OID ? utcDate : pg.types.getTypeParser(oid, format as 'text'),
};

/**
 * A tenant transaction on a bare `pg` connection in pipeline mode (pg ≥ 8.23 `pipeline: true`): every
 * statement is written as soon as it is issued, without waiting for the answer of the one before.
 * `BEGIN`, `set_config('app.tenant_id', …, true)` and the first statement therefore cost one round trip, a
 * write that nothing reads ({@link defer}) travels with `COMMIT`, and a one-statement transaction with its
 * DomainEvent costs two round trips instead of five. Errors behave as in any transaction: after the first
 * failed statement PostgreSQL refuses the rest, and `COMMIT` of a failed transaction answers `ROLLBACK`, which
 * is reported as the statement's error. Opened by `Database.withTenantSql`; never shared between callers.
 */
export class SqlTransaction implements DeferringSqlClient {
  /** The first failure of any statement sent in this transaction (they are all refused after it). */
  private failure: { error: unknown } | undefined;
  private readonly sent: Promise<unknown>[] = [];
  /** COMMIT or ROLLBACK is on its way: anything sent later would run outside the transaction. */
  private ended = false;
  /** The connection's socket is corked until the end of this tick (see `write`). */
  private corked = false;
  /** COMMIT written by `commitNow`, and the statement that followed it. */
  private committing: { commit: Promise<pg.QueryResult>; followed: Promise<pg.QueryResult> | undefined } | undefined;
  /**
   * A prepared statement of this connection was refused because a migration changed its result columns: the
   * connection is not to be pooled again (Database.withTenantSql), or every later use would fail the same way.
   */
  stalePreparedStatement = false;
  /**
   * A statement failed other than as a statement (PostgreSQL's FATAL, the connection lost): the connection is not to be
   * pooled again. pg marks it unusable only once its socket has closed, which may come after it was released.
   */
  connectionLost = false;
  /** The tenant whose scope was sent last in a multi-tenant transaction: the scope its statements now run under. */
  private scopedTo: string | undefined;

  /**
   * @param followCommit asked when `COMMIT` is written: a statement to run right after the transaction, outside it
   * (autocommit), in the same write (Database: the event sequencer, which then costs neither a write nor a round
   * trip of its own). Its answer is handed back by `commit()`, unawaited.
   * @param prepare statements with parameters are prepared on the server once per connection (prepared-statements.ts).
   * @param multiTenant the transaction serves several tenants (Database.withTenantsSql): it has no tenant scope of its
   * own, so its statements are sent through `forTenant` only, each behind its tenant's scope; one sent on the
   * transaction itself is refused.
   */
  constructor(
    private readonly client: pg.PoolClient,
    private readonly followCommit: () => string | undefined = () => undefined,
    private readonly prepare = false,
    private readonly multiTenant = false,
  ) {}

  $queryRaw<T = unknown>(query: TemplateStringsArray | Prisma.Sql, ...values: unknown[]): Promise<T> {
    return this.sendAs(undefined, toSql(query, values)).then((result) => result.rows as T);
  }

  $executeRaw(query: TemplateStringsArray | Prisma.Sql, ...values: unknown[]): Promise<number> {
    return this.sendAs(undefined, toSql(query, values)).then((result) => result.rowCount ?? 0);
  }

  /**
   * Sends a write whose answer nobody reads (a DomainEvent, an audit row): it is pipelined with whatever
   * follows, and its failure fails the transaction at `COMMIT` (nothing is committed).
   */
  defer(query: Prisma.Sql): void {
    this.deferAs(undefined, query);
  }

  /**
   * The surface a multi-tenant transaction's statements for one tenant go through (Database.withTenantsSql): each
   * statement is sent behind `SELECT set_config('app.tenant_id', tenant, true)` unless the scope sent last on this
   * connection is that tenant's already. Statements run in the order they are sent, so whatever order the tenants'
   * statements are issued in — interleaved across awaits —, each runs under its own tenant's row-level security.
   */
  forTenant(tenantId: string): TenantSql {
    if (!this.multiTenant) throw new Error('forTenant: this transaction is scoped to one tenant (Database.withTenantSql)');
    if (!isUuid(tenantId)) throw new Error('forTenant: the tenant id must be a UUID');
    return new TenantSql(this, tenantId);
  }

  /** `send` for the SqlClient surface: `tenantId` is the caller's scope in a multi-tenant transaction (TenantSql). */
  sendAs(tenantId: string | undefined, query: Prisma.Sql): Promise<pg.QueryResult> {
    if (this.multiTenant) {
      if (tenantId === undefined) return Promise.reject(new Error('a statement of a multi-tenant transaction names its tenant (forTenant)'));
      if (this.scopedTo !== tenantId && !this.ended) {
        this.scopedTo = tenantId;
        void this.send(tenantScope(tenantId)).catch(() => undefined);
      }
    }
    return this.send(query);
  }

  /** `defer` for the SqlClient surface (see sendAs). */
  deferAs(tenantId: string | undefined, query: Prisma.Sql): void {
    // Refused at once, not as a rejection nobody reads: a write deferred after COMMIT would be lost silently.
    if (this.ended) throw new Error('statement issued after the end of its transaction');
    if (this.multiTenant && tenantId === undefined) throw new Error('a statement of a multi-tenant transaction names its tenant (forTenant)');
    void this.sendAs(tenantId, query).catch(() => undefined);
  }

  /** Sends a statement now (pipeline mode: no waiting for the previous answers). */
  send(query: Prisma.Sql | string): Promise<pg.QueryResult> {
    if (this.ended) return Promise.reject(new Error('statement issued after the end of its transaction'));
    const text = typeof query === 'string' ? query : query.text;
    const values = typeof query === 'string' ? [] : query.values;
    // Statements without parameters (BEGIN, COMMIT) go as simple queries: nothing to plan twice.
    const name = this.prepare && values.length > 0 ? statementName(this.client, text) : undefined;
    const result = this.write({ name, text, values, types: TYPES } as pg.QueryConfig);
    this.sent.push(result);
    result.catch((error: unknown) => {
      this.failure ??= { error };
      if (isStalePreparedStatement(error)) this.stalePreparedStatement = true;
      if (!isStatementError(error)) this.connectionLost = true;
    });
    return result;
  }

  /**
   * Writes `COMMIT` now, in the write of the statements issued in this tick, for a caller that has issued its last
   * statement and still waits for answers (an INSERT's RETURNING row): no round trip after its last statement. A
   * statement issued later is refused, and from here on the transaction's fate is its statements' alone: a failure
   * of the caller after this call no longer rolls it back. `commit()` then waits for this COMMIT.
   */
  commitNow(): void {
    if (this.ended) return;
    this.ended = true;
    const commit = this.write('COMMIT');
    this.committing = { commit, followed: this.follow() };
    commit.catch(() => undefined); // read by commit(), or lost with the connection
  }

  /**
   * Sends `COMMIT` right behind what is still in flight (unless `commitNow` did) and waits for all of it. Throws the
   * first failure of any statement of the transaction (PostgreSQL then rolled it back). `followed`: the answer of
   * the constructor's `followCommit` statement, if one was sent; the connection is not to be released before it settles.
   */
  async commit(): Promise<{ followed?: Promise<pg.QueryResult> }> {
    this.ended = true;
    // Kept: a caller that fails while this COMMIT is on its way (pipelineCommit) learns its fate from rollback().
    this.committing ??= { commit: this.write('COMMIT'), followed: this.follow() };
    const { commit, followed } = this.committing;
    await Promise.allSettled(this.sent);
    const result = await commit;
    if (this.failure !== undefined) throw this.failure.error;
    // COMMIT of a transaction that failed is a ROLLBACK (unreachable once every failure is recorded above).
    if (result.command !== 'COMMIT') throw new Error(`transaction was not committed (${result.command})`);
    return { followed };
  }

  /** Sends `followCommit`'s statement, right behind a COMMIT written in this tick (the socket is still corked: one write). */
  private follow(): Promise<pg.QueryResult> | undefined {
    const then = this.followCommit();
    const followed = then === undefined ? undefined : this.client.query(then);
    followed?.catch(() => undefined); // the caller reads it, or the connection is dropped with it
    return followed;
  }

  /**
   * Issues a statement with the connection's socket corked until the end of the tick, so that the statements
   * issued in one tick (BEGIN, the scope and the first statement; the deferred writes and COMMIT) leave in one
   * `writev` instead of one each: on this path a system call costs about as much as a statement's parsing.
   */
  private write(query: pg.QueryConfig | string): Promise<pg.QueryResult> {
    const stream = (this.client as unknown as { connection?: { stream?: { cork?(): void; uncork?(): void } } }).connection?.stream;
    if (!this.corked && typeof stream?.cork === 'function' && typeof stream.uncork === 'function') {
      this.corked = true;
      stream.cork();
      process.nextTick(() => {
        this.corked = false;
        stream.uncork!();
      });
    }
    return typeof query === 'string' ? this.client.query(query) : this.client.query(query);
  }

  /**
   * Ends the transaction after the caller's failure: ROLLBACK, unless COMMIT was written already (`commitNow`, or
   * `commit` while the caller still ran: pipelineCommit), whose answer then decides. `committed`: that COMMIT committed
   * (every statement had succeeded; the caller failed on its own), so the transaction's writes and events stand.
   * `followed`: the statement sent behind that COMMIT (Database: the event sequencer's call), still to be waited for
   * before the connection is released. Waits for everything in flight on the connection but that statement.
   */
  async rollback(): Promise<{ committed: boolean; followed?: Promise<pg.QueryResult> }> {
    const committing = this.committing;
    const rollback = committing?.commit ?? (this.ended ? undefined : this.write('ROLLBACK'));
    this.ended = true;
    await Promise.allSettled(this.sent);
    if (committing === undefined) {
      await rollback;
      return { committed: false };
    }
    // A COMMIT that failed (the connection, not a statement: that one answers ROLLBACK) throws, as a ROLLBACK would.
    const { command } = await committing.commit;
    return { committed: command === 'COMMIT' && this.failure === undefined, followed: committing.followed };
  }
}

/**
 * An error PostgreSQL reported for a statement (severity ERROR): the connection itself is fine. Anything else (FATAL:
 * the backend was ended or the server shuts down; an error of the connection, without a severity) leaves it in doubt.
 */
export function isStatementError(error: unknown): boolean {
  return (error as { severity?: unknown } | null)?.severity === 'ERROR';
}

export function isSqlTransaction(client: unknown): client is SqlTransaction {
  return client instanceof SqlTransaction;
}

/**
 * One tenant's statements in a multi-tenant transaction ({@link SqlTransaction.forTenant}): a repository function
 * written against `SqlClient` runs in it unchanged, under that tenant's row-level security, and its events
 * (publishEvents) are the transaction's.
 */
export class TenantSql implements DeferringSqlClient {
  constructor(
    readonly transaction: SqlTransaction,
    readonly tenantId: string,
  ) {}

  $queryRaw<T = unknown>(query: TemplateStringsArray | Prisma.Sql, ...values: unknown[]): Promise<T> {
    return this.transaction.sendAs(this.tenantId, toSql(query, values)).then((result) => result.rows as T);
  }

  $executeRaw(query: TemplateStringsArray | Prisma.Sql, ...values: unknown[]): Promise<number> {
    return this.transaction.sendAs(this.tenantId, toSql(query, values)).then((result) => result.rowCount ?? 0);
  }

  defer(query: Prisma.Sql): void {
    this.transaction.deferAs(this.tenantId, query);
  }
}

/** A client whose writes nobody reads may be deferred (a SqlTransaction, or one tenant's part of a multi-tenant one). */
export function canDefer(client: unknown): client is DeferringSqlClient {
  return client instanceof SqlTransaction || client instanceof TenantSql;
}

function toSql(query: TemplateStringsArray | Prisma.Sql, values: unknown[]): Prisma.Sql {
  return query instanceof Prisma.Sql ? query : Prisma.sql(query, ...(values as Prisma.Sql[]));
}
