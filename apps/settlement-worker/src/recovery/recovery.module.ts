import { BullModule } from '@nestjs/bullmq';
import { type DynamicModule, Inject, Module, type OnApplicationShutdown } from '@nestjs/common';
import { Redis } from 'ioredis';

import type { WorkerConfig } from '@payorch/config';
import type { Database } from '@payorch/db';
import { QUEUES } from '@payorch/domain';
import type { Logger } from '@payorch/logging';
import { TERMINAL_COMMAND_DISPATCHER, type TerminalCommandDispatcher } from '@payorch/operations';

import { DATABASE, LOGGER, METRICS, WORKER_CONFIG } from '../tokens';
import type { WorkerMetrics } from '../worker-metrics';
import { RecoveryProcessor } from './recovery.processor';
import { RecoveryService } from './recovery.service';
import { RECOVERY_REDIS } from './recovery.tokens';

export interface RecoveryDeps {
  config: WorkerConfig;
  db: Database;
  /** How `operation.recover` reaches the terminal: production RedisTerminalCommandDispatcher (@payorch/command-bus); tests in-process. */
  dispatcher: TerminalCommandDispatcher;
  logger: Logger;
  metrics: WorkerMetrics;
}

class RedisCloser implements OnApplicationShutdown {
  constructor(
    @Inject(RECOVERY_REDIS) private readonly redis: Redis,
    @Inject(TERMINAL_COMMAND_DISPATCHER) private readonly dispatcher: TerminalCommandDispatcher & { close?: () => Promise<void> },
  ) {}

  async onApplicationShutdown(): Promise<void> {
    await this.dispatcher.close?.().catch(() => undefined);
    this.redis.disconnect();
  }
}

/** Operation recovery (queue `operations-recovery`). */
@Module({})
export class RecoveryModule {
  static register(deps: RecoveryDeps): DynamicModule {
    const redis = new Redis(deps.config.REDIS_URL, { maxRetriesPerRequest: 2, lazyConnect: false });
    redis.on('error', (err) => deps.logger.warn({ err: err.message }, 'recovery redis error'));
    return {
      module: RecoveryModule,
      imports: [BullModule.registerQueue({ name: QUEUES.operationsRecovery })],
      providers: [
        { provide: DATABASE, useValue: deps.db },
        { provide: LOGGER, useValue: deps.logger },
        { provide: METRICS, useValue: deps.metrics },
        { provide: RECOVERY_REDIS, useValue: redis },
        { provide: TERMINAL_COMMAND_DISPATCHER, useValue: deps.dispatcher },
        { provide: WORKER_CONFIG, useValue: deps.config },
        RecoveryProcessor,
        RecoveryService,
        RedisCloser,
      ],
    };
  }
}
