import { Controller, Get, type INestApplication, Module } from '@nestjs/common';
import { APP_FILTER, APP_GUARD } from '@nestjs/core';
import { Test } from '@nestjs/testing';
import { ThrottlerModule } from '@nestjs/throttler';
import type { NextFunction, Response } from 'express';
import { Redis } from 'ioredis';
import request from 'supertest';

import { type GatewayConfig } from '@payorch/config';
import { deleteRedisPrefix, testRedisPrefix, testRedisUrl, waitFor } from '@payorch/testing';

import { ErrorFilter } from './error.filter';
import { RateLimitGuard, rateLimitOptions } from './rate-limit.guard';
import { RedisThrottlerStorage } from './redis-throttler.storage';
import type { PayorchRequest } from './request-context';
import { assignRequestId } from './request-id.middleware';
import { LOGGER } from './tokens';

@Controller()
class ProbeController {
  @Get('a')
  a() {
    return { ok: true };
  }

  @Get('b')
  b() {
    return { ok: true };
  }
}

/** A gateway slice: the request id, a stand-in for ApiKeyGuard (`x-key` → req.apiKey, `x-tenant` → req.tenant), the throttler and the filter. */
async function slice(
  redis: Redis,
  config: Pick<GatewayConfig, 'RATE_LIMIT_PER_MINUTE' | 'RATE_LIMIT_PER_TENANT_PER_MINUTE' | 'REDIS_KEY_PREFIX'>,
  warnings: unknown[] = [],
): Promise<INestApplication> {
  @Module({
    controllers: [ProbeController],
    imports: [ThrottlerModule.forRootAsync({ useFactory: () => rateLimitOptions(config as GatewayConfig, redis) })],
    providers: [
      { provide: LOGGER, useValue: { warn: (...args: unknown[]) => warnings.push(args), error: () => undefined } },
      { provide: APP_GUARD, useClass: RateLimitGuard },
      { provide: APP_FILTER, useClass: ErrorFilter },
    ],
  })
  class SliceModule {}

  const moduleRef = await Test.createTestingModule({ imports: [SliceModule] }).compile();
  const app = moduleRef.createNestApplication({ logger: false });
  app.use((req: PayorchRequest, res: Response, next: NextFunction) => {
    assignRequestId(req, res);
    const key = req.header('x-key');
    if (key) {
      req.apiKey = { id: key, scopes: [] };
      const tenantId = req.header('x-tenant') ?? `tenant-of-${key}`;
      req.tenant = { tenantId, actor: { type: 'api_key', id: key }, requestId: req.requestId };
    }
    next();
  });
  await app.init();
  return app;
}

describe(RateLimitGuard.name, () => {
  const redis = new Redis(testRedisUrl(), { enableOfflineQueue: false, maxRetriesPerRequest: 2 });
  const prefix = testRedisPrefix('ratelimit');
  const config = { RATE_LIMIT_PER_MINUTE: 3, RATE_LIMIT_PER_TENANT_PER_MINUTE: 5, REDIS_KEY_PREFIX: prefix };
  let app: INestApplication;
  let other: INestApplication;

  beforeAll(async () => {
    await waitFor(() => redis.status === 'ready', { what: 'redis connected' });
    app = await slice(redis, config);
    other = await slice(redis, config);
  });

  afterAll(async () => {
    await app?.close();
    await other?.close();
    await deleteRedisPrefix(redis, prefix);
    redis.disconnect();
  });

  it('counts per API key across routes, with X-RateLimit-* headers, then 429 RATE_LIMITED with Retry-After', async () => {
    const remaining: string[] = [];
    for (const path of ['/a', '/b', '/a']) {
      const res = await request(app.getHttpServer()).get(path).set('x-key', 'key-1');
      expect(res.status).toBe(200);
      expect(res.headers['x-ratelimit-limit']).toBe('3');
      remaining.push(res.headers['x-ratelimit-remaining']);
    }
    expect(remaining).toEqual(['2', '1', '0']);

    const limited = await request(app.getHttpServer()).get('/b').set('x-key', 'key-1').set('x-request-id', 'rate-limit-0001');
    expect(limited.status).toBe(429);
    const retryAfter = Number(limited.headers['retry-after']);
    expect(retryAfter).toBeGreaterThan(0);
    expect(retryAfter).toBeLessThanOrEqual(60);
    expect(limited.headers['x-ratelimit-limit']).toBe('3');
    expect(limited.headers['x-ratelimit-remaining']).toBe('0');
    expect(limited.body).toEqual({
      error: {
        code: 'RATE_LIMITED',
        message: `rate limit of 3 requests per minute exceeded; retry in ${retryAfter}s`,
        details: { limit: 3, retryAfterSeconds: retryAfter, scope: 'key' },
        requestId: 'rate-limit-0001',
      },
    });
  });

  it('shares the count between gateway instances through Redis; another key has its own budget', async () => {
    expect((await request(other.getHttpServer()).get('/a').set('x-key', 'key-1')).status).toBe(429);
    const fresh = await request(other.getHttpServer()).get('/a').set('x-key', 'key-2');
    expect(fresh.status).toBe(200);
    expect(fresh.headers['x-ratelimit-remaining']).toBe('2');
  });

  it("counts per tenant too: the tenant's keys together get RATE_LIMIT_PER_TENANT_PER_MINUTE, then 429 with scope tenant", async () => {
    const server = app.getHttpServer();
    for (const key of ['t-key-1', 't-key-1', 't-key-1', 't-key-2', 't-key-2']) {
      const res = await request(server).get('/a').set('x-key', key).set('x-tenant', 'tenant-t');
      expect(res.status).toBe(200);
      expect(res.headers['x-ratelimit-limit-tenant']).toBe('5');
    }
    const limited = await request(server).get('/a').set('x-key', 't-key-2').set('x-tenant', 'tenant-t').set('x-request-id', 'rate-limit-0003');
    expect(limited.status).toBe(429);
    const retryAfter = Number(limited.headers['retry-after']);
    expect(retryAfter).toBeGreaterThan(0);
    expect(limited.headers['x-ratelimit-limit-tenant']).toBe('5');
    expect(limited.headers['x-ratelimit-remaining-tenant']).toBe('0');
    // The key's own headers still tell its own budget (it had 1 left).
    expect(limited.headers['x-ratelimit-limit']).toBe('3');
    expect(limited.body).toEqual({
      error: {
        code: 'RATE_LIMITED',
        message: `rate limit of 5 requests per minute for the tenant (all its API keys) exceeded; retry in ${retryAfter}s`,
        details: { limit: 5, retryAfterSeconds: retryAfter, scope: 'tenant' },
        requestId: 'rate-limit-0003',
      },
    });
    // A key of another tenant is not affected.
    expect((await request(server).get('/a').set('x-key', 't-key-3').set('x-tenant', 'tenant-u')).status).toBe(200);
  });

  it('does not limit requests without an API key (ApiKeyGuard let them through as public)', async () => {
    for (let i = 0; i < 5; i++) {
      const res = await request(app.getHttpServer()).get('/a');
      expect(res.status).toBe(200);
      expect(res.headers['x-ratelimit-limit']).toBeUndefined();
    }
  });

  it('fails open when Redis does not answer: the request passes and a warning names the request', async () => {
    const down = new Redis('redis://127.0.0.1:1', { enableOfflineQueue: false, maxRetriesPerRequest: 2, lazyConnect: true });
    const warnings: unknown[][] = [];
    const isolated = await slice(down, config, warnings);
    try {
      const res = await request(isolated.getHttpServer()).get('/a').set('x-key', 'key-3').set('x-request-id', 'rate-limit-0002');
      expect(res.status).toBe(200);
      expect(warnings).toEqual([
        [expect.objectContaining({ requestId: 'rate-limit-0002', err: expect.any(String) }), 'rate limiter unavailable (Redis); failing open'],
      ]);
    } finally {
      await isolated.close();
      down.disconnect();
    }
  });
});

describe(RedisThrottlerStorage.name, () => {
  const redis = new Redis(testRedisUrl());
  const prefix = testRedisPrefix('throttler-storage');
  const sut = new RedisThrottlerStorage(redis, prefix);

  afterAll(async () => {
    await deleteRedisPrefix(redis, prefix);
    redis.disconnect();
  });

  it('opens a fixed window at the first hit and limits until it ends when there is no block duration', async () => {
    const records = [];
    for (let i = 0; i < 3; i++) records.push(await sut.increment('k1', 60_000, 2, 0, 'default'));
    expect(records.map((r) => [r.totalHits, r.isBlocked])).toEqual([
      [1, false],
      [2, false],
      [3, true],
    ]);
    expect(records[2]!.timeToExpire).toBeGreaterThan(58);
    expect(records[2]!.timeToBlockExpire).toBe(records[2]!.timeToExpire);
    expect(await redis.pttl(`${prefix}:default:{k1}`)).toBeGreaterThan(58_000);
  });

  it('with a block duration, blocks for it and stops counting while blocked', async () => {
    await sut.increment('k2', 60_000, 1, 0, 'x');
    const blocked = await sut.increment('k2', 60_000, 1, 5_000, 'x');
    expect(blocked).toMatchObject({ totalHits: 2, isBlocked: true, timeToBlockExpire: 5 });
    expect(await sut.increment('k2', 60_000, 1, 5_000, 'x')).toMatchObject({ totalHits: 2, isBlocked: true });
  });

  it('starts a new window once the previous one expired', async () => {
    await sut.increment('k3', 50, 1, 0, 'default');
    expect((await sut.increment('k3', 50, 1, 0, 'default')).isBlocked).toBe(true);
    await waitFor(async () => (await redis.exists(`${prefix}:default:{k3}`)) === 0, { what: 'window expired' });
    expect(await sut.increment('k3', 50, 1, 0, 'default')).toMatchObject({ totalHits: 1, isBlocked: false });
  });
});
