import { randomBytes } from 'node:crypto';

import type { INestApplication } from '@nestjs/common';
import { Redis } from 'ioredis';
import request from 'supertest';

import { AdminService } from '../../../apps/api-gateway/src/admin/admin.service';
import { createGatewayApp } from '../../../apps/api-gateway/src/bootstrap';
import { gatewayConfigSchema, type GatewayConfig, loadConfig } from '@payorch/config';
import { createPrismaClient, Database, type PrismaClient, type PublishedEvent } from '@payorch/db';
import { SecretBox } from '@payorch/domain';
import { createLogger } from '@payorch/logging';
import { announceKeysChanged, redisEventSink, type TerminalCommandDispatcher } from '@payorch/operations';
import { createTestDatabase, deleteRedisPrefix, type TestDatabase, testRedisPrefix, testRedisUrl } from '@payorch/testing';

export const newMasterKey = (id: string) => `${id}:${randomBytes(32).toString('base64')}`;

/**
 * One running gateway per test file (novu's UserSession idea): its own database cloned from the
 * migrated template, its own Redis prefix, and helpers to make tenants and API keys.
 */
export class GatewaySession {
  app!: INestApplication;
  config!: GatewayConfig;
  testDb!: TestDatabase;
  owner!: PrismaClient;
  admin!: AdminService;
  /** A Database as the application role, for RLS checks made directly through Prisma. */
  appDb!: Database;
  private redis!: Redis;
  /**
   * Set before start() to give the gateway a command dispatcher, built from the test DB's app URL and a
   * sink that publishes committed events to the gateway's live channels (what a connector's onCommitted
   * does: `?wait=` follows an operation through them).
   */
  dispatcherFactory?: (appUrl: string, publish: (events: readonly PublishedEvent[]) => void) => TerminalCommandDispatcher;

  async start(overrides: Record<string, string> = {}): Promise<this> {
    this.testDb = await createTestDatabase();
    this.config = loadConfig('api-gateway', gatewayConfigSchema, {
      DATABASE_APP_URL: this.testDb.appUrl,
      REDIS_URL: testRedisUrl(),
      REDIS_KEY_PREFIX: testRedisPrefix('gw'),
      PAYORCH_MASTER_KEY: newMasterKey('k1'),
      LOG_LEVEL: 'silent',
      GATEWAY_PORT: '0',
      // The Assist sandbox and webhook receivers of the tests listen on loopback, which only the operator can allow.
      EGRESS_ALLOW_CIDRS: '127.0.0.0/8, ::1',
      ...overrides,
    });
    this.redis = new Redis(this.config.REDIS_URL);
    this.app = await createGatewayApp(this.config, {
      logger: createLogger({ name: 'test', level: 'silent' }),
      // Sealed with the gateway's master key, as a connector of the same deployment seals an operation's view.
      dispatcher: this.dispatcherFactory?.(
        this.testDb.appUrl,
        redisEventSink(this.redis, this.config.REDIS_KEY_PREFIX, undefined, SecretBox.fromConfig(this.config.PAYORCH_MASTER_KEY)),
      ),
      resolver: testResolver,
    });
    await this.app.listen(0, '127.0.0.1');
    this.owner = createPrismaClient(this.testDb.adminUrl, { max: 2 });
    // As the admin CLI with REDIS_URL: a revocation or a tenant's status change reaches the gateway's key lookups at once.
    this.admin = new AdminService(this.owner, 'e2e', undefined, announceKeysChanged(this.redis, this.config.REDIS_KEY_PREFIX));
    this.appDb = Database.connect(this.testDb.appUrl, 2);
    return this;
  }

  async stop(): Promise<void> {
    await this.app?.close();
    await deleteRedisPrefix(this.redis, this.config.REDIS_KEY_PREFIX);
    await this.redis.quit();
    await this.appDb.close();
    await this.owner.$disconnect();
    await this.testDb.drop();
  }

  http() {
    return request(this.app.getHttpServer());
  }

  /** A new tenant with an all-scopes API key. */
  async tenant(name = `Chain ${randomBytes(3).toString('hex')}`, scopes?: string[]) {
    const tenant = await this.admin.createTenant(name);
    const key = await this.admin.createApiKey({ tenantId: tenant.id, name: 'e2e', scopes });
    return { tenantId: tenant.id, apiKey: key.apiKey, apiKeyId: key.id };
  }

  /** Another key of `adminKey`'s tenant, made through the API (`POST /v1/api-keys`). */
  async apiKey(adminKey: string, scopes: string[], name = 'e2e-key') {
    const created = await this.http().post('/v1/api-keys').set('Authorization', `Bearer ${adminKey}`).set('Idempotency-Key', idem()).send({ name, scopes });
    expect(created.status).toBe(201);
    return { id: created.body.id as string, apiKey: created.body.apiKey as string };
  }

  /** Revokes key `id` through the API, as its tenant's admin key `adminKey` (`POST /v1/api-keys/{id}/revoke`). */
  revokeApiKey(adminKey: string, id: string) {
    return this.http().post(`/v1/api-keys/${id}/revoke`).set('Authorization', `Bearer ${adminKey}`).set('Idempotency-Key', idem());
  }
}

/**
 * Tests never resolve real names: `*.example.com` / `*.example` resolve to a public documentation-free
 * address (never dialled), `*.internal.test` to the cloud metadata address, anything else fails.
 */
export const testResolver = async (host: string) => {
  if (/(^|\.)example(\.com)?$/.test(host)) return [{ address: '93.184.216.34' }];
  if (host.endsWith('.internal.test')) return [{ address: '169.254.169.254' }];
  throw Object.assign(new Error(`getaddrinfo ENOTFOUND ${host}`), { code: 'ENOTFOUND' });
};

let counter = 0;
/** A fresh Idempotency-Key. */
export const idem = () => `e2e-${process.pid}-${Date.now()}-${counter++}`;
