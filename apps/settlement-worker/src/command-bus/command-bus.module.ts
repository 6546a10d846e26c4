import { type DynamicModule, Inject, Injectable, Module, type OnApplicationShutdown, type Provider } from '@nestjs/common';
import type { Redis } from 'ioredis';

import { databaseAgentResolver, RedisTerminalCommandDispatcher } from '@payorch/command-bus';
import type { WorkerConfig } from '@payorch/config';
import type { Database } from '@payorch/db';
import { TERMINAL_COMMAND_DISPATCHER, type TerminalCommandDispatcher } from '@payorch/operations';
import { redisToken } from '@payorch/redis';

import { DATABASE, WORKER_CONFIG } from '../tokens';

@Injectable()
class DispatcherCloser implements OnApplicationShutdown {
  constructor(@Inject(TERMINAL_COMMAND_DISPATCHER) private readonly dispatcher: TerminalCommandDispatcher & { close?: () => Promise<void> }) {}

  /** Before RedisModule closes the connections. */
  async onApplicationShutdown(): Promise<void> {
    await this.dispatcher.close?.();
  }
}

/**
 * The worker's one command bus to the device connectors (TERMINAL_COMMAND_DISPATCHER): settlements
 * (`operation.execute`/`operation.recover` of a SETTLEMENT operation, DispatcherSettlementRunner) and
 * operation recovery (`operation.recover`) both use it. A RedisTerminalCommandDispatcher on the named
 * `command` (ownership lookups, XADD) and `blocking` (reply reader) connections; tests pass an in-process one.
 */
@Module({})
export class CommandBusModule {
  static register(options: { dispatcher?: TerminalCommandDispatcher } = {}): DynamicModule {
    const dispatcher: Provider = options.dispatcher
      ? { provide: TERMINAL_COMMAND_DISPATCHER, useValue: options.dispatcher }
      : {
          provide: TERMINAL_COMMAND_DISPATCHER,
          inject: [redisToken('command'), redisToken('blocking'), WORKER_CONFIG, DATABASE],
          useFactory: (redis: Redis, blocking: Redis, config: WorkerConfig, db: Database) =>
            new RedisTerminalCommandDispatcher({ redis, blocking, prefix: config.REDIS_KEY_PREFIX, resolveAgent: databaseAgentResolver(db) }),
        };
    return { module: CommandBusModule, exports: [TERMINAL_COMMAND_DISPATCHER], providers: [dispatcher, DispatcherCloser] };
  }
}
