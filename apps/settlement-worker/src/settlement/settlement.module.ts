import { BullModule } from '@nestjs/bullmq';
import { type DynamicModule, Inject, Injectable, Module, type OnApplicationShutdown, type Provider } from '@nestjs/common';
import type { Redis } from 'ioredis';

import type { WorkerConfig } from '@payorch/config';
import type { Database } from '@payorch/db';
import { QUEUES } from '@payorch/domain';
import type { Registry } from '@payorch/logging';
import { TERMINAL_COMMAND_DISPATCHER, type TerminalCommandDispatcher } from '@payorch/operations';
import { redisToken } from '@payorch/redis';

import { DATABASE, WORKER_CONFIG } from '../tokens';
import { DispatcherSettlementRunner } from './dispatcher-runner';
import { ScheduleCatchUpService } from './schedule-catch-up.service';
import { ScheduleSyncService } from './schedule-sync.service';
import { SETTLEMENT_METRICS, settlementMetrics } from './settlement-metrics';
import { SETTLEMENT_RUNNER, type SettlementRunner } from './settlement-runner';
import { SettlementSweepService } from './settlement-sweep.service';
import { SettlementProcessor } from './settlement.processor';
import { SettlementService } from './settlement.service';
import { TENANT_SLOTS } from './settlement.tokens';
import { TenantSlots } from './tenant-slots';

export interface SettlementDeps {
  registry: Registry;
  /** How close-days reach terminals; default: DispatcherSettlementRunner over the worker's command bus. */
  runner?: SettlementRunner;
}

@Injectable()
class RunnerCloser implements OnApplicationShutdown {
  constructor(@Inject(SETTLEMENT_RUNNER) private readonly runner: SettlementRunner) {}

  async onApplicationShutdown(): Promise<void> {
    await this.runner.close?.().catch(() => undefined);
  }
}

/**
 * Settlements (queue `settlement`): close-days, schedule firings, the schedule sync and the lost-job sweep (with the
 * catch-up of scheduled runs lost before their first attempt). Exports its queue.
 */
@Module({})
export class SettlementModule {
  static register(deps: SettlementDeps): DynamicModule {
    const runner: Provider = deps.runner
      ? { provide: SETTLEMENT_RUNNER, useValue: deps.runner }
      : {
          provide: SETTLEMENT_RUNNER,
          inject: [TERMINAL_COMMAND_DISPATCHER, DATABASE],
          useFactory: (dispatcher: TerminalCommandDispatcher, db: Database) => new DispatcherSettlementRunner(dispatcher, db),
        };
    return {
      module: SettlementModule,
      exports: [BullModule, ScheduleSyncService, SettlementService, SettlementSweepService],
      imports: [BullModule.registerQueue({ name: QUEUES.settlement })],
      providers: [
        { provide: SETTLEMENT_METRICS, useValue: settlementMetrics(deps.registry) },
        runner,
        {
          provide: TENANT_SLOTS,
          inject: [redisToken('command'), WORKER_CONFIG],
          useFactory: (redis: Redis, config: WorkerConfig) => new TenantSlots(redis, config.REDIS_KEY_PREFIX, config.SETTLEMENT_TENANT_CONCURRENCY),
        },
        RunnerCloser,
        ScheduleCatchUpService,
        ScheduleSyncService,
        SettlementProcessor,
        SettlementService,
        SettlementSweepService,
      ],
    };
  }
}
