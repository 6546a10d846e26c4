import { Controller, type INestApplication, Module, SetMetadata } from '@nestjs/common';
import { NestFactory } from '@nestjs/core';
import { Counter, Registry } from 'prom-client';
import request from 'supertest';

import type { ReadinessReport } from './readiness';
import { ServiceHealth, ServiceHealthController } from './service-health';

const ready: ReadinessReport = { ok: true, checks: { database: { ok: true }, redis: { ok: true } } };
const down: ReadinessReport = { ok: false, checks: { database: { ok: true }, redis: { ok: false, reason: 'redis connection reconnecting' } } };

function sut(report: ReadinessReport, identity?: Record<string, unknown>, legacyExtra?: () => Record<string, unknown>) {
  const registry = new Registry();
  new Counter({ name: 'payorch_spec_total', help: 'A counter.', registers: [registry] }).inc();
  return new ServiceHealth({ service: 'device-connector', readiness: { evaluate: async () => report }, registry, identity, legacyExtra });
}

function response() {
  const res = { code: 0, status: (code: number) => (res.code = code) };
  return res;
}

describe(ServiceHealth.name, () => {
  it('answers liveness without checking anything, with the instance fields after the service', () => {
    const body = sut(down, { instance: 'c1' }).live();
    expect(body).toEqual({ status: 'ok', service: 'device-connector', uptimeSeconds: expect.any(Number), instance: 'c1' });
    expect(Object.keys(body)).toEqual(['status', 'service', 'uptimeSeconds', 'instance']);
  });

  it('answers readiness 200 with every check when all pass', async () => {
    const res = response();
    expect(await sut(ready).ready(res)).toEqual({ status: 'ok', service: 'device-connector', checks: ready.checks });
    expect(res.code).toBe(200);
  });

  it('answers readiness 503 not_ready naming the failing check and its reason', async () => {
    const res = response();
    const body = await sut(down, { instance: 'c1' }).ready(res);
    expect(res.code).toBe(503);
    expect(body).toEqual({ status: 'not_ready', service: 'device-connector', instance: 'c1', checks: down.checks });
    expect(Object.keys(body)).toEqual(['status', 'service', 'instance', 'checks']);
  });

  it('keeps the original /health body: degraded, one string per check, extra fields last', async () => {
    const res = response();
    const body = await sut(down, { instance: 'c1' }, () => ({ agentsConnected: 2 })).legacy(res);
    expect(res.code).toBe(503);
    expect(body).toEqual({
      status: 'degraded',
      service: 'device-connector',
      instance: 'c1',
      checks: { database: 'ok', redis: 'error: redis connection reconnecting' },
      agentsConnected: 2,
    });
    expect(Object.keys(body)).toEqual(['status', 'service', 'instance', 'checks', 'agentsConnected']);
    expect(await sut(ready).legacy(res)).toEqual({ status: 'ok', service: 'device-connector', checks: { database: 'ok', redis: 'ok' } });
    expect(res.code).toBe(200);
  });

  it('serves the registry as Prometheus text', async () => {
    const text = await sut(ready).metrics();
    expect(text).toContain('payorch_spec_total 1');
  });
});

describe(ServiceHealthController.name, () => {
  const MARK = 'payorch:spec-mark';
  @SetMetadata(MARK, true)
  @Controller()
  class SpecHealthController extends ServiceHealthController {
    constructor() {
      super(sut(down, { instance: 'c1' }, () => ({ agentsConnected: 0 })));
    }
  }
  let app: INestApplication;
  beforeAll(async () => {
    @Module({ controllers: [SpecHealthController] })
    class SpecModule {}
    app = await NestFactory.create(SpecModule, { logger: false });
    await app.init();
  });
  afterAll(() => app.close());

  it("serves the inherited routes with the status codes and bodies of ServiceHealth, under the subclass's class metadata", async () => {
    const http = request(app.getHttpServer());
    expect((await http.get('/health/live')).body).toMatchObject({ status: 'ok', service: 'device-connector', instance: 'c1' });
    const ready = await http.get('/health/ready');
    expect([ready.status, ready.body.status, ready.body.checks.redis]).toEqual([503, 'not_ready', { ok: false, reason: 'redis connection reconnecting' }]);
    const legacy = await http.get('/health');
    expect([legacy.status, legacy.body]).toEqual([503, expect.objectContaining({ status: 'degraded', agentsConnected: 0 })]);
    const metrics = await http.get('/metrics');
    expect([metrics.status, metrics.headers['content-type'], metrics.text]).toEqual([
      200,
      'text/plain; version=0.0.4; charset=utf-8',
      expect.stringContaining('payorch_spec_total 1'),
    ]);
    expect(Reflect.getMetadata(MARK, SpecHealthController)).toBe(true);
  });
});
