import { Controller, Inject } from '@nestjs/common';
import { ApiExcludeController } from '@nestjs/swagger';
import { HealthCheckService, HealthIndicatorService } from '@nestjs/terminus';
import type { Redis } from 'ioredis';

import { type Database, SCHEMA_MIGRATION } from '@payorch/db';
import { databasePing, Readiness, redisPing, SchemaCheck, ServiceHealth, ServiceHealthController } from '@payorch/health';
import type { Registry } from '@payorch/logging';

import { Public } from '../common/auth.guard';
import { DATABASE, METRICS_REGISTRY, REDIS } from '../common/tokens';

export { METRICS_REGISTRY };

/** `/health/live`, `/health/ready` (PostgreSQL, the build's schema applied, Redis), `/health`, `/metrics`: public, not in the OpenAPI document. */
@ApiExcludeController()
@Public()
@Controller()
export class HealthController extends ServiceHealthController {
  constructor(
    @Inject(DATABASE) db: Database,
    @Inject(REDIS) redis: Redis,
    @Inject(METRICS_REGISTRY) registry: Registry,
    health: HealthCheckService,
    indicators: HealthIndicatorService,
  ) {
    const readiness = new Readiness({
      health,
      indicators,
      registry,
      probes: {
        database: databasePing(db),
        schema: new SchemaCheck(db, SCHEMA_MIGRATION).probe(),
        redis: redisPing(redis),
      },
    });
    super(new ServiceHealth({ service: 'api-gateway', readiness, registry }));
  }
}
