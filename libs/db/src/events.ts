import { randomUUID } from 'node:crypto';

import { Prisma } from './client';
import { canDefer, type SqlClient, TenantSql } from './sql-transaction';

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
  /**
   * The subject as the event's own change left it (an operation's API view, written by `transitionOperation` from the
   * row its statement returned), carried on the live pub/sub message only: never stored in the DomainEvent row, never
   * sent to a client as part of the event (streams and webhooks read the stored rows). A `?wait=` request whose run-over
   * event carries it answers with it instead of reading the row again (issue 19: one transaction fewer per operation).
   */
  subject?: Record<string, unknown>;
}

let lastEventTime = 0;

/**
 * Strictly increasing per process, in ms (the column's precision): the sequencer numbers committed events by
 * (createdAt, id), so two events of one transaction (a progress step and the outcome) keep their order.
 */
function eventTime(): Date {
  lastEventTime = Math.max(Date.now(), lastEventTime + 1);
  return new Date(lastEventTime);
}

/** Events written in each open `withTenant` transaction, handed to `onCommitted` once it commits. */
const pending = new WeakMap<object, PublishedEvent[]>();

/** The events of the transaction `tx` belongs to (one tenant's part of a multi-tenant transaction: that transaction's). */
const eventsOf = (tx: object): PublishedEvent[] | undefined => pending.get(tx instanceof TenantSql ? tx.transaction : tx);

/** Called by Database.withTenant / withTenantSql / withTenantsSql: starts collecting the events of a transaction. */
export function collectEvents(tx: object): PublishedEvent[] {
  const events: PublishedEvent[] = [];
  pending.set(tx, events);
  return events;
}

/**
 * Inserts the event inside the caller's tenant transaction and returns it. When the transaction
 * commits, the Database's `onCommitted` hook receives it (live streams, webhook fan-out); a rolled
 * back transaction publishes nothing. Its id and time are made here (as Prisma's `@default` did), so
 * nothing waits for the INSERT's answer: in a SqlTransaction it is pipelined with the COMMIT.
 */
export async function publishEvent(tx: SqlClient, tenantId: string, input: PublishEventInput): Promise<PublishedEvent> {
  return (await publishEvents(tx, tenantId, [input]))[0]!;
}

/**
 * `publishEvent` for several events of one tenant: one INSERT for all of them (a reconnect storm's `agent.online` and
 * `terminal.online` events were one statement each, issue 19), in the order given (their times increase in it).
 */
export async function publishEvents(tx: SqlClient, tenantId: string, inputs: readonly PublishEventInput[]): Promise<PublishedEvent[]> {
  if (inputs.length === 0) return [];
  const events = newEvents(tenantId, inputs);
  const insert = insertEvents(tenantId, events);
  if (canDefer(tx)) tx.defer(insert);
  else await tx.$executeRaw(insert);
  eventsOf(tx)?.push(...events);
  return events;
}

/** Events made for `tenantId` from `inputs`, in order (their times increase in it): for publishEvents or insertEvents. */
export function newEvents(tenantId: string, inputs: readonly PublishEventInput[]): PublishedEvent[] {
  return inputs.map((input): PublishedEvent => ({ ...input, ...eventIdentity(), tenantId }));
}

/**
 * The INSERT of `events`' DomainEvent rows (all of `tenantId`): publishEvents' statement, for a writer that sends it
 * inside a statement of its own (a data-modifying CTE) and hands the events over with `recordEvent`.
 */
export function insertEvents(tenantId: string, events: readonly PublishedEvent[]): Prisma.Sql {
  return Prisma.sql`INSERT INTO "DomainEvent" ("id", "tenantId", "type", "subjectType", "subjectId", "data", "createdAt")
    SELECT x."id", ${tenantId}::uuid, x."type", x."subjectType", x."subjectId", x."data"::jsonb, x."createdAt"
    FROM unnest(${events.map((e) => e.id)}::uuid[], ${events.map((e) => e.type)}::text[], ${events.map((e) => e.subjectType)}::text[],
      ${events.map((e) => e.subjectId)}::text[], ${events.map((e) => JSON.stringify(e.data))}::text[], ${events.map((e) => e.createdAt)}::timestamptz[])
      AS x("id", "type", "subjectType", "subjectId", "data", "createdAt")`;
}

/**
 * A new event's id and time, for a writer that inserts its DomainEvent row in a statement of its own (the operation
 * owner's transition, which writes the row, its step and its event in one statement): the same identity
 * `publishEvents` gives, so events keep their order within a transaction and across them.
 */
export function eventIdentity(): { id: string; createdAt: string } {
  return { id: randomUUID(), createdAt: eventTime().toISOString() };
}

/** Hands an event its writer inserted itself (eventIdentity) to the transaction's `onCommitted`, as publishEvents does. */
export function recordEvent(tx: SqlClient, event: PublishedEvent): void {
  eventsOf(tx)?.push(event);
}

/** The event lists of transactions that sent a statement which may insert an event (expectEvents). */
const expected = new WeakSet<PublishedEvent[]>();

/**
 * Says, when its statement is sent, that the transaction may write an event whose row comes back only with the
 * answer (recordEvent): the Database then treats it as writing events from now on (its COMMIT carries the event
 * sequencer's call, and other commits leave theirs to it), as it does for publishEvents at once.
 */
export function expectEvents(tx: SqlClient): void {
  const events = eventsOf(tx);
  if (events !== undefined) expected.add(events);
}

/** The transaction whose events these are has written events, or may have (expectEvents). */
export function writesEvents(events: PublishedEvent[]): boolean {
  return events.length > 0 || expected.has(events);
}
