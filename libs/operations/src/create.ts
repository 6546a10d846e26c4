import type { PublishedEvent, TransactionClient } from '@payorch/db';
import type { OperationType } from '@payorch/drivers';

import { toDbAmount } from './amounts';
import { type OperationRow, recordStep } from './records';
import { toDbType } from './state-machine';

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

/** Inserts a PENDING operation with its `created` OperationEvent and `operation.created` DomainEvent. */
export async function insertOperation(tx: TransactionClient, input: NewOperation): Promise<{ row: OperationRow; event: PublishedEvent }> {
  const row = (await tx.terminalOperation.create({
    data: {
      tenantId: input.tenantId,
      terminalId: input.terminalId,
      storeId: input.storeId,
      type: toDbType(input.type),
      amount: toDbAmount(input.amount),
      cashbackAmount: toDbAmount(input.cashbackAmount, 'cashbackAmount'),
      currency: input.currency ?? null,
      originalOperationId: input.originalOperationId ?? null,
      idempotencyKey: input.idempotencyKey,
      requestHash: input.requestHash,
    },
  })) as OperationRow;
  const event = await recordStep(tx, row, { kind: 'created', from: null, to: 'PENDING', event: 'operation.created' });
  return { row, event: event! };
}
