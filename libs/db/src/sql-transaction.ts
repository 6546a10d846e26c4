import pg from 'pg';

import { Prisma } from './client';

/**
 * The raw-SQL surface that a Prisma interactive transaction and a {@link SqlTransaction} both offer. A
 * repository function written against it (`transitionOperation`, `insertOperation`, `publishEvent`, `audit`)
 * runs unchanged in either: Prisma where it is cheap, the bare driver on the hot path, under the same RLS.
 */
export interface SqlClient {
  $queryRaw<T = unknown>(query: TemplateStringsArray | Prisma.Sql, ...values: unknown[]): PromiseLike<T>;
  $executeRaw(query: TemplateStringsArray | Prisma.Sql, ...values: unknown[]): PromiseLike<number>;
}

/** int8 as bigint, as Prisma's `$queryRaw` returns it (pg's default is a string); everything else as pg parses it. */
const TYPES = {
  getTypeParser: (oid: number, format?: string) => (oid === 20 ? (value: string) => BigInt(value) : pg.types.getTypeParser(oid, format as 'text')),
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
export class SqlTransaction implements SqlClient {
  /** The first failure of any statement sent in this transaction (they are all refused after it). */
  private failure: { error: unknown } | undefined;
  private readonly sent: Promise<unknown>[] = [];
  /** COMMIT or ROLLBACK is on its way: anything sent later would run outside the transaction. */
  private ended = false;
  /** The connection's socket is corked until the end of this tick (see `write`). */
  private corked = false;

  constructor(private readonly client: pg.PoolClient) {}

  $queryRaw<T = unknown>(query: TemplateStringsArray | Prisma.Sql, ...values: unknown[]): Promise<T> {
    return this.send(toSql(query, values)).then((result) => result.rows as T);
  }

  $executeRaw(query: TemplateStringsArray | Prisma.Sql, ...values: unknown[]): Promise<number> {
    return this.send(toSql(query, values)).then((result) => result.rowCount ?? 0);
  }

  /**
   * Sends a write whose answer nobody reads (a DomainEvent, an audit row): it is pipelined with whatever
   * follows, and its failure fails the transaction at `COMMIT` (nothing is committed).
   */
  defer(query: Prisma.Sql): void {
    void this.send(query).catch(() => undefined);
  }

  /** Sends a statement now (pipeline mode: no waiting for the previous answers). */
  send(query: Prisma.Sql | string): Promise<pg.QueryResult> {
    if (this.ended) return Promise.reject(new Error('statement issued after the end of its transaction'));
    const text = typeof query === 'string' ? query : query.text;
    const values = typeof query === 'string' ? [] : query.values;
    const result = this.write({ text, values, types: TYPES } as pg.QueryConfig);
    this.sent.push(result);
    result.catch((error: unknown) => (this.failure ??= { error }));
    return result;
  }

  /**
   * Sends `COMMIT` right behind what is still in flight and waits for all of it. Throws the first failure
   * of any statement of the transaction (PostgreSQL then rolled it back).
   */
  async commit(): Promise<void> {
    this.ended = true;
    const commit = this.write('COMMIT');
    await Promise.allSettled(this.sent);
    const result = await commit;
    if (this.failure !== undefined) throw this.failure.error;
    // COMMIT of a transaction that failed is a ROLLBACK (unreachable once every failure is recorded above).
    if (result.command !== 'COMMIT') throw new Error(`transaction was not committed (${result.command})`);
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

  /** Rolls back after the caller's failure; whatever was in flight is discarded. */
  async rollback(): Promise<void> {
    this.ended = true;
    const rollback = this.write('ROLLBACK');
    await Promise.allSettled(this.sent);
    await rollback;
  }
}

export function isSqlTransaction(client: unknown): client is SqlTransaction {
  return client instanceof SqlTransaction;
}

function toSql(query: TemplateStringsArray | Prisma.Sql, values: unknown[]): Prisma.Sql {
  return query instanceof Prisma.Sql ? query : Prisma.sql(query, ...(values as Prisma.Sql[]));
}
