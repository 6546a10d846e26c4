import type { INestApplication } from '@nestjs/common';
import { NestFactory } from '@nestjs/core';

import type { WorkerConfig } from '@payorch/config';
import { Database } from '@payorch/db';
import { createLogger, createMetricsRegistry, type Logger } from '@payorch/logging';

import { WorkerModule } from './worker.module';

/** The worker process: BullMQ processors plus a small HTTP server for /health and /metrics. */
export async function createWorkerApp(config: WorkerConfig, logger?: Logger): Promise<INestApplication> {
  const log = logger ?? createLogger({ name: 'settlement-worker', level: config.LOG_LEVEL });
  const app = await NestFactory.create(
    WorkerModule.register({
      config,
      db: Database.connect(config.DATABASE_APP_URL, 4),
      logger: log,
      registry: createMetricsRegistry('settlement-worker'),
    }),
    { logger: false },
  );
  // SIGTERM/SIGINT → Nest closes the module → @nestjs/bullmq closes workers (active jobs finish first).
  app.enableShutdownHooks();
  return app;
}
