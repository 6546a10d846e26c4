import { WorkerHost } from '@nestjs/bullmq';
import { Inject, Injectable, type OnApplicationBootstrap } from '@nestjs/common';
import { DiscoveryService } from '@nestjs/core';
import { Queue } from 'bullmq';

import { isRedisUnavailable } from '@payorch/command-bus';
import type { Logger } from '@payorch/logging';

import { LOGGER } from './tokens';

/**
 * Every BullMQ Queue and Worker of the app gets an 'error' listener (BullMQ prints errors nobody listens
 * to on the console). All of them share the `bull` connection, so one Redis outage reaches each of them:
 * connection errors are logged once per connection already (RedisConnections' onError) and are skipped
 * here; anything else (a worker's own failure) is logged with its queue.
 */
@Injectable()
export class BullErrorLog implements OnApplicationBootstrap {
  constructor(
    private readonly discovery: DiscoveryService,
    @Inject(LOGGER) private readonly logger: Logger,
  ) {}

  onApplicationBootstrap(): void {
    for (const { instance } of this.discovery.getProviders()) {
      if (instance instanceof Queue) instance.on('error', (error) => this.report('queue', instance.name, error));
      else if (instance instanceof WorkerHost) instance.worker.on('error', (error: Error) => this.report('worker', instance.worker.name, error));
    }
  }

  private report(source: 'queue' | 'worker', queue: string, error: Error): void {
    if (isRedisUnavailable(error)) return;
    this.logger.warn({ err: error.message, queue, source }, 'BullMQ error');
  }
}
