import { Controller, Get, Header, Inject, Res } from '@nestjs/common';
import { ApiExcludeController } from '@nestjs/swagger';
import { HealthCheckService, HealthIndicatorService } from '@nestjs/terminus';
import type { Response } from 'express';
import type { Redis } from 'ioredis';

import type { Database } from '@payorch/db';
import { databasePing, legacyHealth, liveness, Readiness, redisPing } from '@payorch/health';
import type { Registry } from '@payorch/logging';

import { Public } from '../common/auth.guard';
import { DATABASE, METRICS_REGISTRY, REDIS } from '../common/tokens';

export { METRICS_REGISTRY };

@ApiExcludeController()
@Controller()
export class HealthController {
  private readonly readiness: Readiness;

  constructor(
    @Inject(DATABASE) db: Database,
    @Inject(REDIS) redis: Redis,
    @Inject(METRICS_REGISTRY) private readonly registry: Registry,
    health: HealthCheckService,
    indicators: HealthIndicatorService,
  ) {
    this.readiness = new Readiness({ health, indicators, registry, probes: { database: databasePing(db), redis: redisPing(redis) } });
  }

  /** Liveness: the process answers; no dependency is checked (a restart would not fix them). */
  @Get('health/live')
  @Public()
  live() {
    return liveness('api-gateway');
  }

  /** Readiness: 200 when every check passes, else 503 with each check's `ok` and `reason`. */
  @Get('health/ready')
  @Public()
  async ready(@Res({ passthrough: true }) res: Response) {
    const report = await this.readiness.evaluate();
    res.status(report.ok ? 200 : 503);
    return { status: report.ok ? 'ok' : 'not_ready', service: 'api-gateway', checks: report.checks };
  }

  /** Kept for older probes: the same checks as /health/ready (PostgreSQL and Redis), in the original body. */
  @Get('health')
  @Public()
  async health(@Res({ passthrough: true }) res: Response) {
    const report = await this.readiness.evaluate();
    res.status(report.ok ? 200 : 503);
    const { status, checks } = legacyHealth(report);
    return { status, service: 'api-gateway', checks };
  }

  @Get('metrics')
  @Public()
  @Header('Content-Type', 'text/plain; version=0.0.4')
  metrics(): Promise<string> {
    return this.registry.metrics();
  }
}
