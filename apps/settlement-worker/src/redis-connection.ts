import type { ConnectionOptions } from 'bullmq';

/** BullMQ connection for a redis:// URL; workers block on Redis, so no per-request retry cap. */
export function bullConnection(redisUrl: string): ConnectionOptions {
  return { url: redisUrl, maxRetriesPerRequest: null };
}
