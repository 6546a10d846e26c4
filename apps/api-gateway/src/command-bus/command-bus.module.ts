import { type DynamicModule, Inject, Injectable, Module, type OnApplicationShutdown, type Provider } from '@nestjs/common';
import type { Redis } from 'ioredis';

import { databaseAgentResolver, RedisTerminalCommandDispatcher } from '@payorch/command-bus';
import type { GatewayConfig } from '@payorch/config';
import type { Database } from '@payorch/db';
import { TERMINAL_COMMAND_DISPATCHER, type TerminalCommandDispatcher } from '@payorch/operations';
import { redisToken } from '@payorch/redis';

import { DATABASE, GATEWAY_CONFIG } from '../common/tokens';

@Injectable()
class DispatcherCloser implements OnApplicationShutdown {
  constructor(@Inject(TERMINAL_COMMAND_DISPATCHER) private readonly dispatcher: TerminalCommandDispatcher & { close?: () => Promise<void> }) {}

  /** After the HTTP server stopped taking requests, before RedisModule closes the connections. */
  async onApplicationShutdown(): Promise<void> {
    await this.dispatcher.close?.();
  }
}

/**
 * The gateway's command bus to the device connectors (TERMINAL_COMMAND_DISPATCHER), set up once: a
 * RedisTerminalCommandDispatcher on the named connections, `command` (ownership lookups, XADD; its
 * status is `isAvailable()`) and `blocking` (the reply reader's XREAD BLOCK). Tests pass an in-process one.
 */
@Module({})
export class CommandBusModule {
  static register(options: { dispatcher?: TerminalCommandDispatcher } = {}): DynamicModule {
    const dispatcher: Provider = options.dispatcher
      ? { provide: TERMINAL_COMMAND_DISPATCHER, useValue: options.dispatcher }
      : {
          provide: TERMINAL_COMMAND_DISPATCHER,
          inject: [redisToken('command'), redisToken('blocking'), GATEWAY_CONFIG, DATABASE],
          useFactory: (redis: Redis, blocking: Redis, config: GatewayConfig, db: Database) =>
            new RedisTerminalCommandDispatcher({ redis, blocking, prefix: config.REDIS_KEY_PREFIX, resolveAgent: databaseAgentResolver(db) }),
        };
    return { module: CommandBusModule, exports: [TERMINAL_COMMAND_DISPATCHER], providers: [dispatcher, DispatcherCloser] };
  }
}
