import type pg from 'pg';

/**
 * Server-side prepared statements of the hot path (issue 19). Measured on the operations bench with
 * pg_stat_statements: PostgreSQL spent about as long planning the hot statements as running them (the
 * tenant gate's join 0.54 ms of planning for 0.22 ms of execution, each compare-and-set 0.35–0.5 ms), and
 * parse plus RLS rewrite came on top; with named statements a connection parses, rewrites and plans each
 * statement once and then only binds it: the server's CPU per operation fell from 8.4 to 6.0 ms.
 *
 * A statement is named by its text, per connection (`payorch_<n>`, n counting that connection's
 * statements), so the same text always reuses the same prepared statement and no name is ever bound to two
 * texts. At most {@link MAX_PREPARED_STATEMENTS} per connection: a statement whose text is new once a connection
 * holds that many is sent unnamed (planned each time, as before), so statements whose text varies (a list of
 * N rows) cannot grow a connection's memory without bound.
 *
 * A prepared statement's result columns are fixed when it is prepared: PostgreSQL refuses to run it once a
 * migration changed them ("cached plan must not change result type", SQLSTATE 0A000). Hot statements name
 * their columns (an added column changes nothing), and a connection that hits the error anyway is discarded
 * (`isStalePreparedStatement`), so the error costs that one transaction, never every later one.
 *
 * PgBouncer in transaction mode keeps prepared statements working from 1.21 on with
 * `max_prepared_statements` > 0; with an older pooler set `DATABASE_PREPARED_STATEMENTS=false`.
 */
export const MAX_PREPARED_STATEMENTS = 200;

const namesByConnection = new WeakMap<pg.ClientBase, Map<string, string>>();

/** The name under which `text` is (or will be) prepared on `client`; undefined: send it unnamed. */
export function statementName(client: pg.ClientBase, text: string): string | undefined {
  let names = namesByConnection.get(client);
  if (names === undefined) namesByConnection.set(client, (names = new Map()));
  let name = names.get(text);
  if (name === undefined && names.size < MAX_PREPARED_STATEMENTS) {
    name = `payorch_${names.size}`;
    names.set(text, name);
  }
  return name;
}

/** PostgreSQL refused a prepared statement whose result columns changed since it was prepared (a migration ran). */
export function isStalePreparedStatement(error: unknown): boolean {
  return error instanceof Error && (error as { code?: unknown }).code === '0A000' && /cached plan must not change result type/i.test(error.message);
}
