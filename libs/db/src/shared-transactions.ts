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

/** What one tenant's work came to in inTenantsTransaction. */
export type TenantOutcome<T> = { value: T } | { error: unknown };

/**
 * Each tenant's work (`fn`, which sends SQL and nothing else: it may run twice) in one multi-tenant transaction
 * (Database.withTenantsSql, each under its own tenant's scope), one outcome per call, in order. When that transaction
 * fails other than because PostgreSQL is unavailable — one tenant's statement refused —, each call runs again in a
 * transaction of its own, so a call fails only for its own statements. A single call runs in withTenantSql.
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
  try {
    return await db.withTenantsSql(async (tx) => {
      // Every call's part is waited for before the transaction ends, so that none issues a statement after it.
      const parts = await Promise.all(
        calls.map((call) =>
          Promise.resolve(call.fn(tx.forTenant(call.tenantId))).then(
            (value): TenantOutcome<T> => ({ value }),
            (error: unknown): TenantOutcome<T> => ({ error }),
          ),
        ),
      );
      const failed = parts.find((part) => 'error' in part);
      if (failed !== undefined) throw (failed as { error: unknown }).error;
      return parts;
    });
  } catch (error) {
    if (isDatabaseUnavailable(error)) return calls.map(() => ({ error }));
    const outcomes: Array<TenantOutcome<T>> = [];
    for (const call of calls) outcomes.push(await alone(call));
    return outcomes;
  }
}
