import { randomBytes } from 'node:crypto';
import { Writable } from 'node:stream';

import type { INestApplication } from '@nestjs/common';
import { Redis } from 'ioredis';
import request from 'supertest';

import { gatewayConfigSchema, loadConfig } from '@payorch/config';
import { createPrismaClient, type PrismaClient } from '@payorch/db';
import { createLogger } from '@payorch/logging';
import { deleteRedisPrefix, OwnedPostgres, testRedisPrefix, testRedisUrl, waitFor } from '@payorch/testing';

import { AdminService } from '../../apps/api-gateway/src/admin/admin.service';
import { createGatewayApp } from '../../apps/api-gateway/src/bootstrap';
import { newMasterKey, testResolver } from '../e2e/support/gateway-session';

/** The gateway's log lines, parsed (pino JSON), to check how an outage is reported. */
class LogLines extends Writable {
  readonly lines: { level: string; msg: string; requestId?: string; cause?: string }[] = [];
  override _write(chunk: Buffer, _encoding: string, done: () => void): void {
    for (const line of chunk.toString().split('\n').filter(Boolean)) this.lines.push(JSON.parse(line));
    done();
  }
}

/**
 * Issue 15, "degrade, don't crash": PostgreSQL goes away under a running gateway (fast shutdown, then a
 * SIGKILL). Every request answers 503 + Retry-After in the error envelope, never 500; nothing answered
 * 2xx is lost; when PostgreSQL is back the same gateway serves again, and a POST refused with 503 and
 * retried with the same Idempotency-Key makes exactly one row.
 */
describe('PostgreSQL outage (owned PostgreSQL, stopped and killed under a running gateway)', () => {
  jest.setTimeout(120_000);
  const pg = new OwnedPostgres();
  const logs = new LogLines();
  const prefix = testRedisPrefix('pgfault');
  let app: INestApplication;
  let owner: PrismaClient;
  let redis: Redis;
  let auth: string;
  let storeId: string;
  const measured: Record<string, number> = {};

  const http = () => request(app.getHttpServer());
  const get = (path: string) => http().get(path).set('Authorization', auth);
  const post = (key: string, body: object) => http().post('/v1/stores').set('Authorization', auth).set('Idempotency-Key', key).send(body);

  /** What every request answers while PostgreSQL is down. */
  async function expectUnavailable(res: request.Response) {
    expect(res.status).toBe(503);
    expect(res.headers['retry-after']).toBe('5');
    expect(res.body).toEqual({
      error: { code: 'SERVICE_UNAVAILABLE', message: expect.any(String), details: { retryAfterSeconds: 5 }, requestId: res.headers['x-request-id'] },
    });
  }

  /** Polls a DB-backed route until it answers 200; returns the ms from `since` (PostgreSQL accepting connections again). */
  async function recovered(since: number): Promise<number> {
    await waitFor(async () => (await get('/v1/stores')).status === 200, {
      timeoutMs: 30_000,
      intervalMs: 50,
      what: 'GET /v1/stores answers 200 again',
      ignoreErrors: true,
    });
    return Date.now() - since;
  }

  beforeAll(async () => {
    await pg.start();
    const config = loadConfig('api-gateway', gatewayConfigSchema, {
      DATABASE_APP_URL: pg.appUrl,
      REDIS_URL: testRedisUrl(),
      REDIS_KEY_PREFIX: prefix,
      PAYORCH_MASTER_KEY: newMasterKey('k1'),
      LOG_LEVEL: 'info',
      GATEWAY_PORT: '0',
      EGRESS_ALLOW_CIDRS: '127.0.0.0/8, ::1',
    });
    app = await createGatewayApp(config, { logger: createLogger({ name: 'api-gateway', level: 'info', destination: logs }), resolver: testResolver });
    await app.listen(0, '127.0.0.1');
    owner = createPrismaClient(pg.adminUrl, { max: 2 });
    redis = new Redis(config.REDIS_URL);
    const admin = new AdminService(owner, 'fault');
    const tenant = await admin.createTenant('Chain PG');
    auth = `Bearer ${(await admin.createApiKey({ tenantId: tenant.id, name: 'fault' })).apiKey}`;
    const made = await post(`pg-${randomBytes(6).toString('hex')}`, { name: 'Before the outage', timeZone: 'Europe/Moscow' });
    expect(made.status).toBe(201);
    storeId = made.body.id;
  });

  afterAll(async () => {
    await app?.close();
    await owner?.$disconnect();
    if (redis) {
      await deleteRedisPrefix(redis, prefix);
      await redis.quit();
    }
    await pg.destroy();
    console.log(`postgres outage: ${JSON.stringify(measured)}`);
  });

  it('answers 503 + Retry-After on every route while PostgreSQL is stopped, and recovers by itself when it is back', async () => {
    const key = `pg-${randomBytes(6).toString('hex')}`;
    const body = { name: 'During the outage', timeZone: 'Europe/Kyiv' };
    await pg.stop();

    await expectUnavailable(await get('/v1/stores'));
    await expectUnavailable(await get(`/v1/stores/${storeId}`));
    await expectUnavailable(await post(key, body));
    await expectUnavailable(await post(key, body)); // the same key again: still no claim stuck in progress
    // An unknown route needs no database; it may stay 404 (after authentication, which does need it: 503).
    const unknown = await get('/v1/no-such-route');
    expect([404, 503]).toContain(unknown.status);
    if (unknown.status === 503) await expectUnavailable(unknown);
    // A burst: no request of it is a 500.
    const burst = await Promise.all(Array.from({ length: 20 }, (_, i) => (i % 2 ? get('/v1/stores') : get(`/v1/stores/${storeId}`))));
    expect(burst.map((r) => r.status)).toEqual(burst.map(() => 503));

    // Reported as an outage: warnings with the request id and the cause's code, no error lines.
    const refused = logs.lines.filter((l) => l.msg === 'request refused: service unavailable');
    expect(refused.length).toBeGreaterThanOrEqual(24);
    expect(refused.every((l) => l.level === 'warn' && typeof l.requestId === 'string' && typeof l.cause === 'string')).toBe(true);
    expect(logs.lines.filter((l) => l.level === 'error' || l.level === 'fatal')).toEqual([]);

    await pg.start();
    measured.stoppedBackToFirst2xxMs = await recovered(Date.now());

    const created = await post(key, body);
    expect(created.status).toBe(201);
    const replayed = await post(key, body);
    expect(replayed.status).toBe(201);
    expect(replayed.headers['idempotent-replayed']).toBe('true');
    expect(replayed.body.id).toBe(created.body.id);
    expect(await owner.store.count({ where: { name: body.name } })).toBe(1);
    // What was answered 2xx before the outage is still there.
    expect((await get(`/v1/stores/${storeId}`)).status).toBe(200);
  });

  it('answers 503 while PostgreSQL is SIGKILLed, and recovers after crash recovery without a gateway restart', async () => {
    const key = `pg-${randomBytes(6).toString('hex')}`;
    const body = { name: 'During the crash', timeZone: 'Europe/Berlin' };
    await pg.start(); // running already unless the test above failed half-way
    expect((await get('/v1/stores')).status).toBe(200); // pooled connections are open
    await pg.kill();

    await expectUnavailable(await get('/v1/stores'));
    await expectUnavailable(await post(key, body));

    await pg.start();
    measured.killedBackToFirst2xxMs = await recovered(Date.now());

    expect((await post(key, body)).status).toBe(201);
    expect(await owner.store.count({ where: { name: body.name } })).toBe(1);
    expect((await get(`/v1/stores/${storeId}`)).status).toBe(200);
  });
});
