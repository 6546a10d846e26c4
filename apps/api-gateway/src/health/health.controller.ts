import { Controller, Get, Header, Inject, Res } from '@nestjs/common';
import { ApiExcludeController } from '@nestjs/swagger';
import type { Response } from 'express';
import type { Redis } from 'ioredis';

import type { Database } from '@payorch/db';
import { probe } from '@payorch/domain';
import type { Registry } from '@payorch/logging';

import { Public } from '../common/auth.guard';
import { DATABASE, METRICS_REGISTRY, REDIS } from '../common/tokens';

export { METRICS_REGISTRY };

@ApiExcludeController()
@Controller()
export class HealthController {
  constructor(
    @Inject(DATABASE) private readonly db: Database,
    @Inject(REDIS) private readonly redis: Redis,
    @Inject(METRICS_REGISTRY) private readonly registry: Registry,
  ) {}

  /** Liveness and readiness: 200 when PostgreSQL and Redis answer, 503 otherwise. */
  @Get('health')
  @Public()
  async health(@Res({ passthrough: true }) res: Response) {
    const checks = { database: await probe(() => this.db.ping()), redis: await probe(() => this.redis.ping()) };
    const ok = Object.values(checks).every((c) => c === 'ok');
    res.status(ok ? 200 : 503);
    return { status: ok ? 'ok' : 'degraded', service: 'api-gateway', checks };
  }

  @Get('metrics')
  @Public()
  @Header('Content-Type', 'text/plain; version=0.0.4')
  metrics(): Promise<string> {
    return this.registry.metrics();
  }
}
