import type { ThrottlerStorage } from '@nestjs/throttler';
import type { Redis } from 'ioredis';

import { RedisScript } from '@payorch/redis';

type ThrottlerStorageRecord = Awaited<ReturnType<ThrottlerStorage['increment']>>;

/**
 * One call per request (EVALSHA): count the hit in a fixed window that opens at the key's first hit (PEXPIRE ttl),
 * unless a block is running. Over the limit: with a block duration, a block key starts (further hits are
 * not counted while it runs); without one, the key is limited until its window ends.
 * Returns [hits, window ms left, blocked 0|1, block ms left].
 */
const INCREMENT = new RedisScript(`
local blockLeft = redis.call('PTTL', KEYS[2])
if blockLeft > 0 then
  return { tonumber(redis.call('GET', KEYS[1]) or '0'), redis.call('PTTL', KEYS[1]), 1, blockLeft }
end
local hits = redis.call('INCR', KEYS[1])
local left = redis.call('PTTL', KEYS[1])
if left < 0 then
  redis.call('PEXPIRE', KEYS[1], ARGV[1])
  left = tonumber(ARGV[1])
end
if hits <= tonumber(ARGV[2]) then return { hits, left, 0, 0 } end
if tonumber(ARGV[3]) > 0 then
  redis.call('SET', KEYS[2], '1', 'PX', ARGV[3])
  return { hits, left, 1, tonumber(ARGV[3]) }
end
return { hits, left, 1, left }`);

const seconds = (ms: number) => Math.max(0, Math.ceil(ms / 1000));

/**
 * @nestjs/throttler storage on the process's `command` Redis connection, so every gateway instance shares
 * the counters (`<prefix>:<throttler>:<tracker>`). `@nest-lab/throttler-storage-redis` does the same job but
 * declares `@nestjs/common` ≤ 11 as its peer (we run 12), hence this one script. Errors (Redis down: the
 * connection has no offline queue) reject; the guard decides to fail open.
 */
export class RedisThrottlerStorage implements ThrottlerStorage {
  constructor(
    private readonly redis: Redis,
    private readonly prefix: string,
  ) {}

  async increment(key: string, ttl: number, limit: number, blockDuration: number, throttlerName: string): Promise<ThrottlerStorageRecord> {
    // One hash tag, so the counter and its block key live in one cluster slot.
    const base = `${this.prefix}:${throttlerName}:{${key}}`;
    // By SHA: the script's text (and its compilation) only when Redis does not know it yet.
    const [hits, left, blocked, blockLeft] = (await INCREMENT.run(this.redis, [base, `${base}:blocked`], [ttl, limit, blockDuration])) as [
      number,
      number,
      number,
      number,
    ];
    return { totalHits: hits, timeToExpire: seconds(left), isBlocked: blocked === 1, timeToBlockExpire: seconds(blockLeft) };
  }
}
