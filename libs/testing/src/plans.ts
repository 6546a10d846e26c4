/**
 * TEST TOOL: what the prepared statements of a path read once the tables grew (issue 19, "flat as tables grow").
 * `recordPreparedStatements` records every named (prepared, libs/db prepared-statements.ts) statement an app sends
 * through `pg` while recording; `explainPrepared` runs one of them again under the tenant's scope with EXPLAIN
 * ANALYZE, and `widestRead` says how many rows its widest plan node read (returned plus filtered away).
 */
import pg from 'pg';

export interface RecordedStatement {
  text: string;
  values: unknown[];
}

/** A node of EXPLAIN (FORMAT JSON)'s plan, as far as the row counts go. */
export interface PlanNode {
  'Node Type': string;
  'Relation Name'?: string;
  'Index Name'?: string;
  'Actual Rows'?: number;
  'Actual Loops'?: number;
  'Rows Removed by Filter'?: number;
  'Rows Removed by Join Filter'?: number;
  'Rows Removed by Index Recheck'?: number;
  Plans?: PlanNode[];
}

/** Rows the widest node of a plan read: what it returned plus what its filters threw away, over all its loops. */
export function widestRead(node: PlanNode, path = ''): { rows: number; where: string } {
  const loops = node['Actual Loops'] ?? 1;
  const rows =
    (node['Actual Rows'] ?? 0) * loops +
    (node['Rows Removed by Filter'] ?? 0) * loops +
    (node['Rows Removed by Join Filter'] ?? 0) * loops +
    (node['Rows Removed by Index Recheck'] ?? 0) * loops;
  const where = `${path}/${node['Node Type']}${node['Relation Name'] ? ` on ${node['Relation Name']}` : ''}${node['Index Name'] ? ` using ${node['Index Name']}` : ''}`;
  let widest = { rows, where };
  for (const child of node.Plans ?? []) {
    const inner = widestRead(child, where);
    if (inner.rows > widest.rows) widest = inner;
  }
  return widest;
}

/** A bind value as the text PostgreSQL parses (what pg sends for the types the hot paths bind). */
export function literalText(value: unknown): string | null {
  if (value === null || value === undefined) return null;
  if (value instanceof Date) return value.toISOString();
  if (Array.isArray(value)) return `{${value.map((e) => (e === null ? 'NULL' : `"${String(e).replace(/[\\"]/g, '\\$&')}"`)).join(',')}}`;
  if (typeof value === 'object') return JSON.stringify(value);
  return String(value);
}

/**
 * Records each distinct named statement (its first values) sent through `pg.Client#query` while `recording` is on;
 * with `{ unnamed: true }` also the unnamed statements that read or write a table (what Prisma's client sends), so a
 * test can show a path's plans before it moved to prepared statements. `restore()` puts the original `query` back.
 */
export function recordPreparedStatements(options: { unnamed?: boolean } = {}): {
  statements: Map<string, RecordedStatement>;
  recording: { on: boolean };
  restore(): void;
} {
  const statements = new Map<string, RecordedStatement>();
  const recording = { on: false };
  const original = pg.Client.prototype.query;
  (pg.Client.prototype as unknown as { query: (...args: unknown[]) => unknown }).query = function (this: pg.Client, ...args: unknown[]) {
    const first = args[0] as { name?: string; text?: string; values?: unknown[] } | string;
    const text = typeof first === 'string' ? first : first.text;
    const named = typeof first === 'object' && first.name !== undefined;
    const tableStatement = text !== undefined && /\b(FROM|INTO|UPDATE)\s+"/i.test(text);
    if (recording.on && text !== undefined && !statements.has(text) && (named || (options.unnamed === true && tableStatement))) {
      const values = typeof first === 'string' ? ((Array.isArray(args[1]) ? args[1] : []) as unknown[]) : (first.values ?? []);
      statements.set(text, { text, values });
    }
    return (original as (...a: unknown[]) => unknown).apply(this, args);
  };
  return {
    statements,
    recording,
    restore: () => {
      pg.Client.prototype.query = original;
    },
  };
}

/**
 * EXPLAIN ANALYZE of `EXECUTE <name>(values)` (prepared before on `client`) in a transaction scoped to `tenantId` and
 * rolled back; the values are sent as literals, serialised as pg sends them.
 */
export async function explainPrepared(client: pg.Client, name: string, statement: RecordedStatement, tenantId: string): Promise<PlanNode> {
  const params = statement.values
    .map((value) => {
      const text = literalText(value);
      return text === null ? 'NULL' : client.escapeLiteral(text);
    })
    .join(', ');
  await client.query('BEGIN');
  try {
    await client.query(`SELECT set_config('app.tenant_id', $1, true)`, [tenantId]);
    const result = await client.query<{ 'QUERY PLAN': [{ Plan: PlanNode }] }>(
      `EXPLAIN (ANALYZE, FORMAT JSON) EXECUTE ${name}${params.length > 0 ? `(${params})` : ''}`,
    );
    return result.rows[0]!['QUERY PLAN'][0].Plan;
  } finally {
    await client.query('ROLLBACK');
  }
}

/**
 * Prepares each statement on a new connection as the app's role (`payorch_app`, under RLS) with its generic plan (what
 * a long-lived connection keeps; `plans: 'custom'`: the plan made for its values, what Prisma's unnamed statements
 * get), runs it once with EXPLAIN ANALYZE in the tenant's scope, and lists the statements whose widest plan node read
 * more than `maxRows` rows. Replaying an INSERT of a row that exists (a duplicate key) is skipped: there is no plan to
 * read.
 */
export async function widePlans(
  adminUrl: string,
  statements: readonly RecordedStatement[],
  tenantId: string,
  maxRows = 50,
  { plans = 'generic' }: { plans?: 'generic' | 'custom' } = {},
): Promise<string[]> {
  const client = new pg.Client({ connectionString: adminUrl });
  await client.connect();
  try {
    await client.query('SET ROLE payorch_app');
    await client.query(`SET plan_cache_mode = ${plans === 'custom' ? 'force_custom_plan' : 'force_generic_plan'}`);
    const wide: string[] = [];
    for (const [i, statement] of statements.entries()) {
      await client.query(`PREPARE plan_${i} AS ${statement.text}`);
      let read: { rows: number; where: string };
      try {
        read = widestRead(await explainPrepared(client, `plan_${i}`, statement, tenantId));
      } catch (error) {
        if ((error as { code?: string }).code === '23505' && /INSERT INTO/.test(statement.text)) continue;
        throw error;
      }
      if (read.rows > maxRows) wide.push(`${read.rows} rows at ${read.where} in: ${statement.text.replace(/\s+/g, ' ').slice(0, 300)}`);
    }
    return wide;
  } finally {
    await client.end();
  }
}
