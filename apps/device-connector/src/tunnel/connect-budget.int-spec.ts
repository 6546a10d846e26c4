import type { AddressInfo } from 'node:net';

import type { INestApplication } from '@nestjs/common';
import { Redis } from 'ioredis';

import { connectorConfigSchema, loadConfig } from '@payorch/config';
import { createPrismaClient, type Database, type PrismaClient } from '@payorch/db';
import { issueToken, TOKEN_KINDS } from '@payorch/domain';
import { createLogger, type Registry } from '@payorch/logging';
import type { RedisClient } from '@payorch/redis';
import { createTestDatabase, deleteRedisPrefix, OwnedRedis, type TestDatabase, testRedisPrefix, testRedisUrl, upgradeAnswer, waitFor } from '@payorch/testing';

import { createConnectorApp } from '../bootstrap';
import { DATABASE, REDIS, REGISTRY } from '../tokens';

interface Running {
  app: INestApplication;
  url: string;
}

/**
 * TUNNEL_AGENT_CONNECTS_PER_MINUTE over every connector instance (security review: each instance counted alone, so a
 * stolen credential got the budget once per instance behind the load balancer), and each instance's own budget when
 * Redis is gone.
 */
describe('device-connector: the connect budget of an agent credential', () => {
  const prefix = testRedisPrefix('connects');
  const redis = new Redis(testRedisUrl());
  const lonelyRedis = new OwnedRedis();
  let testDb: TestDatabase;
  let owner: PrismaClient;
  let a: Running;
  let b: Running;
  let lonely: Running;

  async function start(instanceId: string, env: Record<string, string>): Promise<Running> {
    const config = loadConfig('device-connector', connectorConfigSchema, {
      DATABASE_APP_URL: testDb.appUrl,
      PAYORCH_MASTER_KEY: `k1:${Buffer.alloc(32, 9).toString('base64')}`,
      CONNECTOR_INSTANCE_ID: instanceId,
      TUNNEL_AGENT_CONNECTS_PER_MINUTE: '2',
      LOG_LEVEL: 'silent',
      ...env,
    });
    const app = await createConnectorApp(config, createLogger({ name: 'test', level: 'silent' }), { driverFactory: null, operationHandler: null });
    await app.listen(0, '127.0.0.1');
    return { app, url: `http://127.0.0.1:${(app.getHttpServer().address() as AddressInfo).port}` };
  }

  /** An ACTIVE agent and its credential (with the credential's public lookup prefix). */
  async function newAgent(): Promise<{ credential: string; lookupPrefix: string }> {
    const tenant = await owner.tenant.create({ data: { name: 'T' } });
    const store = await owner.store.create({ data: { tenantId: tenant.id, name: 'S', timeZone: 'UTC' } });
    const credential = issueToken(TOKEN_KINDS.agentCredential);
    await owner.agent.create({
      data: { tenantId: tenant.id, storeId: store.id, name: 'till', status: 'ACTIVE', credentialHash: credential.hash, credentialPrefix: credential.prefix },
    });
    return { credential: credential.token, lookupPrefix: credential.prefix };
  }

  /** The answer to an upgrade with `credential`: 101, or the refusal's status and Retry-After. */
  function upgrade(to: Running, credential: string): Promise<{ status: number; retryAfter?: string }> {
    return upgradeAnswer(`${to.url}/agent`, { Authorization: `Bearer ${credential}` });
  }

  beforeAll(async () => {
    testDb = await createTestDatabase();
    owner = createPrismaClient(testDb.adminUrl, { max: 2 });
    // Two instances behind one load balancer share the Redis (and the key prefix); the lonely one has a Redis of its own.
    a = await start('a', { REDIS_URL: testRedisUrl(), REDIS_KEY_PREFIX: prefix });
    b = await start('b', { REDIS_URL: testRedisUrl(), REDIS_KEY_PREFIX: prefix });
    await lonelyRedis.start();
    lonely = await start('lonely', { REDIS_URL: lonelyRedis.url, REDIS_KEY_PREFIX: prefix });
  }, 30_000);

  afterAll(async () => {
    // Its Redis back first (the connection retries every 2 s by then): a connector shutting down without Redis waits for
    // Redis to release ownership keys, about 12 s here.
    await lonelyRedis.start();
    await Promise.all([a, b, lonely].map((running) => running?.app.close()));
    await lonelyRedis.stop();
    await deleteRedisPrefix(redis, prefix);
    await redis.quit();
    await owner.$disconnect();
    await testDb.drop();
  }, 30_000);

  it("spends a credential's connects at every instance: after two at one, the other answers 429, then without a lookup", async () => {
    const { credential, lookupPrefix } = await newAgent();
    expect((await upgrade(a, credential)).status).toBe(101);
    expect((await upgrade(a, credential)).status).toBe(101);
    // Before: b counted only its own connects and let this one through (101).
    const refused = await upgrade(b, credential);
    expect(refused.status).toBe(429);
    expect(Number(refused.retryAfter)).toBeGreaterThanOrEqual(1);
    const lookups = jest.spyOn(b.app.get<Database>(DATABASE), 'findAgentsByCredentialPrefixes');
    try {
      expect((await upgrade(b, credential)).status).toBe(429);
      expect(lookups).not.toHaveBeenCalled();
    } finally {
      lookups.mockRestore();
    }
    // Redis holds the credential's public lookup prefix and a number, nothing of its secret.
    const key = `${prefix}:tunnel:connects:${lookupPrefix}`;
    expect(await redis.keys(`${prefix}:tunnel:connects:*`)).toEqual([key]);
    expect(await redis.get(key)).toMatch(/^\d+\.\d{3}$/);
    expect(await redis.pttl(key)).toBeGreaterThan(0);

    // Another credential has a budget of its own.
    const other = await newAgent();
    expect((await upgrade(b, other.credential)).status).toBe(101);
  });

  it("decides with the instance's own budget while Redis is down: no agent refused for it, and still at most the limit", async () => {
    const { credential } = await newAgent();
    await lonelyRedis.kill();
    await waitFor(() => lonely.app.get<RedisClient>(REDIS).status !== 'ready', { what: 'the connector to see Redis gone' });
    expect((await upgrade(lonely, credential)).status).toBe(101);
    expect((await upgrade(lonely, credential)).status).toBe(101);
    const refused = await upgrade(lonely, credential);
    expect(refused.status).toBe(429);
    expect(Number(refused.retryAfter)).toBeGreaterThanOrEqual(1);
    // Both connects it let through were decided here without asking Redis (the third was refused before any lookup).
    const unshared = await lonely.app.get<Registry>(REGISTRY).getSingleMetric('payorch_connector_connect_budget_unshared_total')!.get();
    expect(unshared.values.map((sample) => sample.value)).toEqual([2]);
  });
});
