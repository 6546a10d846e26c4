import { InjectQueue } from '@nestjs/bullmq';
import { Inject, Injectable } from '@nestjs/common';
import type { Queue } from 'bullmq';
import type { Redis } from 'ioredis';

import type { GatewayConfig } from '@payorch/config';
import { type JobData, QUEUES } from '@payorch/domain';
import { settlementKeys } from '@payorch/settlement';

import { GATEWAY_CONFIG, REDIS } from '../common/tokens';

/**
 * The gateway's producer side of the `settlement` queue (registered in SettlementsModule on the `command`
 * connection: no offline queue, so an enqueue fails fast while Redis is down), plus the "schedules
 * changed" notification.
 */
@Injectable()
export class SettlementQueue {
  constructor(
    @Inject(GATEWAY_CONFIG) private readonly config: GatewayConfig,
    @Inject(REDIS) private readonly redis: Redis,
    @InjectQueue(QUEUES.settlement) private readonly queue: Queue,
  ) {
    // Connection errors are logged once per connection (bootstrap); enqueue failures reach the caller.
    queue.on('error', () => undefined);
  }

  async run(data: JobData['settlement.run'], jobId: string): Promise<void> {
    await this.queue.add('settlement.run', data, { jobId, removeOnComplete: { count: 1000 }, removeOnFail: false });
  }

  /** Tells the workers to re-sync their job schedulers now (they also sync periodically). */
  async schedulesChanged(scheduleId: string): Promise<void> {
    await this.redis.publish(settlementKeys(this.config.REDIS_KEY_PREFIX).schedulesChanged, scheduleId).catch(() => undefined);
  }
}
