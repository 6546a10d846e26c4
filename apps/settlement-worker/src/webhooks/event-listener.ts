import { InjectQueue } from '@nestjs/bullmq';
import { Inject, Injectable, type OnApplicationShutdown, type OnModuleInit } from '@nestjs/common';
import type { Queue } from 'bullmq';
import type { Redis } from 'ioredis';

import type { WorkerConfig } from '@payorch/config';
import { isUuid, QUEUES } from '@payorch/domain';
import type { Logger } from '@payorch/logging';
import { InjectRedis } from '@payorch/redis';

import { LOGGER, WORKER_CONFIG } from '../tokens';

/**
 * Turns committed domain events published on `${prefix}:events:<tenantId>` (pattern subscription) into
 * `webhook.fanout` jobs with jobId = event id, so several workers (or a repeated message) enqueue one
 * job. Pub/sub is at-most-once: what it misses while this worker is down, the sweep finds.
 */
@Injectable()
export class WebhookEventListener implements OnModuleInit, OnApplicationShutdown {
  private readonly pattern: string;
  private readonly onPatternMessage = (pattern: string, channel: string, message: string) => {
    if (pattern === this.pattern) void this.onMessage(channel, message);
  };

  constructor(
    @Inject(WORKER_CONFIG) config: WorkerConfig,
    @Inject(LOGGER) private readonly logger: Logger,
    @InjectQueue(QUEUES.webhooks) private readonly queue: Queue,
    // The process's shared pub/sub connection (re-subscribes on reconnect); closed by RedisModule.
    @InjectRedis('subscriber') private readonly subscriber: Redis,
  ) {
    this.pattern = `${config.REDIS_KEY_PREFIX}:events:*`;
  }

  async onModuleInit(): Promise<void> {
    this.subscriber.on('pmessage', this.onPatternMessage);
    await this.subscriber.psubscribe(this.pattern);
  }

  onApplicationShutdown(): void {
    this.subscriber.off('pmessage', this.onPatternMessage);
    // Not awaited: queued while Redis is away, and rejected when RedisModule closes the connection.
    this.subscriber.punsubscribe(this.pattern).catch(() => undefined);
  }

  private async onMessage(channel: string, message: string): Promise<void> {
    const tenantId = channel.slice(channel.lastIndexOf(':') + 1);
    let event: { id?: unknown; tenantId?: unknown };
    try {
      event = JSON.parse(message) as typeof event;
    } catch {
      return;
    }
    if (!isUuid(tenantId) || event.tenantId !== tenantId || typeof event.id !== 'string' || !isUuid(event.id)) return;
    try {
      await this.queue.add(
        'webhook.fanout',
        { tenantId, eventId: event.id },
        { jobId: event.id, attempts: 5, backoff: { type: 'exponential', delay: 1000 }, removeOnComplete: { count: 1000 } },
      );
    } catch (error) {
      this.logger.warn({ eventId: event.id, err: (error as Error).message }, 'could not enqueue webhook fan-out; the sweep will');
    }
  }
}
