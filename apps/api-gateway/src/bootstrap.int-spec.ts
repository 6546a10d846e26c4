import { randomBytes } from 'node:crypto';
import { hostname } from 'node:os';

import type { INestApplication } from '@nestjs/common';
import { Redis } from 'ioredis';

import { type GatewayConfig, gatewayConfigSchema, loadConfig } from '@payorch/config';
import { createLogger } from '@payorch/logging';
import { createTestDatabase, deleteRedisPrefix, redisClientNames, type TestDatabase, testRedisPrefix, testRedisUrl, waitFor } from '@payorch/testing';

import { createGatewayApp } from './bootstrap';

describe('api-gateway Redis connections (docs/architecture.md, "Redis connections")', () => {
  const probe = new Redis(testRedisUrl());
  let testDb: TestDatabase;
  let config: GatewayConfig;
  let app: INestApplication | undefined;

  beforeAll(async () => {
    testDb = await createTestDatabase();
    config = loadConfig('api-gateway', gatewayConfigSchema, {
      DATABASE_APP_URL: testDb.appUrl,
      REDIS_URL: testRedisUrl(),
      REDIS_KEY_PREFIX: testRedisPrefix('gw-conns'),
      LOG_LEVEL: 'silent',
      PAYORCH_MASTER_KEY: `k1:${randomBytes(32).toString('base64')}`,
    });
  }, 60_000);

  afterAll(async () => {
    await app?.close();
    await deleteRedisPrefix(probe, config.REDIS_KEY_PREFIX);
    await probe.quit();
    await testDb?.drop();
  });

  it('starts on its three named connections, up before it takes a request, and closes them all', async () => {
    app = await createGatewayApp(config, { logger: createLogger({ name: 'test', level: 'silent' }) });
    await app.init();
    const own = (name: string) => `${config.REDIS_KEY_PREFIX}:api-gateway:${hostname()}-${process.pid}:${name}`;
    // The BullMQ producers, the rate limiter, the event hub and the command bus open nothing of their own.
    expect(await redisClientNames(probe, `${config.REDIS_KEY_PREFIX}:`)).toEqual(['blocking', 'command', 'subscriber'].map(own));

    await app.close();
    app = undefined;
    await waitFor(async () => (await redisClientNames(probe, `${config.REDIS_KEY_PREFIX}:`)).length === 0, { what: 'every connection closed' });
  });
});
