import { z } from 'zod';

import { ApiError } from '@payorch/domain';

/**
 * Keyset pagination over (createdAt DESC, id DESC). The cursor is opaque to clients:
 * base64url of the last row's sort key.
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
    const createdAt = new Date(c);
    if (typeof i !== 'string' || Number.isNaN(createdAt.getTime())) throw new Error('bad cursor');
    return { createdAt, id: i };
  } catch {
    throw new ApiError('VALIDATION_FAILED', 'cursor: not a cursor returned by this API', {
      issues: [{ field: 'cursor', message: 'not a cursor returned by this API' }],
    });
  }
}

const encodeCursor = (row: CursorKey) => Buffer.from(JSON.stringify({ c: row.createdAt.toISOString(), i: row.id })).toString('base64url');

/** Prisma `where` fragment and `orderBy` for the page after `cursor`. */
export function keyset(query: PaginationQuery) {
  const after = decodeCursor(query.cursor);
  return {
    where: after ? { OR: [{ createdAt: { lt: after.createdAt } }, { createdAt: after.createdAt, id: { lt: after.id } }] } : {},
    orderBy: [{ createdAt: 'desc' as const }, { id: 'desc' as const }],
    take: query.limit + 1,
  };
}

/** Turns `limit + 1` fetched rows into a page. */
export function toPage<R extends CursorKey, T>(rows: R[], query: PaginationQuery, map: (row: R) => T): Page<T> {
  const more = rows.length > query.limit;
  const slice = more ? rows.slice(0, query.limit) : rows;
  return { data: slice.map(map), nextCursor: more ? encodeCursor(slice[slice.length - 1]!) : null };
}
