import { BullModule } from '@nestjs/bullmq';
import { type DynamicModule, Inject, Module, type OnApplicationShutdown } from '@nestjs/common';

import type { WorkerConfig } from '@payorch/config';
import type { Database } from '@payorch/db';
import { QUEUES } from '@payorch/domain';
import type { Logger, Registry } from '@payorch/logging';

import { HealthController, REGISTRY } from './health/health.controller';
import { bullConnection } from './redis-connection';
import { SystemProcessor } from './system/system.processor';
import { DATABASE, LOGGER, METRICS, WORKER_CONFIG } from './tokens';
import { workerMetrics } from './worker-metrics';

export interface WorkerDeps {
  config: WorkerConfig;
  db: Database;
  logger: Logger;
  registry: Registry;
}

class DatabaseCloser implements OnApplicationShutdown {
  constructor(@Inject(DATABASE) private readonly db: Database) {}

  async onApplicationShutdown(): Promise<void> {
    await this.db.close();
  }
}

@Module({})
export class WorkerModule {
  static register(deps: WorkerDeps): DynamicModule {
    return {
      module: WorkerModule,
      controllers: [HealthController],
      imports: [
        BullModule.forRoot({
          connection: bullConnection(deps.config.REDIS_URL),
          prefix: `${deps.config.REDIS_KEY_PREFIX}:bull`,
          defaultJobOptions: { removeOnComplete: { count: 1000 }, removeOnFail: false },
        }),
        BullModule.registerQueue({ name: QUEUES.system }),
      ],
      providers: [
        { provide: DATABASE, useValue: deps.db },
        { provide: LOGGER, useValue: deps.logger },
        { provide: METRICS, useValue: workerMetrics(deps.registry) },
        { provide: REGISTRY, useValue: deps.registry },
        { provide: WORKER_CONFIG, useValue: deps.config },
        DatabaseCloser,
        SystemProcessor,
      ],
    };
  }
}
