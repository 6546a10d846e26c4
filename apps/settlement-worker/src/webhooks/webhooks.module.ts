import { BullModule } from '@nestjs/bullmq';
import { Module } from '@nestjs/common';

import type { WorkerConfig } from '@payorch/config';
import { QUEUES, SecretBox } from '@payorch/domain';

import { WORKER_CONFIG } from '../tokens';
import { WebhookEventListener } from './event-listener';
import { WebhookDeliveryService } from './webhook-delivery.service';
import { WebhooksProcessor } from './webhooks.processor';
import { WEBHOOK_SECRET_BOX } from './webhooks.tokens';

/** Webhook fan-out, delivery and sweep (queue `webhooks`; exported for the scheduler reconciler). */
@Module({
  exports: [BullModule],
  imports: [BullModule.registerQueue({ name: QUEUES.webhooks })],
  providers: [
    {
      provide: WEBHOOK_SECRET_BOX,
      inject: [WORKER_CONFIG],
      useFactory: (config: WorkerConfig) => SecretBox.fromConfig(config.PAYORCH_MASTER_KEY, config.PAYORCH_PREVIOUS_MASTER_KEYS),
    },
    WebhookDeliveryService,
    WebhookEventListener,
    WebhooksProcessor,
  ],
})
export class WebhooksModule {}
