import { BullModule } from '@nestjs/bullmq';
import { type DynamicModule, Inject, Module, type OnApplicationShutdown } from '@nestjs/common';
import { Redis } from 'ioredis';

import type { WorkerConfig } from '@payorch/config';
import type { Database } from '@payorch/db';
import { QUEUES, SecretBox } from '@payorch/domain';
import type { Logger } from '@payorch/logging';

import { DATABASE, LOGGER, METRICS, WORKER_CONFIG } from '../tokens';
import type { WorkerMetrics } from '../worker-metrics';
import { WebhookEventListener } from './event-listener';
import { WebhookDeliveryService } from './webhook-delivery.service';
import { WebhooksProcessor } from './webhooks.processor';
import { WEBHOOK_REDIS, WEBHOOK_SECRET_BOX } from './webhooks.tokens';

export interface WebhooksDeps {
  config: WorkerConfig;
  db: Database;
  logger: Logger;
  metrics: WorkerMetrics;
}

class RedisCloser implements OnApplicationShutdown {
  constructor(@Inject(WEBHOOK_REDIS) private readonly redis: Redis) {}

  onApplicationShutdown(): void {
    this.redis.disconnect();
  }
}

/** Webhook fan-out, delivery and sweep (queue `webhooks`). */
@Module({})
export class WebhooksModule {
  static register(deps: WebhooksDeps): DynamicModule {
    const redis = new Redis(deps.config.REDIS_URL, { maxRetriesPerRequest: 2, lazyConnect: false });
    redis.on('error', (err) => deps.logger.warn({ err: err.message }, 'webhooks redis error'));
    return {
      module: WebhooksModule,
      imports: [BullModule.registerQueue({ name: QUEUES.webhooks })],
      providers: [
        { provide: DATABASE, useValue: deps.db },
        { provide: LOGGER, useValue: deps.logger },
        { provide: METRICS, useValue: deps.metrics },
        { provide: WEBHOOK_REDIS, useValue: redis },
        { provide: WEBHOOK_SECRET_BOX, useValue: SecretBox.fromConfig(deps.config.PAYORCH_MASTER_KEY, deps.config.PAYORCH_PREVIOUS_MASTER_KEYS) },
        { provide: WORKER_CONFIG, useValue: deps.config },
        RedisCloser,
        WebhookDeliveryService,
        WebhookEventListener,
        WebhooksProcessor,
      ],
    };
  }
}
