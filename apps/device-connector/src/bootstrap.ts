import { hostname } from 'node:os';

import type { INestApplication } from '@nestjs/common';
import { NestFactory } from '@nestjs/core';
import type { NestExpressApplication } from '@nestjs/platform-express';
import { Redis } from 'ioredis';

import type { ConnectorConfig } from '@payorch/config';
import { Database } from '@payorch/db';
import { SecretBox } from '@payorch/domain';
import { createLogger, createMetricsRegistry, type Logger } from '@payorch/logging';
import { OperationCommandHandler, redisEventSink } from '@payorch/operations';

import type { OperationCommandHandlerLike } from './bus/command-router';
import { ConnectorModule } from './connector.module';
import { defaultDriverFactory } from './drivers/driver-factory';
import type { DriverFactory } from './terminals/terminal-hub';
import { AgentTunnelServer } from './tunnel/agent-tunnel.server';

export interface ConnectorAppOptions {
  /** Default: createDriver from @payorch/drivers. */
  driverFactory?: DriverFactory | null;
  /** Default: @payorch/operations' OperationCommandHandler on the connector's database. */
  operationHandler?: OperationCommandHandlerLike | null;
}

export async function createConnectorApp(config: ConnectorConfig, logger?: Logger, options: ConnectorAppOptions = {}): Promise<INestApplication> {
  const instanceId = config.CONNECTOR_INSTANCE_ID ?? `${hostname()}-${process.pid}`;
  const log = logger ?? createLogger({ name: 'device-connector', level: config.LOG_LEVEL, base: { instance: instanceId } });
  const redis = new Redis(config.REDIS_URL, { maxRetriesPerRequest: 3 });
  // Operation progress, presence and relay events go to their tenant's live channel once committed.
  const db = Database.connect(config.DATABASE_APP_URL, undefined, {
    onCommitted: redisEventSink(redis, config.REDIS_KEY_PREFIX, (err) => log.warn({ err: err.message }, 'event publish failed')),
  });
  const app = await NestFactory.create<NestExpressApplication>(
    ConnectorModule.register({
      config,
      db,
      driverFactory: options.driverFactory === undefined ? defaultDriverFactory() : options.driverFactory,
      instanceId,
      logger: log,
      operationHandler: options.operationHandler === undefined ? new OperationCommandHandler(db) : options.operationHandler,
      redis,
      registry: createMetricsRegistry('device-connector'),
      secrets: SecretBox.fromConfig(config.PAYORCH_MASTER_KEY, config.PAYORCH_PREVIOUS_MASTER_KEYS),
    }),
    { logger: false },
  );
  app.useBodyParser('json', { limit: '16kb' });
  app.enableShutdownHooks();
  await app.init();
  app.get(AgentTunnelServer).attach(app.getHttpServer());
  return app;
}
