import { Inject, Injectable, type OnModuleDestroy } from '@nestjs/common';
import { Queue } from 'bullmq';

import type { GatewayConfig } from '@payorch/config';
import { type JobData, QUEUES } from '@payorch/domain';
import type { Logger } from '@payorch/logging';

import { GATEWAY_CONFIG, LOGGER } from '../common/tokens';

/** Producer of `webhook.deliver` jobs for manual redeliveries (the worker does everything else). */
@Injectable()
export class WebhooksQueue implements OnModuleDestroy {
  private readonly queue: Queue;

  constructor(
    @Inject(GATEWAY_CONFIG) config: GatewayConfig,
    @Inject(LOGGER) private readonly logger: Logger,
  ) {
    this.queue = new Queue(QUEUES.webhooks, {
      connection: { url: config.REDIS_URL, enableOfflineQueue: false, maxRetriesPerRequest: 2 },
      prefix: `${config.REDIS_KEY_PREFIX}:bull`,
    });
    this.queue.on('error', (err) => this.logger.warn({ err: err.message }, 'webhooks queue connection error'));
  }

  /** A fresh job id per redelivery: the delivery's earlier job may still be kept as completed/failed. */
  async enqueueRedelivery(data: JobData['webhook.deliver'], attempt: number): Promise<void> {
    await this.queue.add('webhook.deliver', data, { jobId: `${data.deliveryId}-r${attempt}-${Date.now()}`, removeOnComplete: { count: 1000 }, removeOnFail: { count: 1000 } });
  }

  async onModuleDestroy(): Promise<void> {
    await this.queue.close();
  }
}
