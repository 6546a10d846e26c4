import { execFileSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { readFileSync } from 'node:fs';
import type { AddressInfo } from 'node:net';

import type { INestApplication } from '@nestjs/common';
import { Redis } from 'ioredis';

import { type ConnectorConfig, connectorConfigSchema, loadConfig } from '@payorch/config';
import { createLogger } from '@payorch/logging';
import { createTestDatabase, deleteRedisPrefix, redisClientNames, type TestDatabase, testRedisPrefix, testRedisUrl, waitFor } from '@payorch/testing';

import { createConnectorApp, listenConnector } from './bootstrap';

describe('device-connector Redis connections (docs/architecture.md, "Redis connections")', () => {
  const probe = new Redis(testRedisUrl());
  const instance = `conns-${randomBytes(4).toString('hex')}`;
  let testDb: TestDatabase;
  let config: ConnectorConfig;
  let app: INestApplication | undefined;

  beforeAll(async () => {
    testDb = await createTestDatabase();
    config = loadConfig('device-connector', connectorConfigSchema, {
      DATABASE_APP_URL: testDb.appUrl,
      REDIS_URL: testRedisUrl(),
      REDIS_KEY_PREFIX: testRedisPrefix('conn-conns'),
      CONNECTOR_INSTANCE_ID: instance,
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

  it("holds command, blocking and the access watcher's subscriber (named as the agent runbook says), and closes them all", async () => {
    app = await createConnectorApp(config, createLogger({ name: 'test', level: 'silent' }), { driverFactory: null, operationHandler: null });
    const ours = (name: string) => name.startsWith(`${config.REDIS_KEY_PREFIX}:`) || name === `payorch-access-${instance}`;
    const expected = [
      `${config.REDIS_KEY_PREFIX}:device-connector:${instance}:blocking`,
      `${config.REDIS_KEY_PREFIX}:device-connector:${instance}:command`,
      `payorch-access-${instance}`,
    ];
    expect(await redisClientNames(probe, ours)).toEqual(expected.sort());

    await app.close();
    app = undefined;
    await waitFor(async () => (await redisClientNames(probe, ours)).length === 0, { what: 'every connection closed' });
  });

  it("listens with an accept queue of CONNECTOR_LISTEN_BACKLOG, not Node's 511 (a storm's dials beyond it were dropped)", async () => {
    app = await createConnectorApp(config, createLogger({ name: 'test', level: 'silent' }), { driverFactory: null, operationHandler: null });
    await listenConnector(app, config, 0, '127.0.0.1');
    const { port } = app.getHttpServer().address() as AddressInfo;
    // `ss -ltn` prints a listening socket's accept-queue limit as its Send-Q; the kernel caps it at somaxconn.
    const line = execFileSync('ss', ['-ltnH', `sport = :${port}`], { encoding: 'utf8' }).trim();
    const limit = Number(line.split(/\s+/)[2]);
    const somaxconn = Number(readFileSync('/proc/sys/net/core/somaxconn', 'utf8'));
    expect(config.CONNECTOR_LISTEN_BACKLOG).toBe(4096);
    expect(limit).toBe(Math.min(config.CONNECTOR_LISTEN_BACKLOG, somaxconn));
    expect(limit).toBeGreaterThan(511);
    await app.close();
    app = undefined;
  });
});
