import { BullModule } from '@nestjs/bullmq';
import { type DynamicModule, Inject, Module, type OnApplicationShutdown } from '@nestjs/common';
import { APP_FILTER, APP_GUARD, APP_INTERCEPTOR } from '@nestjs/core';
import { TerminusModule } from '@nestjs/terminus';
import { ThrottlerModule } from '@nestjs/throttler';
import type { Response } from 'express';
import type { Redis } from 'ioredis';
import { LoggerModule } from 'nestjs-pino';

import type { GatewayConfig } from '@payorch/config';
import type { Database } from '@payorch/db';
import type { SecretBox } from '@payorch/domain';
import { type Resolver, systemResolver } from '@payorch/egress-guard';
import type { Logger, Registry } from '@payorch/logging';
import type { TerminalCommandDispatcher } from '@payorch/operations';
import { bullPrefix, type RedisClient, type RedisConnections, RedisModule, redisToken } from '@payorch/redis';

import { AgentsModule } from './agents/agents.module';
import { ApiKeysModule } from './api-keys/api-keys.module';
import { AssistMerchantsModule } from './assist-merchants/assist-merchants.module';
import { CampaignsModule } from './campaigns/campaigns.module';
import { AuditModule } from './audit/audit.module';
import { CommandBusModule } from '@payorch/command-bus';
import { ConsoleModule } from './console/console.module';
import { ApiKeyGuard } from './common/auth.guard';
import { ApiKeyLookups } from './common/api-key-lookups';
import { AuthThrottle } from './common/auth-throttle';
import { DestinationGuard } from './common/destination.guard';
import { ErrorFilter } from './common/error.filter';
import { EgressModule } from './egress/egress.module';
import { EventsModule } from './events/events.module';
import { IdempotencyInterceptor } from './common/idempotency.interceptor';
import { RateLimitGuard, rateLimitOptions } from './common/rate-limit.guard';
import type { PayorchRequest } from './common/request-context';
import { requestLogging } from './common/request-log';
import { DATABASE, EGRESS_RESOLVER, GATEWAY_CONFIG, LOGGER, REDIS, SECRET_BOX } from './common/tokens';
import { HealthController, METRICS_REGISTRY } from './health/health.controller';
import { OperationsModule } from './operations/operations.module';
import { RelaySessionsModule } from './relay-sessions/relay-sessions.module';
import { SettlementsModule } from './settlements/settlements.module';
import { StatsModule } from './stats/stats.module';
import { StoresModule } from './stores/stores.module';
import { TerminalsModule } from './terminals/terminals.module';
import { WalletPaymentsModule, WalletSummariesModule } from './wallet-payments/wallet-payments.module';
import { WebhooksModule } from './webhooks/webhooks.module';

export interface GatewayDeps {
  config: GatewayConfig;
  db: Database;
  logger: Logger;
  metrics: Registry;
  /** The process's named Redis connections: `command`, `blocking`, `subscriber` (docs/architecture.md). */
  redis: RedisConnections;
  secrets: SecretBox;
  /** Command bus to the device connectors (operations); default: the Redis command bus. */
  dispatcher?: TerminalCommandDispatcher;
  /** Resolves tenant-given host names for the egress policy; default: the system resolver. */
  resolver?: Resolver;
}

/** Closes the database after Nest has stopped taking requests (RedisModule closes the Redis connections). */
class DatabaseCloser implements OnApplicationShutdown {
  constructor(@Inject(DATABASE) private readonly db: Database) {}

  async onApplicationShutdown(): Promise<void> {
    await this.db.close();
  }
}

@Module({})
export class AppModule {
  static register(deps: GatewayDeps): DynamicModule {
    const shared = [
      ApiKeyLookups,
      AuthThrottle,
      { provide: DATABASE, useValue: deps.db },
      DestinationGuard,
      { provide: EGRESS_RESOLVER, useValue: deps.resolver ?? systemResolver },
      { provide: GATEWAY_CONFIG, useValue: deps.config },
      { provide: LOGGER, useValue: deps.logger },
      { provide: METRICS_REGISTRY, useValue: deps.metrics },
      // Ordinary commands (rate limits, auth throttle, PUBLISH, health) go on the named `command` connection.
      { provide: REDIS, useExisting: redisToken('command') },
      { provide: SECRET_BOX, useValue: deps.secrets },
    ];
    return {
      module: AppModule,
      global: true,
      controllers: [HealthController],
      exports: [...shared.map((p) => ('provide' in p ? p.provide : p)), CommandBusModule],
      imports: [
        // First: Nest shuts global modules down in reverse order of registration, so the connections close last.
        RedisModule.forRoot(deps.redis),
        AgentsModule,
        ApiKeysModule,
        AssistMerchantsModule,
        AuditModule,
        // Producers only: the queues share the fail-fast `command` connection (no offline queue).
        BullModule.forRootAsync({
          inject: [redisToken('command')],
          // `<prefix>:{bull}`: one Redis Cluster hash slot for BullMQ's multi-key scripts.
          useFactory: (connection: RedisClient) => ({ connection, prefix: bullPrefix(deps.config.REDIS_KEY_PREFIX) }),
        }),
        CampaignsModule,
        CommandBusModule.register({ config: GATEWAY_CONFIG, database: DATABASE, dispatcher: deps.dispatcher }),
        // The ops console's static build at /console (apps/console).
        ConsoleModule,
        EgressModule,
        EventsModule,
        // One `request` line per request through pino-http, with the request id of `X-Request-Id` (bootstrap.ts).
        LoggerModule.forRoot<PayorchRequest, Response>(requestLogging(deps.logger)),
        OperationsModule,
        RelaySessionsModule,
        // Before SettlementsModule: its `settlements/:id` would otherwise take `settlements/wallet-summaries`.
        WalletSummariesModule,
        SettlementsModule,
        StatsModule,
        StoresModule,
        TerminalsModule,
        TerminusModule.forRoot({ logger: false }),
        ThrottlerModule.forRootAsync({ inject: [redisToken('command')], useFactory: (redis: Redis) => rateLimitOptions(deps.config, redis) }),
        WalletPaymentsModule,
        WebhooksModule,
      ],
      providers: [
        ...shared,
        DatabaseCloser,
        // Guards run in this order: authenticate, then rate-limit per key (@nestjs/throttler).
        { provide: APP_GUARD, useClass: ApiKeyGuard },
        { provide: APP_GUARD, useClass: RateLimitGuard },
        { provide: APP_FILTER, useClass: ErrorFilter },
        { provide: APP_INTERCEPTOR, useClass: IdempotencyInterceptor },
      ],
    };
  }
}
