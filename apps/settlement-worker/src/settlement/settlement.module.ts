import { BullModule } from '@nestjs/bullmq';
import { type DynamicModule, Inject, Module, type OnApplicationShutdown } from '@nestjs/common';
import { Redis } from 'ioredis';

import type { WorkerConfig } from '@payorch/config';
import type { Database } from '@payorch/db';
import { QUEUES } from '@payorch/domain';
import type { Logger, Registry } from '@payorch/logging';

import { DATABASE, LOGGER, WORKER_CONFIG } from '../tokens';
import { ScheduleSyncService } from './schedule-sync.service';
import { SETTLEMENT_METRICS, settlementMetrics } from './settlement-metrics';
import { SETTLEMENT_RUNNER, type SettlementRunner } from './settlement-runner';
import { SettlementProcessor } from './settlement.processor';
import { SettlementService } from './settlement.service';
import { SETTLEMENT_REDIS, TENANT_SLOTS } from './settlement.tokens';
import { TenantSlots } from './tenant-slots';

export interface SettlementDeps {
  config: WorkerConfig;
  db: Database;
  logger: Logger;
  registry: Registry;
  /** How close-days reach terminals (production: DispatcherSettlementRunner over the command bus). */
  runner: SettlementRunner;
}

class RedisCloser implements OnApplicationShutdown {
  constructor(
    @Inject(SETTLEMENT_REDIS) private readonly redis: Redis,
    @Inject(SETTLEMENT_RUNNER) private readonly runner: SettlementRunner,
  ) {}

  async onApplicationShutdown(): Promise<void> {
    await this.runner.close?.().catch(() => undefined);
    this.redis.disconnect();
  }
}

@Module({})
export class SettlementModule {
  static register(deps: SettlementDeps): DynamicModule {
    const redis = new Redis(deps.config.REDIS_URL, { maxRetriesPerRequest: null, lazyConnect: false });
    redis.on('error', (err) => deps.logger.warn({ err: err.message }, 'settlement redis error'));
    return {
      module: SettlementModule,
      imports: [BullModule.registerQueue({ name: QUEUES.settlement })],
      providers: [
        { provide: DATABASE, useValue: deps.db },
        { provide: LOGGER, useValue: deps.logger },
        { provide: SETTLEMENT_METRICS, useValue: settlementMetrics(deps.registry) },
        { provide: SETTLEMENT_REDIS, useValue: redis },
        { provide: SETTLEMENT_RUNNER, useValue: deps.runner },
        { provide: TENANT_SLOTS, useValue: new TenantSlots(redis, deps.config.REDIS_KEY_PREFIX, deps.config.SETTLEMENT_TENANT_CONCURRENCY) },
        { provide: WORKER_CONFIG, useValue: deps.config },
        RedisCloser,
        ScheduleSyncService,
        SettlementProcessor,
        SettlementService,
      ],
      exports: [ScheduleSyncService, SettlementService],
    };
  }
}
