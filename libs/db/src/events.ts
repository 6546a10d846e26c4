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
  | 'terminal.created'
  | 'terminal.updated'
  | 'terminal.deleted'
  | 'agent.online'
  | 'agent.offline'
  | 'agent.enrolled'
  | 'agent.revoked'
  | 'agent.deleted'
  | 'relay.denied'
  | 'tenant.disabled'
  | 'tenant.enabled'
  | 'settlement.completed'
  | 'settlement.failed'
  | 'settlement.discrepancy'
  | 'wallet_payment.created'
  | 'wallet_payment.updated'
  | 'wallet_payment.captured'
  | 'wallet_payment.partially_captured'
  | 'wallet_payment.canceled'
  | 'wallet_payment.partially_canceled'
  | 'wallet_payment.refunded'
  | 'wallet_payment.partially_refunded'
  | 'wallet_payment.operation_failed'
  | 'campaign.created'
  | 'campaign.paused'
  | 'campaign.resumed'
  | 'campaign.canceled'
  | 'campaign.completed'
  | 'campaign.wave_started'
  | 'campaign.wave_completed'
  | 'campaign.wave_halted';

export interface PublishEventInput {
  type: DomainEventType;
  subjectType: 'operation' | 'terminal' | 'agent' | 'relay' | 'settlement' | 'tenant' | 'wallet_payment' | 'campaign';
  subjectId: string | null;
  /** Ids, states, amounts, masked PANs only: never secrets, full PANs or tokens. */
  data: Record<string, unknown>;
}

export interface PublishedEvent extends PublishEventInput {
  id: string;
  tenantId: string;
  createdAt: string;
}

/** Events written in each open `withTenant` transaction, handed to `onCommitted` once it commits. */
const pending = new WeakMap<object, PublishedEvent[]>();

/** Called by Database.withTenant: starts collecting the events of a transaction. */
export function collectEvents(tx: TransactionClient): PublishedEvent[] {
  const events: PublishedEvent[] = [];
  pending.set(tx, events);
  return events;
}

/**
 * Inserts the event inside the caller's tenant transaction and returns it. When the transaction
 * commits, the Database's `onCommitted` hook receives it (live streams, webhook fan-out); a rolled
 * back transaction publishes nothing.
 */
export async function publishEvent(tx: TransactionClient, tenantId: string, input: PublishEventInput): Promise<PublishedEvent> {
  const row = await tx.domainEvent.create({
    data: { tenantId, type: input.type, subjectType: input.subjectType, subjectId: input.subjectId, data: input.data as never },
  });
  const event: PublishedEvent = { ...input, id: row.id, tenantId, createdAt: row.createdAt.toISOString() };
  pending.get(tx)?.push(event);
  return event;
}
