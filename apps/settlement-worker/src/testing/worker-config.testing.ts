import { randomBytes } from 'node:crypto';

import { loadConfig, type WorkerConfig, workerConfigSchema } from '@payorch/config';
import { bullPrefix } from '@payorch/redis';
import { testRedisPrefix, testRedisUrl } from '@payorch/testing';

import { bullConnection } from '../redis-connection';

/**
 * TEST TOOL: the settlement worker's configuration for a test against its own database (`appUrl`) and Redis key
 * prefix (`prefix`, made unique per run), silent, with a fresh master key; `overrides` on top.
 */
export function testWorkerConfig(appUrl: string, prefix: string, overrides: Record<string, string> = {}): WorkerConfig {
  return loadConfig('settlement-worker', workerConfigSchema, {
    DATABASE_APP_URL: appUrl,
    REDIS_URL: testRedisUrl(),
    REDIS_KEY_PREFIX: testRedisPrefix(prefix),
    LOG_LEVEL: 'silent',
    PAYORCH_MASTER_KEY: `k1:${randomBytes(32).toString('base64')}`,
    ...overrides,
  });
}

/** TEST TOOL: the options of a test's own BullMQ Queue / QueueEvents on the worker's Redis and key prefix. */
export function testQueueOptions(config: Pick<WorkerConfig, 'REDIS_URL' | 'REDIS_KEY_PREFIX'>) {
  return { connection: bullConnection(config.REDIS_URL), prefix: bullPrefix(config.REDIS_KEY_PREFIX) };
}
