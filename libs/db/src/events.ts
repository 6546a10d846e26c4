import type { TransactionClient } from './client';

/**
 * Every tenant-visible event type. Producers write them with `publishEvent` in the same transaction
 * as the change (transactional outbox); the live stream and webhook delivery read them from there.
 */
export type DomainEventType =
  | 'operation.created'
  | 'operation.progress'
  | 'operation.completed'
  | 'operation.unknown'
  | 'operation.recovered'
  | 'terminal.online'
  | 'terminal.offline'
  | 'agent.online'
  | 'agent.offline'
  | 'relay.denied'
  | 'settlement.completed'
  | 'settlement.failed'
  | 'settlement.discrepancy'
  | 'wallet_payment.created'
  | 'wallet_payment.updated';

export interface PublishEventInput {
  type: DomainEventType;
  subjectType: 'operation' | 'terminal' | 'agent' | 'relay' | 'settlement' | 'wallet_payment';
  subjectId: string | null;
  /** Ids, states, amounts, masked PANs only: never secrets, full PANs or tokens. */
  data: Record<string, unknown>;
}

export interface PublishedEvent extends PublishEventInput {
  id: string;
  tenantId: string;
  createdAt: string;
}

/** Inserts the event inside the caller's tenant transaction and returns it (for an after-commit notify). */
export async function publishEvent(tx: TransactionClient, tenantId: string, input: PublishEventInput): Promise<PublishedEvent> {
  const row = await tx.domainEvent.create({
    data: { tenantId, type: input.type, subjectType: input.subjectType, subjectId: input.subjectId, data: input.data as never },
  });
  return { ...input, id: row.id, tenantId, createdAt: row.createdAt.toISOString() };
}
