import { BullModule, getQueueToken } from '@nestjs/bullmq';
import { Module } from '@nestjs/common';
import type { Queue } from 'bullmq';
import type { Redis } from 'ioredis';

import type { WorkerConfig } from '@payorch/config';
import { QUEUES } from '@payorch/domain';
import { redisToken } from '@payorch/redis';

import { WORKER_CONFIG } from '../tokens';
import { wakeJob } from '../wake-jobs';
import { DeliverySlots } from './delivery-slots';
import { WebhookEventListener } from './event-listener';
import { WebhookDeliveryService } from './webhook-delivery.service';
import { WebhooksProcessor } from './webhooks.processor';
import { WEBHOOK_DELIVERY_SLOTS } from './webhooks.tokens';

/** Longer than any attempt (its deadline covers DNS to the answer's headers): a worker that died frees its slots then. */
const SLOT_LEASE_SLACK_MS = 10_000;

/** Webhook fan-out, delivery and sweep (queue `webhooks`; exported for the scheduler reconciler). */
@Module({
  exports: [BullModule],
  imports: [BullModule.registerQueue({ name: QUEUES.webhooks })],
  providers: [
    {
      provide: WEBHOOK_DELIVERY_SLOTS,
      inject: [redisToken('command'), WORKER_CONFIG, getQueueToken(QUEUES.webhooks)],
      useFactory: (redis: Redis, config: WorkerConfig, queue: Queue) =>
        new DeliverySlots(
          redis,
          config.REDIS_KEY_PREFIX,
          {
            endpoint: config.WEBHOOK_ENDPOINT_CONCURRENCY,
            tenant: config.WEBHOOK_TENANT_CONCURRENCY,
            leaseMs: config.WEBHOOK_TIMEOUT_MS + SLOT_LEASE_SLACK_MS,
          },
          // Promotes a deferred delivery whose turn came; one no longer delayed (back on its own, or gone) is passed over.
          (jobId) => wakeJob(queue, jobId),
        ),
    },
    WebhookDeliveryService,
    WebhookEventListener,
    WebhooksProcessor,
  ],
})
export class WebhooksModule {}
