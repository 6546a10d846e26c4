import type { INestApplication } from '@nestjs/common';
import { NestFactory } from '@nestjs/core';
import { Redis } from 'ioredis';

import { databaseAgentResolver, RedisTerminalCommandDispatcher } from '@payorch/command-bus';
import type { WorkerConfig } from '@payorch/config';
import { Database } from '@payorch/db';
import { createLogger, createMetricsRegistry, type Logger } from '@payorch/logging';
import { redisEventSink, type TerminalCommandDispatcher } from '@payorch/operations';

import { DispatcherSettlementRunner } from './settlement/dispatcher-runner';
import type { SettlementRunner } from './settlement/settlement-runner';
import { WorkerModule } from './worker.module';

/** The worker process: BullMQ processors plus a small HTTP server for /health and /metrics. */
export async function createWorkerApp(config: WorkerConfig, logger?: Logger, options: { settlementRunner?: SettlementRunner; dispatcher?: TerminalCommandDispatcher } = {}): Promise<INestApplication> {
  const log = logger ?? createLogger({ name: 'settlement-worker', level: config.LOG_LEVEL });
  // Settlement, wallet and recovery events go to their tenant's live channel once committed.
  const publisher = new Redis(config.REDIS_URL, { lazyConnect: true, maxRetriesPerRequest: 2 });
  const db = Database.connect(config.DATABASE_APP_URL, 4, {
    onCommitted: redisEventSink(publisher, config.REDIS_KEY_PREFIX, (err) => log.warn({ err: err.message }, 'event publish failed')),
    onClose: async () => void publisher.disconnect(),
  });
  // Settlements run through the device connector like any operation (one command at a time per terminal).
  const settlementRunner = options.settlementRunner ?? commandBusRunner(config, db);
  const app = await NestFactory.create(
    WorkerModule.register({
      config,
      db,
      logger: log,
      registry: createMetricsRegistry('settlement-worker'),
      settlementRunner,
      // Operation recovery dispatches `operation.recover` over the same command bus (tests inject an in-process one).
      dispatcher: options.dispatcher ?? commandBusDispatcher(config, db),
    }),
    { logger: false },
  );
  // SIGTERM/SIGINT → Nest closes the module → @nestjs/bullmq closes workers (active jobs finish first).
  app.enableShutdownHooks();
  return app;
}

/** Settlements run through the device connector like any operation, over the Redis command bus. */
function commandBusRunner(config: WorkerConfig, db: Database): SettlementRunner {
  const redis = new Redis(config.REDIS_URL, { lazyConnect: true });
  const dispatcher = new RedisTerminalCommandDispatcher({ redis, prefix: config.REDIS_KEY_PREFIX, resolveAgent: databaseAgentResolver(db) });
  return new DispatcherSettlementRunner(dispatcher, async () => {
    await dispatcher.close();
    redis.disconnect();
  });
}

/** `operation.recover` goes over the Redis command bus too; RecoveryModule closes it on shutdown. */
function commandBusDispatcher(config: WorkerConfig, db: Database): TerminalCommandDispatcher & { close(): Promise<void> } {
  const redis = new Redis(config.REDIS_URL, { lazyConnect: true });
  const dispatcher = new RedisTerminalCommandDispatcher({ redis, prefix: config.REDIS_KEY_PREFIX, resolveAgent: databaseAgentResolver(db) });
  return {
    dispatch: (command) => dispatcher.dispatch(command),
    close: async () => {
      await dispatcher.close();
      redis.disconnect();
    },
  };
}
