import { randomBytes } from 'node:crypto';

import type { Redis } from 'ioredis';

export const testRedisUrl = (): string => process.env.TEST_REDIS_URL ?? 'redis://127.0.0.1:6379';

/** A unique Redis key prefix per test file, so files run in parallel against one Redis. */
export function testRedisPrefix(label = 'test'): string {
  return `t:${label}:${process.pid}:${randomBytes(4).toString('hex')}`;
}

/** Deletes every key under a prefix (SCAN, not KEYS). */
export async function deleteRedisPrefix(redis: Redis, prefix: string): Promise<void> {
  let cursor = '0';
  do {
    const [next, keys] = await redis.scan(cursor, 'MATCH', `${prefix}*`, 'COUNT', 500);
    if (keys.length) await redis.del(...keys);
    cursor = next;
  } while (cursor !== '0');
}

/** The names of the server's client connections (CLIENT LIST) that start with `prefix` or pass `keep`, sorted. */
export async function redisClientNames(probe: Redis, keep: string | ((name: string) => boolean)): Promise<string[]> {
  const accept = typeof keep === 'string' ? (name: string) => name.startsWith(keep) : keep;
  const list = (await probe.client('LIST')) as string;
  return list
    .split('\n')
    .map((line) => /\bname=(\S*)/.exec(line)?.[1] ?? '')
    .filter(accept)
    .sort();
}
