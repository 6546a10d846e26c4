import { BullModule } from '@nestjs/bullmq';
import { type DynamicModule, Inject, Module, type OnApplicationShutdown } from '@nestjs/common';
import { DiscoveryModule } from '@nestjs/core';
import { TerminusModule } from '@nestjs/terminus';

import type { WorkerConfig } from '@payorch/config';
import { type Database, SCHEMA_MIGRATION } from '@payorch/db';
import { SchemaCheck } from '@payorch/health';
import type { SecretBox } from '@payorch/domain';
import { type Resolver, systemResolver } from '@payorch/egress-guard';
import type { Logger, Registry } from '@payorch/logging';
import type { TerminalCommandDispatcher } from '@payorch/operations';
import { bullPrefix, type RedisClient, type RedisConnections, RedisModule, redisToken } from '@payorch/redis';

import { BullErrorLog } from './bull-errors';
import type { CampaignTiming } from './campaigns/campaign-runner';
import { CampaignsModule } from './campaigns/campaigns.module';
import { CommandBusModule } from '@payorch/command-bus';
import { HealthController, REGISTRY } from './health/health.controller';
import { RecoveryModule } from './recovery/recovery.module';
import { SchedulerReconciler } from './schedules/scheduler-reconciler.service';
import type { SettlementRunner } from './settlement/settlement-runner';
import { SettlementModule } from './settlement/settlement.module';
import { QueueJobGauges } from './system/queue-jobs';
import { SystemModule } from './system/system.module';
import { UnknownOutcomeGauges } from './system/unknown-outcomes';
import { DATABASE, EGRESS_RESOLVER, LOGGER, METRICS, SECRET_BOX, WORKER_CONFIG } from './tokens';
import { WalletPaymentsModule } from './wallet-payments/wallet-payments.module';
import { WebhooksModule } from './webhooks/webhooks.module';
import { WorkerDrain } from './worker-drain';
import { SCHEMA_CHECK, WorkerSchemaGate } from './schema-gate';
import { workerMetrics } from './worker-metrics';

export interface WorkerDeps {
  config: WorkerConfig;
  db: Database;
  logger: Logger;
  /** The process's named Redis connections: `bull`, `command`, `blocking`, `subscriber` (docs/architecture.md). */
  redis: RedisConnections;
  registry: Registry;
  /** The master key(s), opened once for the process (SECRET_BOX). */
  secrets: SecretBox;
  /** How settlements reach terminals; default: DispatcherSettlementRunner over the command bus (tests: in-process). */
  settlementRunner?: SettlementRunner;
  /** Command bus for `operation.execute` / `operation.recover`; default: the Redis command bus (tests: in-process). */
  dispatcher?: TerminalCommandDispatcher;
  /** Host name resolution of webhook deliveries; default: the system resolver (DNS through c-ares, then the hosts file). */
  resolver?: Resolver;
  /** Campaign clock and re-check intervals; default: the real clock (tests: a fake one). */
  campaignTiming?: Partial<CampaignTiming>;
}

/** Closes the database last: Nest shuts the root (global, registered first) module down after every other one. */
class DatabaseCloser implements OnApplicationShutdown {
  constructor(@Inject(DATABASE) private readonly db: Database) {}

  async onApplicationShutdown(): Promise<void> {
    await this.db.close();
  }
}

/**
 * The worker process: one global root module providing what every feature module shares (database,
 * logger, config, metrics, the Redis connections, the command bus), the BullMQ root configuration on the
 * named `bull` connection, and one feature module per queue, each registering its queue and @Processor
 * (processors live in feature modules: Nest initialises them after the global BullMQ registrar).
 */
@Module({})
export class WorkerModule {
  static register(deps: WorkerDeps): DynamicModule {
    const shared = [
      { provide: DATABASE, useValue: deps.db },
      { provide: EGRESS_RESOLVER, useValue: deps.resolver ?? systemResolver },
      { provide: LOGGER, useValue: deps.logger },
      { provide: METRICS, useValue: workerMetrics(deps.registry) },
      { provide: REGISTRY, useValue: deps.registry },
      { provide: SECRET_BOX, useValue: deps.secrets },
      { provide: WORKER_CONFIG, useValue: deps.config },
      { provide: SCHEMA_CHECK, useValue: new SchemaCheck(deps.db, SCHEMA_MIGRATION) },
    ];
    return {
      module: WorkerModule,
      global: true,
      controllers: [HealthController],
      exports: [...shared.map((p) => p.provide), CommandBusModule],
      imports: [
        // First: Nest shuts global modules down in reverse order of registration, so the connections close
        // after the BullMQ workers have finished their jobs.
        RedisModule.forRoot(deps.redis),
        // Queues and workers share the `bull` connection; BullMQ adds one blocking duplicate per Worker.
        BullModule.forRootAsync({
          inject: [redisToken('bull')],
          useFactory: (connection: RedisClient) => ({
            connection,
            // `<prefix>:{bull}`: one Redis Cluster hash slot for BullMQ's multi-key scripts.
            prefix: bullPrefix(deps.config.REDIS_KEY_PREFIX),
            defaultJobOptions: { removeOnComplete: { count: 1000 }, removeOnFail: false },
          }),
        }),
        CampaignsModule.register({ timing: deps.campaignTiming }),
        CommandBusModule.register({ config: WORKER_CONFIG, database: DATABASE, dispatcher: deps.dispatcher }),
        DiscoveryModule,
        RecoveryModule,
        SettlementModule.register({ registry: deps.registry, runner: deps.settlementRunner }),
        SystemModule,
        TerminusModule.forRoot({ logger: false }),
        WalletPaymentsModule.register({ registry: deps.registry }),
        WebhooksModule,
      ],
      // QueueJobGauges / UnknownOutcomeGauges: jobs per queue and state from Redis, payments whose outcome is unknown
      // from PostgreSQL, read when /metrics is scraped.
      providers: [...shared, BullErrorLog, DatabaseCloser, QueueJobGauges, SchedulerReconciler, UnknownOutcomeGauges, WorkerDrain, WorkerSchemaGate],
    };
  }
}
