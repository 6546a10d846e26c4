import type { PublishedEvent } from '@payorch/db';

/** Redis pub/sub channel of a tenant's live events. */
export const eventsChannel = (prefix: string, tenantId: string): string => `${prefix}:events:${tenantId}`;

/** Anything that can PUBLISH (an ioredis client). */
export interface Publisher {
  publish(channel: string, message: string): Promise<unknown>;
}

/** An EventSink that publishes committed domain events to their tenant's channel (best effort: the DomainEvent table is the record). */
export function redisEventSink(redis: Publisher, prefix: string, onError?: (error: Error) => void) {
  return (events: readonly PublishedEvent[]): void => {
    for (const event of events) {
      redis.publish(eventsChannel(prefix, event.tenantId), JSON.stringify(event)).catch((error: unknown) => onError?.(error as Error));
    }
  };
}

/**
 * Publishes domain events to their tenants' live channels once their transaction has COMMITTED
 * (never inside it: a rolled-back event must not be seen) and they are numbered (`await db.eventsSettled()`:
 * a live stream woken by the publish reads the numbered log). A Database's own `onCommitted` does both. Every producer that writes with
 * `publishEvent` calls this with the returned events after `withTenant` resolves. Best effort and
 * never throws: the DomainEvent table stays the record (the SSE stream catches up from it, and the
 * webhook sweep fans out whatever pub/sub missed). Resolves when every PUBLISH has been answered.
 */
export async function notifyCommitted(
  redis: Publisher,
  prefix: string,
  events: readonly (PublishedEvent | undefined | null)[],
  onError?: (error: Error) => void,
): Promise<void> {
  await Promise.all(
    events
      .filter((event): event is PublishedEvent => event !== undefined && event !== null)
      .map((event) => redis.publish(eventsChannel(prefix, event.tenantId), JSON.stringify(event)).catch((error: unknown) => onError?.(error as Error))),
  );
}
