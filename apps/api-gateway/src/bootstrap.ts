import type { Server } from 'node:http';

import { type INestApplication } from '@nestjs/common';
import { NestFactory } from '@nestjs/core';
import { type NestExpressApplication } from '@nestjs/platform-express';
import { DocumentBuilder, SwaggerModule } from '@nestjs/swagger';
import type { NextFunction, Response } from 'express';
import { Redis } from 'ioredis';

import type { GatewayConfig } from '@payorch/config';
import { Database } from '@payorch/db';
import { SecretBox } from '@payorch/domain';
import type { Resolver } from '@payorch/egress-guard';
import { createLogger, createMetricsRegistry, httpMetrics, type Logger } from '@payorch/logging';
import { databaseAgentResolver, RedisTerminalCommandDispatcher } from '@payorch/command-bus';
import { redisEventSink, type TerminalCommandDispatcher } from '@payorch/operations';

import { AppModule } from './app.module';
import { inputHygiene, JSON_MEDIA_TYPES, MAX_JSON_BODY, requireJsonBody } from './common/input-hygiene';
import { withErrorResponses } from './common/openapi';
import { answerClientErrors } from './common/raw-error';
import type { PayorchRequest } from './common/request-context';
import { requestIdMiddleware } from './common/request-id.middleware';

export interface GatewayOptions {
  logger?: Logger;
  /** Command bus to the device connectors (tests inject an in-process one). */
  dispatcher?: TerminalCommandDispatcher;
  /** Resolver for tenant-given host names (egress policy); tests inject one so no real name is looked up. */
  resolver?: Resolver;
}

/** Builds the gateway (used by main.ts and by the e2e tests), not yet listening. */
export async function createGatewayApp(config: GatewayConfig, options: GatewayOptions = {}): Promise<INestApplication> {
  const logger = options.logger ?? createLogger({ name: 'api-gateway', level: config.LOG_LEVEL });
  const metrics = createMetricsRegistry('api-gateway');
  const http = httpMetrics(metrics);
  const redis = new Redis(config.REDIS_URL, { enableOfflineQueue: false, maxRetriesPerRequest: 2, lazyConnect: false });
  // Every committed domain event goes to its tenant's live channel (streams, webhook fan-out).
  const db = Database.connect(config.DATABASE_APP_URL, undefined, {
    onCommitted: redisEventSink(redis, config.REDIS_KEY_PREFIX, (err) => logger.warn({ err: err.message }, 'event publish failed')),
  });
  redis.on('error', (err) => logger.warn({ err: err.message }, 'redis connection error'));
  const secrets = SecretBox.fromConfig(config.PAYORCH_MASTER_KEY, config.PAYORCH_PREVIOUS_MASTER_KEYS);

  const app = await NestFactory.create<NestExpressApplication>(
    AppModule.register({ config, db, dispatcher: options.dispatcher ?? commandBus(config, db), logger, metrics, redis, resolver: options.resolver, secrets }),
    // Only the JSON parser below: no urlencoded parser, so a form body never reaches a handler.
    { logger: false, bodyParser: false },
  );
  app.set('trust proxy', config.TRUST_PROXY);
  // The request id comes first, so every answer — parser errors included — carries it.
  app.use(requestIdMiddleware);
  app.use((req: PayorchRequest, res: Response, next: NextFunction) => {
    const started = process.hrtime.bigint();
    res.on('finish', () => {
      const route = (req.route?.path as string | undefined) ?? 'unmatched';
      const seconds = Number(process.hrtime.bigint() - started) / 1e9;
      http.requests.inc({ method: req.method, route, status: String(res.statusCode) });
      http.duration.observe({ method: req.method, route }, seconds);
      logger.info(
        { requestId: req.requestId, tenantId: req.tenant?.tenantId, method: req.method, route, status: res.statusCode, ms: Math.round(seconds * 1000) },
        'request',
      );
    });
    next();
  });
  // Input hygiene, before guards, interceptors and pipes: 415 for non-JSON bodies, 400/413 from the
  // parser, then depth / NUL / lone surrogates in body, query and path (docs/security.md).
  app.use(requireJsonBody);
  app.useBodyParser('json', { limit: MAX_JSON_BODY, type: JSON_MEDIA_TYPES });
  app.use(inputHygiene);
  answerClientErrors(app.getHttpServer() as Server, logger);
  app.enableShutdownHooks();

  const document = SwaggerModule.createDocument(
    app,
    new DocumentBuilder()
      .setTitle('payorch API')
      .setDescription(
        'Payment orchestration for terminal fleets and wallet payments. Authenticate with `Authorization: Bearer <API key>`; send an `Idempotency-Key` on every mutating call. Errors: `{error:{code,message,details,requestId}}`.',
      )
      .setVersion('1')
      .addBearerAuth()
      .build(),
  );
  SwaggerModule.setup('docs', app, withErrorResponses(document), { jsonDocumentUrl: 'docs/openapi.json' });
  return app;
}

/**
 * Terminal commands go over the Redis command bus to the connector instance holding the agent. The
 * dispatcher reads replies with a blocking XREAD, so it gets a connection of its own, closed with the app.
 */
function commandBus(config: GatewayConfig, db: Database): TerminalCommandDispatcher & { close(): Promise<void> } {
  // Connected at once, so its status tells whether the bus can take a command (isAvailable).
  const busRedis = new Redis(config.REDIS_URL, { maxRetriesPerRequest: null });
  busRedis.on('error', () => undefined);
  const dispatcher = new RedisTerminalCommandDispatcher({ redis: busRedis, prefix: config.REDIS_KEY_PREFIX, resolveAgent: databaseAgentResolver(db) });
  return {
    dispatch: (command) => dispatcher.dispatch(command),
    isAvailable: () => dispatcher.isAvailable(),
    close: async () => {
      await dispatcher.close();
      busRedis.disconnect();
    },
  };
}
