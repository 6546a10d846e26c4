import { Inject, Injectable, type OnApplicationShutdown } from '@nestjs/common';
import { Queue } from 'bullmq';
import type { Redis } from 'ioredis';

import type { GatewayConfig } from '@payorch/config';
import { type JobData, QUEUES } from '@payorch/domain';
import { settlementKeys } from '@payorch/settlement';

import { GATEWAY_CONFIG, REDIS } from '../common/tokens';

/** The gateway's producer side of the `settlement` queue, plus the "schedules changed" notification. */
@Injectable()
export class SettlementQueue implements OnApplicationShutdown {
  private readonly queue: Queue;

  constructor(
    @Inject(GATEWAY_CONFIG) private readonly config: GatewayConfig,
    @Inject(REDIS) private readonly redis: Redis,
  ) {
    // Producer: fail fast when Redis is down instead of queueing commands in memory.
    this.queue = new Queue(QUEUES.settlement, {
      connection: { url: config.REDIS_URL, enableOfflineQueue: false, maxRetriesPerRequest: 2 },
      prefix: `${config.REDIS_KEY_PREFIX}:bull`,
    });
    this.queue.on('error', () => undefined);
  }

  async run(data: JobData['settlement.run'], jobId: string): Promise<void> {
    await this.queue.add('settlement.run', data, { jobId, removeOnComplete: { count: 1000 }, removeOnFail: false });
  }

  /** Tells the workers to re-sync their job schedulers now (they also sync periodically). */
  async schedulesChanged(scheduleId: string): Promise<void> {
    await this.redis.publish(settlementKeys(this.config.REDIS_KEY_PREFIX).schedulesChanged, scheduleId).catch(() => undefined);
  }

  async onApplicationShutdown(): Promise<void> {
    await this.queue.close();
  }
}
