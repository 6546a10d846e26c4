import { type DynamicModule, Inject, Module, type OnApplicationShutdown } from '@nestjs/common';
import { APP_FILTER, APP_GUARD, APP_INTERCEPTOR } from '@nestjs/core';
import { TerminusModule } from '@nestjs/terminus';
import type { Redis } from 'ioredis';

import type { GatewayConfig } from '@payorch/config';
import type { Database } from '@payorch/db';
import type { SecretBox } from '@payorch/domain';
import { type Resolver, systemResolver } from '@payorch/egress-guard';
import type { Logger, Registry } from '@payorch/logging';
import { offlineDispatcher, TERMINAL_COMMAND_DISPATCHER, type TerminalCommandDispatcher } from '@payorch/operations';

import { AgentsModule } from './agents/agents.module';
import { AssistMerchantsModule } from './assist-merchants/assist-merchants.module';
import { ApiKeyGuard } from './common/auth.guard';
import { AuthThrottle } from './common/auth-throttle';
import { DestinationGuard } from './common/destination.guard';
import { ErrorFilter } from './common/error.filter';
import { EgressModule } from './egress/egress.module';
import { EventsModule } from './events/events.module';
import { IdempotencyInterceptor } from './common/idempotency.interceptor';
import { RateLimitGuard } from './common/rate-limit.guard';
import { DATABASE, EGRESS_RESOLVER, GATEWAY_CONFIG, LOGGER, REDIS, SECRET_BOX } from './common/tokens';
import { HealthController, METRICS_REGISTRY } from './health/health.controller';
import { OperationsModule } from './operations/operations.module';
import { SettlementsModule } from './settlements/settlements.module';
import { StoresModule } from './stores/stores.module';
import { TerminalsModule } from './terminals/terminals.module';
import { WalletPaymentsModule } from './wallet-payments/wallet-payments.module';
import { WebhooksModule } from './webhooks/webhooks.module';

export interface GatewayDeps {
  config: GatewayConfig;
  db: Database;
  logger: Logger;
  metrics: Registry;
  redis: Redis;
  secrets: SecretBox;
  /** Command bus to the device connectors (operations); default: every terminal offline. */
  dispatcher?: TerminalCommandDispatcher;
  /** Resolves tenant-given host names for the egress policy; default: the system resolver. */
  resolver?: Resolver;
}

/** Closes the connections the app was given, after Nest has stopped taking requests. */
class ConnectionCloser implements OnApplicationShutdown {
  constructor(
    @Inject(DATABASE) private readonly db: Database,
    @Inject(REDIS) private readonly redis: Redis,
    @Inject(TERMINAL_COMMAND_DISPATCHER) private readonly dispatcher: TerminalCommandDispatcher & { close?: () => Promise<void> },
  ) {}

  async onApplicationShutdown(): Promise<void> {
    await this.dispatcher.close?.();
    await Promise.allSettled([this.db.close(), this.redis.quit()]);
  }
}

@Module({})
export class AppModule {
  static register(deps: GatewayDeps): DynamicModule {
    const shared = [
      AuthThrottle,
      { provide: DATABASE, useValue: deps.db },
      DestinationGuard,
      { provide: EGRESS_RESOLVER, useValue: deps.resolver ?? systemResolver },
      { provide: GATEWAY_CONFIG, useValue: deps.config },
      { provide: LOGGER, useValue: deps.logger },
      { provide: METRICS_REGISTRY, useValue: deps.metrics },
      { provide: REDIS, useValue: deps.redis },
      { provide: SECRET_BOX, useValue: deps.secrets },
      { provide: TERMINAL_COMMAND_DISPATCHER, useValue: deps.dispatcher ?? offlineDispatcher },
    ];
    return {
      module: AppModule,
      global: true,
      controllers: [HealthController],
      exports: shared.map((p) => ('provide' in p ? p.provide : p)),
      imports: [AgentsModule, AssistMerchantsModule, EgressModule, EventsModule, OperationsModule, SettlementsModule, StoresModule, TerminalsModule, TerminusModule.forRoot({ logger: false }), WalletPaymentsModule, WebhooksModule],
      providers: [
        ...shared,
        ConnectionCloser,
        // Guards run in this order: authenticate, then rate-limit per key.
        { provide: APP_GUARD, useClass: ApiKeyGuard },
        { provide: APP_GUARD, useClass: RateLimitGuard },
        { provide: APP_FILTER, useClass: ErrorFilter },
        { provide: APP_INTERCEPTOR, useClass: IdempotencyInterceptor },
      ],
    };
  }
}
