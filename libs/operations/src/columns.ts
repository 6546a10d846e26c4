import type { Prisma } from '@payorch/db';

/** A JSON column's value; `null` is SQL NULL. */
export type JsonColumn = Prisma.InputJsonValue | null;

/** Columns a transition may set besides `state` (the schema has no @map: these are the column names). */
export interface OperationColumns {
  approvalCode?: string | null;
  completedAt?: Date | null;
  error?: JsonColumn;
  maskedPan?: string | null;
  protocolRefs?: JsonColumn;
  receipt?: JsonColumn;
  responseCode?: string | null;
  responseMessage?: string | null;
  result?: JsonColumn;
  rrn?: string | null;
  stateReason?: string | null;
  subStatus?: string | null;
}
