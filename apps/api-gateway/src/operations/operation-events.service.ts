import { Inject, Injectable } from '@nestjs/common';

import type { Database } from '@payorch/db';
import { notFound, type TenantContext } from '@payorch/domain';
import { scrubPans } from '@payorch/logging';
import { type OperationStateName, toApiState } from '@payorch/operations';

import { decodeCursor, invalidCursor, type Page, toPage } from '../common/pagination';
import { DATABASE } from '../common/tokens';
import type { ListOperationEventsQuery, OperationEventResponse } from './dto/operation-event.dto';

interface OperationEventRow {
  createdAt: Date;
  data: unknown;
  fromState: OperationStateName | null;
  id: string;
  kind: string;
  operationId: string;
  toState: OperationStateName | null;
}

/**
 * The timeline of one operation: the OperationEvent rows its one writer (libs/operations transition.ts,
 * create.ts) appended with each step, read-only and tenant-scoped by RLS.
 */
@Injectable()
export class OperationEventsService {
  constructor(@Inject(DATABASE) private readonly db: Database) {}

  /**
   * Oldest first in insertion order (`seq`: steps written in the same millisecond keep their order, which
   * (createdAt, id) would not), so a timeline reads forward. The cursor is the list routes' opaque cursor of
   * the last step returned; the page goes on after that step's seq. An operation has tens of steps, all under
   * the (tenantId, operationId, seq) index.
   */
  list(ctx: TenantContext, operationId: string, query: ListOperationEventsQuery): Promise<Page<OperationEventResponse>> {
    return this.db.withTenant(ctx, async (tx) => {
      // Another tenant's operation is invisible under RLS: 404, as GET /v1/operations/{id} answers.
      const operation = await tx.terminalOperation.findUnique({ where: { id: operationId }, select: { id: true } });
      if (!operation) throw notFound('operation', operationId);
      const after = decodeCursor(query.cursor);
      const anchor = after ? await tx.operationEvent.findFirst({ where: { id: after.id, operationId }, select: { seq: true } }) : null;
      if (after && !anchor) throw invalidCursor();
      const rows = await tx.operationEvent.findMany({
        where: { operationId, ...(anchor ? { seq: { gt: anchor.seq } } : {}) },
        orderBy: { seq: 'asc' },
        take: query.limit + 1,
      });
      return toPage(rows as OperationEventRow[], query, toOperationEventResponse);
    });
  }
}

export function toOperationEventResponse(row: OperationEventRow): OperationEventResponse {
  return {
    id: row.id,
    operationId: row.operationId,
    kind: row.kind,
    fromState: row.fromState === null ? null : toApiState(row.fromState),
    toState: row.toState === null ? null : toApiState(row.toState),
    data: isRecord(row.data) ? (maskDeep(row.data) as Record<string, unknown>) : null,
    createdAt: row.createdAt.toISOString(),
  };
}

const isRecord = (value: unknown): value is Record<string, unknown> => value !== null && typeof value === 'object' && !Array.isArray(value);

/**
 * Steps already carry masked values only (drivers mask at decode time), but a terminal's display text or a
 * human's note is free text: any Luhn-valid card number in a string is masked again before it leaves.
 */
function maskDeep(value: unknown): unknown {
  if (typeof value === 'string') return scrubPans(value);
  if (Array.isArray(value)) return value.map(maskDeep);
  if (isRecord(value)) return Object.fromEntries(Object.entries(value).map(([k, v]) => [k, maskDeep(v)]));
  return value;
}
