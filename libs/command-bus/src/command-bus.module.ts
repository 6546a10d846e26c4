import { type DynamicModule, Inject, Injectable, type InjectionToken, Module, type OnApplicationShutdown, type Provider } from '@nestjs/common';

import type { Database } from '@payorch/db';
import { TERMINAL_COMMAND_DISPATCHER, type TerminalCommandDispatcher } from '@payorch/operations';
import { type RedisClient, redisToken } from '@payorch/redis';

import { databaseAgentResolver, RedisTerminalCommandDispatcher } from './dispatcher';

@Injectable()
class DispatcherCloser implements OnApplicationShutdown {
  constructor(@Inject(TERMINAL_COMMAND_DISPATCHER) private readonly dispatcher: TerminalCommandDispatcher & { close?: () => Promise<void> }) {}

  /** After the app stopped taking work (HTTP server, BullMQ workers), before RedisModule closes the connections. */
  async onApplicationShutdown(): Promise<void> {
    await this.dispatcher.close?.();
  }
}

export interface CommandBusModuleOptions {
  /** The app's config provider: its `REDIS_KEY_PREFIX` names the bus keys. */
  config: InjectionToken;
  /** The app's Database provider (agent → connector instance lookups). */
  database: InjectionToken;
  /** An in-process dispatcher instead of Redis (tests). */
  dispatcher?: TerminalCommandDispatcher;
}

/**
 * The command bus to the device connectors (TERMINAL_COMMAND_DISPATCHER), set up once per process (the gateway's
 * operations, the worker's settlements and recovery): a RedisTerminalCommandDispatcher on the named connections
 * `command` (ownership lookups, XADD; its status is `isAvailable()`) and `blocking` (the reply reader's XREAD BLOCK).
 */
@Module({})
export class CommandBusModule {
  static register(options: CommandBusModuleOptions): DynamicModule {
    const dispatcher: Provider = options.dispatcher
      ? { provide: TERMINAL_COMMAND_DISPATCHER, useValue: options.dispatcher }
      : {
          provide: TERMINAL_COMMAND_DISPATCHER,
          inject: [redisToken('command'), redisToken('blocking'), options.config, options.database],
          useFactory: (redis: RedisClient, blocking: RedisClient, config: { REDIS_KEY_PREFIX: string }, db: Database) =>
            new RedisTerminalCommandDispatcher({ redis, blocking, prefix: config.REDIS_KEY_PREFIX, resolveAgent: databaseAgentResolver(db) }),
        };
    return { module: CommandBusModule, exports: [TERMINAL_COMMAND_DISPATCHER], providers: [dispatcher, DispatcherCloser] };
  }
}
