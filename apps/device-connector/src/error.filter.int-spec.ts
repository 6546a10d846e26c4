import { randomBytes } from 'node:crypto';
import type { AddressInfo } from 'node:net';

import type { INestApplication } from '@nestjs/common';
import request from 'supertest';

import { connectorConfigSchema, loadConfig } from '@payorch/config';
import { createLogger } from '@payorch/logging';
import { createTestDatabase, type TestDatabase, testRedisPrefix } from '@payorch/testing';

import { createConnectorApp } from './bootstrap';

/**
 * Connector finding 2: its HTTP errors came in Nest's default shape (`{statusCode, message}`), and a malformed
 * enrollment body's message quoted the body (`Unexpected token 'x', "{"token": x…" is not valid JSON`). Every answer
 * is now the gateway's envelope, with the request id in X-Request-Id, and shows nothing of the request back.
 */
describe("device-connector HTTP errors: the gateway's envelope, nothing of the request echoed", () => {
  /** A text that must never come back: in the body, a header and the path of the requests below. */
  const MARKER = 'zq7marker';
  let testDb: TestDatabase;
  let app: INestApplication;
  let base: string;

  beforeAll(async () => {
    testDb = await createTestDatabase();
    const config = loadConfig('device-connector', connectorConfigSchema, {
      DATABASE_APP_URL: testDb.appUrl,
      REDIS_KEY_PREFIX: testRedisPrefix('conn-errors'),
      PAYORCH_MASTER_KEY: `k1:${randomBytes(32).toString('base64')}`,
      LOG_LEVEL: 'silent',
    });
    app = await createConnectorApp(config, createLogger({ name: 'test', level: 'silent' }), { driverFactory: null, operationHandler: null });
    await app.listen(0, '127.0.0.1');
    base = `http://127.0.0.1:${(app.getHttpServer().address() as AddressInfo).port}`;
  }, 60_000);

  afterAll(async () => {
    await app?.close();
    await testDb?.drop();
  });

  /** `{error:{code,message,details,requestId}}` and nothing else, the id also in X-Request-Id, no MARKER anywhere. */
  function expectEnvelope(res: request.Response, status: number, code: string) {
    expect({ status: res.status, body: res.body as unknown }).toEqual({
      status,
      body: { error: { code, message: expect.any(String), details: null, requestId: expect.any(String) } },
    });
    expect(res.headers['content-type']).toMatch(/^application\/json/);
    expect(res.headers['x-request-id']).toBe(res.body.error.requestId);
    expect(res.text).not.toContain(MARKER);
    return res.body.error as { message: string; requestId: string };
  }

  const enroll = () => request(base).post('/agent/enroll');

  it('malformed JSON → 400 VALIDATION_FAILED, the body not quoted', async () => {
    const res = await enroll().set('Content-Type', 'application/json').send(`{"token": ${MARKER}}`);
    expect(expectEnvelope(res, 400, 'VALIDATION_FAILED').message).toBe('malformed request: the body is not valid JSON');
  });

  it('a body over the 16 KB limit → 413 VALIDATION_FAILED naming the limit', async () => {
    const res = await enroll().send({ token: `${MARKER}${'x'.repeat(17 * 1024)}` });
    expect(expectEnvelope(res, 413, 'VALIDATION_FAILED').message).toBe('request body too large (at most 16384 bytes)');
  });

  it('a body that is not JSON → 415 before any parser, whatever its type says', async () => {
    for (const type of ['application/x-www-form-urlencoded', 'text/plain', `application/${MARKER}`]) {
      const res = await enroll().set('Content-Type', type).send(`token=${MARKER}`);
      expect([type, expectEnvelope(res, 415, 'VALIDATION_FAILED').message]).toEqual([type, 'request bodies must be application/json']);
    }
  });

  it('a JSON body in a charset other than UTF-8 → 415, the charset not quoted', async () => {
    const res = await enroll().set('Content-Type', `application/json; charset=${MARKER}`).send('{"token":"x"}');
    expectEnvelope(res, 415, 'VALIDATION_FAILED');
  });

  it('an unknown route → 404 NOT_FOUND, the path not quoted', async () => {
    expect(expectEnvelope(await request(base).get(`/agent/${MARKER}`), 404, 'NOT_FOUND').message).toBe('no route for GET at this path');
    expectEnvelope(await request(base).delete(`/${MARKER}?${MARKER}=1`), 404, 'NOT_FOUND');
  });

  it('a refused enrollment (400 for a wrong shape, 401 for a wrong token) carries the request id too', async () => {
    expectEnvelope(await enroll().send({ token: 1, [MARKER]: true }), 400, 'VALIDATION_FAILED');
    const refused = await enroll()
      .set('X-Request-Id', 'agent-req-0001')
      .send({ token: `pen_${MARKER}` });
    expect(expectEnvelope(refused, 401, 'UNAUTHENTICATED').requestId).toBe('agent-req-0001');
  });
});
