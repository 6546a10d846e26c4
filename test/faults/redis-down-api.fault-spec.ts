import { OwnedRedis, waitFor } from '@payorch/testing';

import { GatewaySession, idem } from '../e2e/support/gateway-session';

/**
 * Issue 15, "degrade, don't crash" for Redis: with Redis down the API serves what PostgreSQL can
 * serve, answers 503 + Retry-After (the envelope) where it needs Redis, never 500, and loses nothing
 * it accepted. The gateway runs on a Redis this test owns and kills; rate limits and the auth
 * throttle fail open (docs/security.md).
 */
describe('the API with Redis down', () => {
  const redis = new OwnedRedis();
  const session = new GatewaySession();
  let auth: Record<string, string>;
  let storeId: string;
  let terminalId: string;

  beforeAll(async () => {
    await redis.start();
    await session.start({ REDIS_URL: redis.url });
    auth = { Authorization: `Bearer ${(await session.tenant()).apiKey}` };
    const post = (path: string, body: object) => session.http().post(path).set(auth).set('Idempotency-Key', idem()).send(body);
    storeId = (await post('/v1/stores', { name: 'S', timeZone: 'UTC' })).body.id;
    terminalId = (await post('/v1/terminals', { name: 'T', storeId, protocol: 'joinproto', connection: { kind: 'tcp', host: '127.0.0.1', port: 9 } })).body.id;
    await redis.kill();
  }, 60_000);

  afterAll(async () => {
    await redis.start();
    await session.stop();
    await redis.stop();
  });

  const expect503 = (res: { status: number; headers: Record<string, string>; body: { error?: { code: string; requestId: string } } }) => {
    expect(res.status).toBe(503);
    expect(res.headers['retry-after']).toBe('5');
    expect(res.body.error).toMatchObject({ code: 'SERVICE_UNAVAILABLE' });
    expect(typeof res.body.error!.requestId).toBe('string');
  };

  it('serves reads and PostgreSQL-only writes (rate limits and the auth throttle fail open)', async () => {
    expect((await session.http().get('/v1/stores').set(auth)).status).toBe(200);
    expect((await session.http().get(`/v1/terminals/${terminalId}`).set(auth)).status).toBe(200);
    expect((await session.http().get('/v1/operations').set(auth)).status).toBe(200);
    expect((await session.http().post('/v1/stores').set(auth).set('Idempotency-Key', idem()).send({ name: 'S2', timeZone: 'UTC' })).status).toBe(201);
  });

  it('refuses new terminal operations with 503 + Retry-After instead of accepting and failing them', async () => {
    const key = idem();
    const res = await session
      .http()
      .post(`/v1/terminals/${terminalId}/operations`)
      .set(auth)
      .set('Idempotency-Key', key)
      .send({ type: 'purchase', amount: 100, currency: 'RUB' });
    expect503(res);
    expect(await session.owner.terminalOperation.count({ where: { terminalId } })).toBe(0);
  });

  it('answers 503 where a job must be enqueued, and the retry with the same key completes it once Redis is back', async () => {
    const key = idem();
    const run = () => session.http().post(`/v1/terminals/${terminalId}/settlements`).set(auth).set('Idempotency-Key', key).send({});
    expect503(await run());
    await redis.start();
    const settlement = await eventuallyOk(run);
    expect(settlement.status).toBe(202);
    expect(await session.owner.settlement.count({ where: { terminalId } })).toBe(1);
    // And new operations are accepted again (the bus reconnected by itself).
    const op = await eventuallyOk(() =>
      session
        .http()
        .post(`/v1/terminals/${terminalId}/operations`)
        .set(auth)
        .set('Idempotency-Key', idem())
        .send({ type: 'purchase', amount: 100, currency: 'RUB' }),
    );
    expect(op.status).toBe(201);
    await redis.kill();
  });

  it('readiness says why', async () => {
    const res = await waitFor(
      async () => {
        const r = await session.http().get('/health/ready');
        return r.status === 503 && r;
      },
      { intervalMs: 100, what: 'readiness 503 with Redis down' },
    );
    expect(res.status).toBe(503);
    expect(res.body.checks.redis).toMatchObject({ ok: false });
    expect(res.body.checks.database).toMatchObject({ ok: true });
  });
});

/** Retries `send` (bounded) until it is not a 503: Redis takes a moment to be reconnected to. */
function eventuallyOk<T extends { status: number }>(send: () => PromiseLike<T>, timeoutMs = 10_000): Promise<T> {
  return waitFor(
    async () => {
      const res = await send();
      return res.status !== 503 && res;
    },
    { timeoutMs, intervalMs: 100, what: 'an answer other than 503 once Redis is back' },
  );
}
