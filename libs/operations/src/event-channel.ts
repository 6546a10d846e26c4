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
