import type { ConnectionOptions } from 'bullmq';

/**
 * Connection options like the worker's named `bull` connection (@payorch/redis REDIS_CONNECTION_DEFAULTS:
 * no per-request retry cap, as BullMQ workers need), for code that builds its own BullMQ clients outside
 * the app (tests, bench). The app itself shares one `bull` connection (WorkerModule: BullModule.forRootAsync).
 */
export function bullConnection(redisUrl: string): ConnectionOptions {
  return { url: redisUrl, maxRetriesPerRequest: null };
}
