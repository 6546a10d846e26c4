import { InjectQueue } from '@nestjs/bullmq';
import { Injectable } from '@nestjs/common';
import type { Queue } from 'bullmq';

import { type JobData, QUEUES } from '@payorch/domain';

/**
 * Producer of `webhook.deliver` jobs for manual redeliveries (the worker does everything else); the queue
 * is registered in WebhooksModule on the fail-fast `command` connection.
 */
@Injectable()
export class WebhooksQueue {
  constructor(@InjectQueue(QUEUES.webhooks) private readonly queue: Queue) {
    // Connection errors are logged once per connection (bootstrap); enqueue failures reach the caller.
    queue.on('error', () => undefined);
  }

  /** A fresh job id per redelivery: the delivery's earlier job may still be kept as completed/failed. */
  async enqueueRedelivery(data: JobData['webhook.deliver'], attempt: number): Promise<void> {
    await this.queue.add('webhook.deliver', data, {
      jobId: `${data.deliveryId}-r${attempt}-${Date.now()}`,
      removeOnComplete: { count: 1000 },
      removeOnFail: { count: 1000 },
    });
  }
}
