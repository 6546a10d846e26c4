import { SCHEMA_MIGRATION } from '@payorch/db';

import { ControllerSuite, expectError, expectStatus } from '../support/controller-suite';

describe('HealthController (health/live, health/ready, health, metrics)', () => {
  const suite = new ControllerSuite();
  beforeAll(() => suite.start());
  afterAll(() => suite.stop());

  it("answers liveness, readiness and the legacy health body with 200 while PostgreSQL (holding this build's schema) and Redis answer", async () => {
    const live = await suite.session.http().get('/health/live');
    expectStatus(live, 200);
    expect(live.body).toMatchObject({ status: 'ok', service: 'api-gateway' });
    const ready = await suite.session.http().get('/health/ready');
    expectStatus(ready, 200);
    expect(ready.body).toEqual({
      status: 'ok',
      service: 'api-gateway',
      checks: { database: { ok: true }, schema: { ok: true, migration: SCHEMA_MIGRATION }, redis: { ok: true } },
    });
    const health = await suite.session.http().get('/health');
    expectStatus(health, 200);
    expect(health.body).toEqual({
      status: 'ok',
      service: 'api-gateway',
      checks: { database: 'ok', schema: 'ok', redis: 'ok' },
    });
  });

  it('serves Prometheus metrics as text', async () => {
    const res = await suite.session.http().get('/metrics');
    expect(res.status).toBe(200);
    expect(res.headers['content-type']).toMatch(/^text\/plain/);
    expect(res.text).toContain('payorch_http_requests_total');
  });

  it('is public: no key needed, and a bad key is not even looked at', async () => {
    for (const path of ['/health/live', '/health/ready', '/health', '/metrics']) {
      expect((await suite.session.http().get(path).set('Authorization', 'Bearer pok_nope')).status).toBe(200);
    }
  });

  it('answers an unknown path or method under it with 404 in the envelope', async () => {
    expectError(await suite.session.http().get('/health/deep'), 404, 'NOT_FOUND');
    expectError(await suite.session.http().post('/health/live').send({}), 404, 'NOT_FOUND');
    expectError(await suite.session.http().delete('/metrics'), 404, 'NOT_FOUND');
  });
});
