import { BullModule } from '@nestjs/bullmq';
import { type DynamicModule, Inject, Module, type OnApplicationShutdown } from '@nestjs/common';
import { DiscoveryModule } from '@nestjs/core';
import { TerminusModule } from '@nestjs/terminus';

import type { WorkerConfig } from '@payorch/config';
import type { Database } from '@payorch/db';
import { QUEUES } from '@payorch/domain';
import type { Logger, Registry } from '@payorch/logging';
import { offlineDispatcher, type TerminalCommandDispatcher } from '@payorch/operations';

import { HealthController, REGISTRY } from './health/health.controller';
import { RecoveryModule } from './recovery/recovery.module';
import { bullConnection } from './redis-connection';
import { SchedulerReconciler } from './schedules/scheduler-reconciler.service';
import type { SettlementRunner } from './settlement/settlement-runner';
import { SettlementModule } from './settlement/settlement.module';
import { SystemProcessor } from './system/system.processor';
import { DATABASE, LOGGER, METRICS, WORKER_CONFIG } from './tokens';
import { WalletPaymentsProcessor } from './wallet-payments/wallet-payments.processor';
import { walletPaymentsProviders } from './wallet-payments/wallet-payments.tokens';
import { WalletResolutionService } from './wallet-payments/wallet-resolution.service';
import { WebhooksModule } from './webhooks/webhooks.module';
import { workerMetrics } from './worker-metrics';

export interface WorkerDeps {
  config: WorkerConfig;
  db: Database;
  logger: Logger;
  registry: Registry;
  /** How settlements reach terminals (bootstrap: the command bus; tests: an in-process runner). */
  settlementRunner: SettlementRunner;
  /** Command bus for `operation.recover` (bootstrap: RedisTerminalCommandDispatcher; default: every terminal offline). */
  dispatcher?: TerminalCommandDispatcher;
}

class DatabaseCloser implements OnApplicationShutdown {
  constructor(@Inject(DATABASE) private readonly db: Database) {}

  async onApplicationShutdown(): Promise<void> {
    await this.db.close();
  }
}

@Module({})
export class WorkerModule {
  static register(deps: WorkerDeps): DynamicModule {
    const metrics = workerMetrics(deps.registry);
    return {
      module: WorkerModule,
      controllers: [HealthController],
      imports: [
        BullModule.forRoot({
          connection: bullConnection(deps.config.REDIS_URL),
          prefix: `${deps.config.REDIS_KEY_PREFIX}:bull`,
          defaultJobOptions: { removeOnComplete: { count: 1000 }, removeOnFail: false },
        }),
        // settlement, operations-recovery and webhooks again here for SchedulerReconciler (their processors live in the feature modules).
        BullModule.registerQueue({ name: QUEUES.operationsRecovery }, { name: QUEUES.settlement }, { name: QUEUES.system }, { name: QUEUES.walletPayments }, { name: QUEUES.webhooks }),
        DiscoveryModule,
        SettlementModule.register({ ...deps, runner: deps.settlementRunner }),
        RecoveryModule.register({ ...deps, dispatcher: deps.dispatcher ?? offlineDispatcher, metrics }),
        TerminusModule.forRoot({ logger: false }),
        WebhooksModule.register({ ...deps, metrics }),
      ],
      providers: [
        { provide: DATABASE, useValue: deps.db },
        { provide: LOGGER, useValue: deps.logger },
        { provide: METRICS, useValue: metrics },
        { provide: REGISTRY, useValue: deps.registry },
        { provide: WORKER_CONFIG, useValue: deps.config },
        DatabaseCloser,
        SchedulerReconciler,
        SystemProcessor,
        ...walletPaymentsProviders(deps.config, deps.registry),
        WalletPaymentsProcessor,
        WalletResolutionService,
      ],
    };
  }
}
