import { execFile } from 'node:child_process';
import { createHash, generateKeyPairSync, randomBytes } from 'node:crypto';
import type { AddressInfo } from 'node:net';
import { promisify } from 'node:util';

import type { INestApplication } from '@nestjs/common';
import { Redis } from 'ioredis';

import { connectorConfigSchema, loadConfig } from '@payorch/config';
import { canonicalJson } from '@payorch/domain';
import { createLogger } from '@payorch/logging';

import { SECRET_LIKE_KEY } from '../../apps/api-gateway/src/common/one-time-secret';
import { createConnectorApp } from '../../apps/device-connector/src/bootstrap';
import { GatewaySession, idem } from '../e2e/support/gateway-session';

const run = promisify(execFile);

/** Every value of every key under `prefix`, whatever its type, as text. */
async function dumpRedis(redis: Redis, prefix: string): Promise<{ keys: string[]; text: string }> {
  const keys: string[] = [];
  let cursor = '0';
  do {
    const [next, batch] = await redis.scan(cursor, 'MATCH', `${prefix}*`, 'COUNT', 500);
    keys.push(...batch);
    cursor = next;
  } while (cursor !== '0');
  const parts: string[] = [];
  for (const key of keys) {
    const type = await redis.type(key);
    const value =
      type === 'string'
        ? await redis.get(key)
        : type === 'hash'
          ? await redis.hgetall(key)
          : type === 'list'
            ? await redis.lrange(key, 0, -1)
            : type === 'set'
              ? await redis.smembers(key)
              : type === 'zset'
                ? await redis.zrange(key, '0', '-1', 'WITHSCORES')
                : type === 'stream'
                  ? await redis.xrange(key, '-', '+')
                  : `<${type}>`;
    parts.push(`${key} ${type} ${JSON.stringify(value)}`);
  }
  return { keys, text: parts.join('\n') };
}

/**
 * Attack (issue 13, finding 4): read the database and Redis at rest and look for a secret that the
 * API handed out once or accepted write-only. Every kind is created through the API, every answer is
 * replayed once (so the replay cache holds its record), then a full `pg_dump` and every Redis value
 * under the test's prefix are searched for each secret's clear text.
 */
describe('secrets at rest (pg_dump + Redis keyspace)', () => {
  const session = new GatewaySession();
  let connector: INestApplication;
  let connectorUrl: string;
  let redis: Redis;
  let auth: { Authorization: string };
  const secrets = new Map<string, string>();
  /** Ids of rows made here: the dump must contain them, or it proves nothing. */
  const ids: string[] = [];

  beforeAll(async () => {
    // Webhook and Assist destinations on loopback (nothing is sent to them here).
    await session.start({ EGRESS_ALLOW_CIDRS: '127.0.0.1/32' });
    const config = loadConfig('device-connector', connectorConfigSchema, {
      DATABASE_APP_URL: session.testDb.appUrl,
      REDIS_KEY_PREFIX: session.config.REDIS_KEY_PREFIX,
      PAYORCH_MASTER_KEY: session.config.PAYORCH_MASTER_KEY,
      LOG_LEVEL: 'silent',
    });
    connector = await createConnectorApp(config, createLogger({ name: 'test', level: 'silent' }));
    await connector.listen(0, '127.0.0.1');
    connectorUrl = `http://127.0.0.1:${(connector.getHttpServer().address() as AddressInfo).port}`;
    redis = new Redis(session.config.REDIS_URL);
    const tenant = await session.tenant();
    secrets.set('API key', tenant.apiKey);
    auth = { Authorization: `Bearer ${tenant.apiKey}` };
  });

  afterAll(async () => {
    await redis?.quit();
    await connector?.close();
    await session.stop();
  });

  /** POST twice with one Idempotency-Key: the first answer, and the replay of it. */
  async function postTwice(url: string, body?: object) {
    const key = idem();
    const first = await session.http().post(url).set(auth).set('Idempotency-Key', key).send(body);
    const replay = await session.http().post(url).set(auth).set('Idempotency-Key', key).send(body);
    if (first.status >= 300) throw new Error(`POST ${url}: ${first.status} ${JSON.stringify(first.body)}`);
    expect(replay.status).toBe(first.status);
    expect(replay.headers['idempotent-replayed']).toBe('true');
    return { first, replay };
  }

  type Answer = Awaited<ReturnType<typeof postTwice>>;
  /** The body that created the terminal (it holds the terminal's passwords). */
  let terminalBody: object = {};
  const answers: Record<'webhook' | 'rotated' | 'agent' | 'reissued' | 'terminal', Answer> = {} as never;

  it('hands out every kind of secret through the API (each answer replayed once)', async () => {
    const store = await session.http().post('/v1/stores').set(auth).set('Idempotency-Key', idem()).send({ name: 'S', timeZone: 'UTC' });

    const webhook = (answers.webhook = await postTwice('/v1/webhooks', { url: 'https://127.0.0.1:9/hook', eventTypes: ['*'] }));
    expect(webhook.first.status).toBe(201);
    secrets.set('webhook secret (create)', webhook.first.body.secret);
    ids.push(webhook.first.body.id);
    const rotated = (answers.rotated = await postTwice(`/v1/webhooks/${webhook.first.body.id}/rotate-secret`));
    expect(rotated.first.status).toBe(200);
    secrets.set('webhook secret (rotated)', rotated.first.body.secret);

    const agent = (answers.agent = await postTwice('/v1/agents', { name: 'Till', storeId: store.body.id }));
    expect(agent.first.status).toBe(201);
    secrets.set('enrollment token (create)', agent.first.body.enrollmentToken);
    ids.push(agent.first.body.agent.id);
    const reissued = (answers.reissued = await postTwice(`/v1/agents/${agent.first.body.agent.id}/enrollment-token`));
    expect(reissued.first.status).toBe(201);
    secrets.set('enrollment token (reissued)', reissued.first.body.enrollmentToken);

    const enrolled = await fetch(`${connectorUrl}/agent/enroll`, {
      method: 'POST',
      headers: { 'Content-Type': 'application/json' },
      body: JSON.stringify({ token: reissued.first.body.enrollmentToken, version: '0.1.0' }),
    });
    expect(enrolled.status).toBe(200);
    const { credential } = (await enrolled.json()) as { credential: string };
    secrets.set('agent credential', credential);

    const password = `tp-${randomBytes(12).toString('hex')}`;
    const adminPassword = `ta-${randomBytes(12).toString('hex')}`;
    terminalBody = {
      name: 'T',
      storeId: store.body.id,
      protocol: 'jpay',
      connection: { kind: 'tcp', host: '127.0.0.1', port: 1 },
      credentials: { password, adminPassword },
    };
    const terminal = (answers.terminal = await postTwice('/v1/terminals', terminalBody));
    expect(terminal.first.status).toBe(201);
    secrets.set('terminal password', password);
    secrets.set('terminal admin password', adminPassword);
    ids.push(terminal.first.body.id);
    const newPassword = `tn-${randomBytes(12).toString('hex')}`;
    const changed = await session
      .http()
      .patch(`/v1/terminals/${terminal.first.body.id}`)
      .set(auth)
      .set('Idempotency-Key', idem())
      .send({ credentials: { password: newPassword } });
    expect(changed.status).toBe(200);
    secrets.set('terminal password (changed)', newPassword);

    const { privateKey } = generateKeyPairSync('rsa', { modulusLength: 1024 });
    const pem = privateKey.export({ type: 'pkcs8', format: 'pem' }).toString();
    const merchant = {
      name: 'Assist',
      merchantId: '123456',
      serverUrl: 'https://127.0.0.1:9',
      login: `login_${randomBytes(4).toString('hex')}`,
      password: `Ap${randomBytes(8).toString('hex')}`,
      salt: `salt-${randomBytes(12).toString('hex')}`,
      privateKeyPem: pem,
    };
    const assist = await postTwice('/v1/assist-merchants', merchant);
    expect(assist.first.status).toBe(201);
    expect(assist.first.body).toMatchObject({ hasPassword: true, hasPrivateKey: true, hasSalt: true });
    secrets.set('Assist password', merchant.password);
    secrets.set('Assist salt', merchant.salt);
    // One line of the key's base64 body (JSON would escape the PEM's newlines).
    secrets.set('Assist private key', pem.split('\n')[5]!);
    ids.push(assist.first.body.id);

    expect([...secrets.values()].every((v) => typeof v === 'string' && v.length >= 16)).toBe(true);
  });

  it('a replay answers with the resource, the one-time secret null and `secretWithheld: true`', () => {
    const { webhook, rotated, agent, reissued, terminal } = answers;
    expect(webhook.first.body).toMatchObject({ secret: expect.stringMatching(/^whsec_/), secretWithheld: false });
    expect(webhook.replay.status).toBe(201);
    expect(webhook.replay.body).toEqual({ ...webhook.first.body, secret: null, secretWithheld: true });
    expect(rotated.first.body).toMatchObject({ secret: expect.stringMatching(/^whsec_/), secretWithheld: false });
    expect(rotated.replay.body).toEqual({ ...rotated.first.body, secret: null, secretWithheld: true });
    expect(agent.first.body).toMatchObject({ enrollmentToken: expect.stringMatching(/^pen_/), secretWithheld: false });
    expect(agent.replay.status).toBe(201);
    expect(agent.replay.body).toEqual({ ...agent.first.body, enrollmentToken: null, secretWithheld: true });
    expect(reissued.replay.body).toEqual({ ...reissued.first.body, enrollmentToken: null, secretWithheld: true });
    // Answers without a one-time secret replay unchanged.
    expect(terminal.replay.body).toEqual(terminal.first.body);
    expect(terminal.first.body).not.toHaveProperty('secretWithheld');
  });

  it('no secret is found in a full pg_dump of the database', async () => {
    expect(secrets.size).toBe(12);
    const { stdout: dump } = await run('pg_dump', ['--no-owner', '--dbname', session.testDb.adminUrl], { maxBuffer: 256 * 1024 * 1024 });
    // The dump is real: it holds the replay records and the rows made above.
    expect(dump).toContain('COPY public."IdempotencyRecord"');
    for (const id of ids) expect(dump).toContain(id);
    const found = [...secrets].filter(([, value]) => dump.includes(value)).map(([name]) => name);
    expect(found).toEqual([]);
  });

  it('request digests in the replay cache are keyed: a body holding a short password cannot be guessed offline', async () => {
    const rows = await session.owner.idempotencyRecord.findMany({ where: { path: '/v1/terminals' } });
    expect(rows.length).toBeGreaterThan(0);
    for (const row of rows) {
      expect(row.requestHash).toMatch(/^hmac1\.k1\.[0-9a-f]{64}$/);
      // Not the plain SHA-256 of the request an attacker with the database could recompute.
      const plain = createHash('sha256')
        .update(`POST /v1/terminals\n${canonicalJson(terminalBody)}`)
        .digest('hex');
      expect(row.requestHash).not.toContain(plain);
    }
  });

  it('no secret is found in any Redis value under the test prefix', async () => {
    const { keys, text } = await dumpRedis(redis, session.config.REDIS_KEY_PREFIX);
    expect(keys.length).toBeGreaterThan(0);
    const found = [...secrets].filter(([, value]) => text.includes(value) || keys.some((k) => k.includes(value))).map(([name]) => name);
    expect(found).toEqual([]);
  });

  it('every mutating route that documents a secret-like string in its answer declares it as a one-time secret', async () => {
    const doc = (await session.http().get('/docs/openapi.json')).body as {
      paths: Record<string, Record<string, Record<string, unknown>>>;
      components: { schemas: Record<string, unknown> };
    };
    const declared: string[] = [];
    const undeclared: string[] = [];
    for (const [path, methods] of Object.entries(doc.paths)) {
      for (const [method, op] of Object.entries(methods)) {
        if (!['post', 'put', 'patch', 'delete'].includes(method)) continue;
        const secretFields = (op['x-one-time-secrets'] as string[] | undefined) ?? [];
        const stack: unknown[] = [op.responses];
        while (stack.length > 0) {
          const node = stack.pop();
          if (node === null || typeof node !== 'object') continue;
          // Bodies are named component schemas: follow the `$ref` (the Error envelope holds no secrets).
          const ref = (node as { $ref?: unknown }).$ref;
          if (typeof ref === 'string' && ref !== '#/components/schemas/Error') stack.push(doc.components.schemas[ref.split('/').pop()!]);
          const properties = (node as { properties?: Record<string, { type?: unknown }> }).properties ?? {};
          for (const [name, schema] of Object.entries(properties)) {
            if (!SECRET_LIKE_KEY.test(name) || !JSON.stringify(schema.type ?? '').includes('string')) continue;
            (secretFields.includes(name) ? declared : undeclared).push(`${method.toUpperCase()} ${path} ${name}`);
          }
          stack.push(...Object.values(node));
        }
      }
    }
    expect(undeclared).toEqual([]);
    expect(declared.sort()).toEqual([
      'POST /v1/agents enrollmentToken',
      'POST /v1/agents/{id}/enrollment-token enrollmentToken',
      'POST /v1/api-keys apiKey',
      'POST /v1/webhooks secret',
      'POST /v1/webhooks/{id}/rotate-secret secret',
    ]);
  });
});
