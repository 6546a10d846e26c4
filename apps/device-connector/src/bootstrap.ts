import { hostname } from 'node:os';

import type { INestApplication } from '@nestjs/common';
import { NestFactory } from '@nestjs/core';
import type { NestExpressApplication } from '@nestjs/platform-express';

import type { ConnectorConfig } from '@payorch/config';
import { Database } from '@payorch/db';
import { createLogger, createMetricsRegistry, type Logger } from '@payorch/logging';

import { ConnectorModule } from './connector.module';
import { AgentTunnelServer } from './tunnel/agent-tunnel.server';

export async function createConnectorApp(config: ConnectorConfig, logger?: Logger): Promise<INestApplication> {
  const instanceId = config.CONNECTOR_INSTANCE_ID ?? `${hostname()}-${process.pid}`;
  const log = logger ?? createLogger({ name: 'device-connector', level: config.LOG_LEVEL, base: { instance: instanceId } });
  const app = await NestFactory.create<NestExpressApplication>(
    ConnectorModule.register({
      config,
      db: Database.connect(config.DATABASE_APP_URL),
      instanceId,
      logger: log,
      registry: createMetricsRegistry('device-connector'),
    }),
    { logger: false },
  );
  app.useBodyParser('json', { limit: '16kb' });
  app.enableShutdownHooks();
  await app.init();
  app.get(AgentTunnelServer).attach(app.getHttpServer());
  return app;
}
