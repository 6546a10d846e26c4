import { z } from 'zod';

import { Prisma, type TransactionClient } from '@payorch/db';
import { ApiError } from '@payorch/domain';

import { isStorableInstant } from './zod';

/**
 * Keyset pagination over (createdAt DESC, id DESC). The cursor is opaque to clients:
 * base64url of the last row's sort key.
 *
 * The page after a cursor is `(createdAt, id) < (c, i)`: a row comparison, which bounds the index scan
 * at the cursor (`createdAt < c OR (createdAt = c AND id < i)` cannot, so deep pages of a rare filter
 * read everything before them: 456 ms at 1M operations, issue 19). Prisma cannot express it, so
 * `keysetPage` selects the page's ids with SQL (same transaction, same RLS as the caller's `withTenant`)
 * and the caller loads those rows with Prisma. Indexes end in (createdAt, id) for every filtered list
 * that can grow large (bench/scale measures them).
 */
export const paginationQuery = z.object({
  cursor: z.string().max(200).optional(),
  limit: z.coerce.number().int().min(1).max(200).default(50),
});
export type PaginationQuery = z.infer<typeof paginationQuery>;

export interface Page<T> {
  data: T[];
  nextCursor: string | null;
}

interface CursorKey {
  createdAt: Date;
  id: string;
}

export function decodeCursor(cursor: string | undefined): CursorKey | null {
  if (!cursor) return null;
  try {
    const { c, i } = JSON.parse(Buffer.from(cursor, 'base64url').toString('utf8')) as { c: string; i: string };
    // A cursor is read by clients and can be forged: `c` must be an instant PostgreSQL takes (`+275760-09-13T…` was a 500).
    const createdAt = new Date(c);
    if (typeof c !== 'string' || typeof i !== 'string' || !UUID.test(i) || !isStorableInstant(createdAt)) throw new Error('bad cursor');
    return { createdAt, id: i };
  } catch {
    throw invalidCursor();
  }
}

/** 400 for a cursor this API did not return (or whose row is gone from the list it paged). */
export const invalidCursor = () =>
  new ApiError('VALIDATION_FAILED', 'cursor: not a cursor returned by this API', {
    issues: [{ field: 'cursor', message: 'not a cursor returned by this API' }],
  });

const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;

/** The opaque cursor of a row (its sort key); benches and tests build deep-page cursors with it. */
export const encodeCursor = (row: CursorKey) => Buffer.from(JSON.stringify({ c: row.createdAt.toISOString(), i: row.id })).toString('base64url');

/** The order of every list; pass it to the `findMany` that loads a page's rows. */
export const KEYSET_ORDER = [{ createdAt: 'desc' as const }, { id: 'desc' as const }];

/** Tables listed with keyset pagination (their SQL names; never from input). */
export type KeysetTable =
  | 'Agent'
  | 'ApiKey'
  | 'AssistMerchant'
  | 'Campaign'
  | 'CampaignTarget'
  | 'AuditLog'
  | 'EgressRule'
  | 'RelaySession'
  | 'Settlement'
  | 'SettlementSchedule'
  | 'Store'
  | 'Terminal'
  | 'TerminalOperation'
  | 'WalletPayment'
  | 'WebhookDelivery'
  | 'WebhookEndpoint';

/**
 * A column filter: equality (`undefined` = no filter), `null` / `{ not: null }`, a range (`gte`/`lte`/`lt`;
 * `gte` = `lte` reads as equality), or `{ in: sql }` (a sub-select of values, written in code). The key is the
 * column, or `column:label` for a second filter on the same column.
 */
export type KeysetFilter =
  string | number | boolean | Date | null | { gte?: Date | string; lte?: Date | string; lt?: Date | string } | { not: null } | { in: Prisma.Sql } | undefined;

const COLUMN = /^[A-Za-z][A-Za-z0-9]*$/;

function column(name: string): Prisma.Sql {
  if (!COLUMN.test(name)) throw new Error(`not a column name: ${name}`); // programmer error: names come from code
  return Prisma.raw(`"${name}"`);
}

/** Values go as untyped parameters, so PostgreSQL reads them as the column's type (uuid, enum, date, timestamptz). */
function value(v: string | number | boolean | Date): Prisma.Sql {
  return Prisma.sql`${v instanceof Date ? v.toISOString() : v}`;
}

function conditions(filters: Readonly<Record<string, KeysetFilter>>): Prisma.Sql[] {
  const out: Prisma.Sql[] = [];
  for (const [name, filter] of Object.entries(filters)) {
    if (filter === undefined) continue;
    const col = column(name.split(':')[0]!); // `column:label` puts a second filter on one column
    if (filter === null) {
      out.push(Prisma.sql`${col} IS NULL`);
      continue;
    }
    if (typeof filter !== 'object' || filter instanceof Date) {
      out.push(Prisma.sql`${col} = ${value(filter)}`);
      continue;
    }
    if ('not' in filter) {
      out.push(Prisma.sql`${col} IS NOT NULL`);
      continue;
    }
    if ('in' in filter) {
      out.push(Prisma.sql`${col} IN (${filter.in})`);
      continue;
    }
    const { gte, lte, lt } = filter;
    if (gte !== undefined && lte !== undefined && value(gte).values[0] === value(lte).values[0]) {
      out.push(Prisma.sql`${col} = ${value(gte)}`); // one day: an equality keeps (…, day, createdAt, id) indexes ordered
      continue;
    }
    if (gte !== undefined) out.push(Prisma.sql`${col} >= ${value(gte)}`);
    if (lte !== undefined) out.push(Prisma.sql`${col} <= ${value(lte)}`);
    if (lt !== undefined) out.push(Prisma.sql`${col} < ${value(lt)}`);
  }
  return out;
}

/**
 * One page of a list: the ids of the `limit + 1` rows after the cursor that pass `filters` (one SQL
 * statement with the row comparison, in the caller's tenant transaction), then `load(ids)` fetches them
 * (a Prisma `findMany({ where: { id: { in: ids } }, orderBy: KEYSET_ORDER })`, with any `include`).
 */
export async function keysetPage<R extends CursorKey, T>(
  tx: TransactionClient,
  table: KeysetTable,
  filters: Readonly<Record<string, KeysetFilter>>,
  query: PaginationQuery,
  load: (ids: string[]) => Promise<R[]>,
  map: (row: R) => T,
  /** The time column of the sort key (`createdAt`; relay sessions sort by `startedAt`, mapped to `createdAt` by `load`). */
  sortColumn: 'createdAt' | 'startedAt' = 'createdAt',
): Promise<Page<T>> {
  const after = decodeCursor(query.cursor);
  const where = conditions(filters);
  const sort = column(sortColumn);
  if (after) where.push(Prisma.sql`(${sort}, "id") < (${after.createdAt.toISOString()}::timestamptz, ${after.id}::uuid)`);
  // The output column is not named "id": ORDER BY "id" would then sort the text, not the indexed uuid.
  const rows = await tx.$queryRaw<{ pageId: string }[]>`
    SELECT "id"::text AS "pageId" FROM ${column(table)}
    ${where.length ? Prisma.sql`WHERE ${Prisma.join(where, ' AND ')}` : Prisma.empty}
    ORDER BY ${sort} DESC, "id" DESC
    LIMIT ${query.limit + 1}`;
  if (rows.length === 0) return { data: [], nextCursor: null };
  const loaded = await load(rows.map((r) => r.pageId));
  // `load` keeps KEYSET_ORDER; a row deleted between the two statements is simply absent.
  return toPage(loaded, query, map, rows.length > query.limit);
}

/** Turns `limit + 1` fetched rows into a page. */
export function toPage<R extends CursorKey, T>(rows: R[], query: PaginationQuery, map: (row: R) => T, more = rows.length > query.limit): Page<T> {
  const slice = rows.length > query.limit ? rows.slice(0, query.limit) : rows;
  return { data: slice.map(map), nextCursor: more && slice.length > 0 ? encodeCursor(slice[slice.length - 1]!) : null };
}
