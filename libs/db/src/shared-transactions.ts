import type { Database } from './database';
import type { SqlClient } from './sql-transaction';
import { isDatabaseUnavailable } from './unavailable';

interface Call {
  tenantId: string;
  fn: (tx: SqlClient) => PromiseLike<unknown>;
  resolve: (value: unknown) => void;
  reject: (error: unknown) => void;
}

/**
 * Group commit of small tenant transactions (issue 19: a reconnect storm's presence writes, a few terminals of each of
 * many tenants at a time, each paid a transaction of its own). The calls of `run` made in one turn of the event loop
 * share one multi-tenant transaction (Database.withTenantsSql), each `fn` under its own tenant's scope, inside one
 * `around` (the caller's limit on concurrent database work, taken once for the group). When that transaction fails
 * other than because PostgreSQL is unavailable — one tenant's statement refused —, each call runs again in a transaction
 * of its own, so a call fails only for its own statements. `fn` therefore sends SQL and nothing else: it may run twice.
 */
export class SharedTenantTransactions {
  private waiting: Call[] = [];

  constructor(
    private readonly db: Database,
    private readonly around: <T>(fn: () => Promise<T>) => Promise<T> = (fn) => fn(),
  ) {}

  run<T>(tenantId: string, fn: (tx: SqlClient) => PromiseLike<T>): Promise<T> {
    return new Promise<T>((resolve, reject) => {
      this.waiting.push({ tenantId, fn, resolve: resolve as (value: unknown) => void, reject });
      if (this.waiting.length === 1) setImmediate(() => void this.flush());
    });
  }

  private async flush(): Promise<void> {
    const calls = this.waiting;
    this.waiting = [];
    await this.around(async () => {
      const outcomes = await inTenantsTransaction(this.db, calls);
      calls.forEach((call, i) => {
        const outcome = outcomes[i]!;
        if ('error' in outcome) call.reject(outcome.error);
        else call.resolve(outcome.value);
      });
    }).catch((error: unknown) => {
      // `around` itself failed (the caller's limit shut down): a call still waiting fails with it (settled ones stay).
      for (const call of calls) call.reject(error);
    });
  }
}

/**
 * The order of the tenants' parts in a multi-tenant transaction (inTenantsTransaction): by tenant id. With each part
 * taking its tenant's row locks in its first statement, in its own fixed order (the connector's set-ups and presence
 * batches: agents by id), every such transaction takes its locks in one global order, so two of them never wait for
 * each other (found in issue 19's storms: a presence batch of tenants A, B and a set-up batch of B, A deadlocked: PostgreSQL
 * aborted one after its deadlock_timeout and each of its tenants' writes was made again alone).
 */
const compareTenants = (a: string, b: string): number => (a < b ? -1 : a > b ? 1 : 0);

/** What one tenant's work came to in inTenantsTransaction. */
export type TenantOutcome<T> = { value: T } | { error: unknown };

/**
 * Each tenant's work (`fn`, which sends SQL and nothing else: it may run twice) in one multi-tenant transaction
 * (Database.withTenantsSql, each under its own tenant's scope), one outcome per call, in order. The parts are sent in
 * tenant order (compareTenants), so parts that take their row locks in their first statement take them in one order in
 * every such transaction. When that transaction fails other than because PostgreSQL is unavailable — one tenant's
 * statement refused —, each call runs again in a transaction of its own, so a call fails only for its own statements.
 * A single call runs in withTenantSql.
 */
export async function inTenantsTransaction<T>(
  db: Database,
  calls: ReadonlyArray<{ tenantId: string; fn: (tx: SqlClient) => PromiseLike<T> }>,
): Promise<Array<TenantOutcome<T>>> {
  const alone = (call: (typeof calls)[number]): Promise<TenantOutcome<T>> =>
    db
      .withTenantSql(call.tenantId, async (tx) => call.fn(tx))
      .then(
        (value) => ({ value }),
        (error: unknown) => ({ error }),
      );
  if (calls.length === 1) return [await alone(calls[0]!)];
  // The tenants' parts in one order whatever the order of `calls` (compareTenants).
  const order = calls.map((_, i) => i).sort((i, j) => compareTenants(calls[i]!.tenantId, calls[j]!.tenantId) || i - j);
  try {
    return await db.withTenantsSql(async (tx) => {
      // Every call's part is waited for before the transaction ends, so that none issues a statement after it.
      const parts: Array<Promise<TenantOutcome<T>>> = [];
      for (const i of order) {
        const call = calls[i]!;
        parts[i] = Promise.resolve(call.fn(tx.forTenant(call.tenantId))).then(
          (value): TenantOutcome<T> => ({ value }),
          (error: unknown): TenantOutcome<T> => ({ error }),
        );
      }
      const outcomes = await Promise.all(parts);
      const failed = outcomes.find((part) => 'error' in part);
      if (failed !== undefined) throw (failed as { error: unknown }).error;
      return outcomes;
    });
  } catch (error) {
    if (isDatabaseUnavailable(error)) return calls.map(() => ({ error }));
    const outcomes: Array<TenantOutcome<T>> = [];
    for (const call of calls) outcomes.push(await alone(call));
    return outcomes;
  }
}
