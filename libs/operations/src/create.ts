import { randomUUID } from 'node:crypto';

import { isSqlTransaction, Prisma, type PublishedEvent, type SqlClient } from '@payorch/db';
import type { OperationType } from '@payorch/drivers';

import { toDbAmount } from './amounts';
import { type OperationRow, operationRowColumns } from './records';
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
  /** The new row's id (default: a new UUID), e.g. for an audit row written before it. */
  id?: string;
}

export interface InsertOperationOptions {
  /**
   * The INSERT is the transaction's last statement (the caller issued its other writes, such as the audit row,
   * before): in a SqlTransaction, COMMIT is written with it (`commitNow`), and the transaction ends in the INSERT's
   * round trip instead of one more. Its DomainEvent is then made from the inputs, which the PENDING row holds as
   * they are (the database adds only the times, which no event carries). Ignored in a Prisma transaction.
   */
  last?: boolean;
}

/**
 * The one way a TerminalOperation comes into being: PENDING, with its `created` OperationEvent (same
 * statement) and `operation.created` DomainEvent, in the caller's tenant transaction. A taken
 * `(tenantId, idempotencyKey)` rejects with Prisma's P2002, as `terminalOperation.create` would.
 */
export async function insertOperation(
  tx: SqlClient,
  input: NewOperation,
  options: InsertOperationOptions = {},
): Promise<{ row: OperationRow; event: PublishedEvent }> {
  const id = input.id ?? randomUUID();
  const amount = toDbAmount(input.amount);
  const cashbackAmount = toDbAmount(input.cashbackAmount, 'cashbackAmount');
  const inserting = tx.$queryRaw<OperationRow[]>`
      WITH created AS (
        INSERT INTO "TerminalOperation" ("id", "tenantId", "terminalId", "storeId", "type", "amount", "cashbackAmount", "currency",
          "originalOperationId", "idempotencyKey", "requestHash", "state", "createdAt", "updatedAt")
        VALUES (${id}::uuid, ${input.tenantId}::uuid, ${input.terminalId}::uuid, ${input.storeId}::uuid, ${toDbType(input.type)}::"OperationType",
          ${amount}::bigint, ${cashbackAmount}::bigint, ${input.currency ?? null}::text, ${input.originalOperationId ?? null}::uuid,
          ${input.idempotencyKey}, ${input.requestHash}, 'PENDING', clock_timestamp(), clock_timestamp())
        RETURNING ${operationRowColumns()}
      ), logged AS (
        INSERT INTO "OperationEvent" ("id", "tenantId", "operationId", "kind", "fromState", "toState", "data", "createdAt")
        SELECT gen_random_uuid(), "tenantId", "id", 'created', NULL, 'PENDING', NULL, clock_timestamp() FROM created
      )
      SELECT * FROM created`;
  const created = { kind: 'created', event: 'operation.created' } as const;
  if (options.last === true && isSqlTransaction(tx)) {
    // Issued in this tick, behind the INSERT: the DomainEvent (deferred) and COMMIT leave in its write.
    const publishing = publishStep(tx, pendingRow(id, input, amount, cashbackAmount), null, created);
    tx.commitNow();
    const [rows, event] = await Promise.all([Promise.resolve(inserting).catch((error: unknown) => Promise.reject(asUniqueViolation(error))), publishing]);
    return { row: rows[0]!, event: event! };
  }
  let rows: OperationRow[];
  try {
    rows = await inserting;
  } catch (error) {
    throw asUniqueViolation(error);
  }
  const row = rows[0]!;
  const event = await publishStep(tx, row, null, created);
  return { row, event: event! };
}

/** The row the INSERT writes, as far as its DomainEvent reads it (eventData): the times are the database's. */
function pendingRow(id: string, input: NewOperation, amount: bigint | null, cashbackAmount: bigint | null): OperationRow {
  const now = new Date();
  return {
    amount,
    approvalCode: null,
    cashbackAmount,
    completedAt: null,
    createdAt: now,
    currency: input.currency ?? null,
    error: null,
    id,
    maskedPan: null,
    originalOperationId: input.originalOperationId ?? null,
    protocolRefs: null,
    receipt: null,
    recoveryAttempts: 0,
    responseCode: null,
    responseMessage: null,
    result: null,
    rrn: null,
    state: 'PENDING',
    stateReason: null,
    storeId: input.storeId,
    subStatus: null,
    tenantId: input.tenantId,
    terminalId: input.terminalId,
    type: toDbType(input.type),
    updatedAt: now,
  };
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
