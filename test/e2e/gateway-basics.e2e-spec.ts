import { SCHEMA_MIGRATION } from '@payorch/db';

import { GatewaySession } from './support/gateway-session';

describe('gateway basics', () => {
  const session = new GatewaySession();
  beforeAll(() => session.start({ RATE_LIMIT_PER_MINUTE: '5' }));
  afterAll(() => session.stop());

  it('reports health of PostgreSQL, its schema and Redis', async () => {
    const res = await session.http().get('/health');
    expect(res.status).toBe(200);
    expect(res.body).toEqual({ status: 'ok', service: 'api-gateway', checks: { database: 'ok', schema: 'ok', redis: 'ok' } });
  });

  it('answers liveness, and readiness with each check', async () => {
    expect((await session.http().get('/health/live')).status).toBe(200);
    const res = await session.http().get('/health/ready');
    expect(res.status).toBe(200);
    expect(res.body).toEqual({
      status: 'ok',
      service: 'api-gateway',
      checks: { database: { ok: true }, schema: { ok: true, migration: SCHEMA_MIGRATION }, redis: { ok: true } },
    });
  });

  it('serves the OpenAPI document with every resource', async () => {
    const res = await session.http().get('/docs/openapi.json');
    expect(res.status).toBe(200);
    expect(Object.keys(res.body.paths)).toEqual(
      expect.arrayContaining(['/v1/stores', '/v1/stores/{id}', '/v1/agents', '/v1/agents/{id}/enrollment-token', '/v1/terminals']),
    );
    // Bodies are named component schemas (the contract's rule): follow the $ref.
    const ref: string = res.body.paths['/v1/stores'].post.requestBody.content['application/json'].schema.$ref;
    expect(ref).toMatch(/^#\/components\/schemas\//);
    expect(res.body.components.schemas[ref.split('/').pop()!].required).toEqual(['name', 'timeZone']);
  });

  it('answers without naming its framework and with nosniff, errors and refusals included', async () => {
    for (const res of [await session.http().get('/health'), await session.http().get('/v1/stores'), await session.http().get('/no-such-route')]) {
      expect(res.headers['x-powered-by']).toBeUndefined();
      expect(res.headers['x-content-type-options']).toBe('nosniff');
    }
  });

  it('exposes Prometheus metrics including request counts', async () => {
    await session.http().get('/health');
    const res = await session.http().get('/metrics');
    expect(res.status).toBe(200);
    expect(res.text).toContain('payorch_http_requests_total{method="GET",route="/health",status="200"');
  });

  it('echoes a caller request id, and makes one otherwise', async () => {
    const given = await session.http().get('/v1/stores').set('X-Request-Id', 'req-abcdef-123');
    expect(given.headers['x-request-id']).toBe('req-abcdef-123');
    expect(given.body.error.requestId).toBe('req-abcdef-123');
    const made = await session.http().get('/v1/stores');
    expect(made.headers['x-request-id']).toMatch(/^[0-9a-f-]{36}$/);
  });

  it('answers unknown routes with 404 in the standard body', async () => {
    const res = await session.http().get('/v1/nothing');
    expect(res.status).toBe(404);
    expect(res.body.error.code).toBe('NOT_FOUND');
  });

  it('rate-limits per API key with 429 and Retry-After', async () => {
    const { apiKey } = await session.tenant();
    const statuses: number[] = [];
    for (let i = 0; i < 7; i++) {
      statuses.push((await session.http().get('/v1/stores').set('Authorization', `Bearer ${apiKey}`)).status);
    }
    expect(statuses.slice(0, 5)).toEqual([200, 200, 200, 200, 200]);
    const limited = await session.http().get('/v1/stores').set('Authorization', `Bearer ${apiKey}`);
    expect(limited.status).toBe(429);
    expect(limited.body.error.code).toBe('RATE_LIMITED');
    expect(Number(limited.headers['retry-after'])).toBeGreaterThan(0);
    // Another key of the same tenant has its own budget.
    const other = await session.tenant();
    expect((await session.http().get('/v1/stores').set('Authorization', `Bearer ${other.apiKey}`)).status).toBe(200);
  });
});
