import { Prisma, type PublishedEvent, type SqlClient } from '@payorch/db';
import type { OperationType } from '@payorch/drivers';

import { toDbAmount } from './amounts';
import type { OperationRow } from './records';
import { toDbType } from './state-machine';
import { publishStep } from './transition';

export interface NewOperation {
  tenantId: string;
  terminalId: string;
  storeId: string;
  type: OperationType;
  amount?: number | null;
  cashbackAmount?: number | null;
  currency?: string | null;
  originalOperationId?: string | null;
  idempotencyKey: string;
  requestHash: string;
}

/**
 * The one way a TerminalOperation comes into being: PENDING, with its `created` OperationEvent (same
 * statement) and `operation.created` DomainEvent, in the caller's tenant transaction. A taken
 * `(tenantId, idempotencyKey)` rejects with Prisma's P2002, as `terminalOperation.create` would.
 */
export async function insertOperation(tx: SqlClient, input: NewOperation): Promise<{ row: OperationRow; event: PublishedEvent }> {
  const amount = toDbAmount(input.amount);
  const cashbackAmount = toDbAmount(input.cashbackAmount, 'cashbackAmount');
  let rows: OperationRow[];
  try {
    rows = await tx.$queryRaw<OperationRow[]>`
      WITH created AS (
        INSERT INTO "TerminalOperation" ("id", "tenantId", "terminalId", "storeId", "type", "amount", "cashbackAmount", "currency",
          "originalOperationId", "idempotencyKey", "requestHash", "state", "createdAt", "updatedAt")
        VALUES (gen_random_uuid(), ${input.tenantId}::uuid, ${input.terminalId}::uuid, ${input.storeId}::uuid, ${toDbType(input.type)}::"OperationType",
          ${amount}::bigint, ${cashbackAmount}::bigint, ${input.currency ?? null}::text, ${input.originalOperationId ?? null}::uuid,
          ${input.idempotencyKey}, ${input.requestHash}, 'PENDING', clock_timestamp(), clock_timestamp())
        RETURNING *
      ), logged AS (
        INSERT INTO "OperationEvent" ("id", "tenantId", "operationId", "kind", "fromState", "toState", "data", "createdAt")
        SELECT gen_random_uuid(), "tenantId", "id", 'created', NULL, 'PENDING', NULL, clock_timestamp() FROM created
      )
      SELECT * FROM created`;
  } catch (error) {
    throw asUniqueViolation(error);
  }
  const row = rows[0]!;
  const event = await publishStep(tx, row, null, { kind: 'created', event: 'operation.created' });
  return { row, event: event! };
}

/**
 * A raw statement's unique violation (Prisma's P2010 / 23505, or the bare driver's 23505 in a SqlTransaction)
 * as the P2002 a Prisma `create` raises, so callers handle one code.
 */
function asUniqueViolation(error: unknown): unknown {
  if (error instanceof Error && (error as { code?: unknown }).code === '23505') {
    return new Prisma.PrismaClientKnownRequestError(error.message, { code: 'P2002', clientVersion: Prisma.prismaVersion.client, meta: { cause: error } });
  }
  if (!(error instanceof Prisma.PrismaClientKnownRequestError) || error.code !== 'P2010') return error;
  const cause = (error.meta as { driverAdapterError?: { cause?: { kind?: string; originalCode?: string } } } | undefined)?.driverAdapterError?.cause;
  if (cause?.kind !== 'UniqueConstraintViolation' && cause?.originalCode !== '23505') return error;
  return new Prisma.PrismaClientKnownRequestError(error.message, { code: 'P2002', clientVersion: error.clientVersion, meta: error.meta });
}
