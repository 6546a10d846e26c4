import { InjectQueue } from '@nestjs/bullmq';
import { Controller, Get, Header, Inject, Res } from '@nestjs/common';
import type { Queue } from 'bullmq';
import type { Response } from 'express';

import type { Database } from '@payorch/db';
import { probe, QUEUES } from '@payorch/domain';
import type { Registry } from '@payorch/logging';

import { DATABASE } from '../tokens';

export const REGISTRY = Symbol('REGISTRY');

@Controller()
export class HealthController {
  constructor(
    @Inject(DATABASE) private readonly db: Database,
    @InjectQueue(QUEUES.system) private readonly queue: Queue,
    @Inject(REGISTRY) private readonly registry: Registry,
  ) {}

  @Get('health')
  async health(@Res({ passthrough: true }) res: Response) {
    let counts: Record<string, number> | null = null;
    const checks = {
      database: await probe(() => this.db.ping()),
      redis: await probe(async () => (counts = await this.queue.getJobCounts('waiting', 'active', 'failed'))),
    };
    const ok = Object.values(checks).every((c) => c === 'ok');
    res.status(ok ? 200 : 503);
    return { status: ok ? 'ok' : 'degraded', service: 'settlement-worker', checks, queues: { [QUEUES.system]: counts } };
  }

  @Get('metrics')
  @Header('Content-Type', 'text/plain; version=0.0.4')
  metrics(): Promise<string> {
    return this.registry.metrics();
  }
}
