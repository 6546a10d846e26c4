import { Get, Header, Res } from '@nestjs/common';

import type { Registry } from '@payorch/logging';

import { legacyHealth, liveness, type ReadinessReport } from './readiness';

export interface ServiceHealthOptions {
  /** The `service` of every body: `api-gateway`, `device-connector`, `settlement-worker`. */
  service: string;
  /** Runs the app's probes (a Readiness). */
  readiness: { evaluate(): Promise<ReadinessReport> };
  registry: Registry;
  /** Fields that name this instance, after `service` in every body (the connector's `instance`). */
  identity?: Record<string, unknown>;
  /** Fields after the checks in the original `/health` body (the connector's `agentsConnected`). */
  legacyExtra?: () => Record<string, unknown>;
}

/** What the handler gets to set the answer's status code (Express' Response). */
export interface StatusSink {
  status(code: number): unknown;
}

/**
 * The health endpoints of one app, the same in every app (ServiceHealthController routes to them):
 *   GET /health/live  → `live()`: the process answers, nothing is checked (a restart would not fix a dependency);
 *   GET /health/ready → `ready(res)`: 200 when every probe passes, else 503 with each check's `ok` and `reason`;
 *   GET /health       → `legacy(res)`: the same checks in the original body, for older probes;
 *   GET /metrics      → `metrics()`: Prometheus text.
 */
export class ServiceHealth {
  constructor(private readonly options: ServiceHealthOptions) {}

  live() {
    return { ...liveness(this.options.service), ...this.options.identity };
  }

  async ready(res: StatusSink) {
    const report = await this.options.readiness.evaluate();
    res.status(report.ok ? 200 : 503);
    return { status: report.ok ? ('ok' as const) : ('not_ready' as const), service: this.options.service, ...this.options.identity, checks: report.checks };
  }

  async legacy(res: StatusSink) {
    const report = await this.options.readiness.evaluate();
    res.status(report.ok ? 200 : 503);
    const { status, checks } = legacyHealth(report);
    return { status, service: this.options.service, ...this.options.identity, checks, ...this.options.legacyExtra?.() };
  }

  metrics(): Promise<string> {
    return this.options.registry.metrics();
  }
}

/**
 * The routes of every app's HealthController: the app's `@Controller()` subclass builds its probes and
 * passes its ServiceHealth; class decorators add what the app needs (the gateway's `@Public()`).
 */
export abstract class ServiceHealthController {
  constructor(protected readonly endpoints: ServiceHealth) {}

  /** Liveness: the process answers; no dependency is checked (a restart would not fix them). */
  @Get('health/live')
  live() {
    return this.endpoints.live();
  }

  /** Readiness: 200 when every check passes, else 503 with each check's `ok` and `reason`. */
  @Get('health/ready')
  ready(@Res({ passthrough: true }) res: StatusSink) {
    return this.endpoints.ready(res);
  }

  /** Kept for older probes: the same checks as /health/ready, in the original body. */
  @Get('health')
  health(@Res({ passthrough: true }) res: StatusSink) {
    return this.endpoints.legacy(res);
  }

  @Get('metrics')
  @Header('Content-Type', 'text/plain; version=0.0.4')
  metrics(): Promise<string> {
    return this.endpoints.metrics();
  }
}
