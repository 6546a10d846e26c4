import { type BeforeApplicationShutdown, Injectable } from '@nestjs/common';
import { DiscoveryService } from '@nestjs/core';

import { workerHosts } from './worker-hosts';

/**
 * Graceful shutdown, first step: every BullMQ Worker stops taking jobs and finishes its active ones while the
 * queues, the command bus, the database and Redis are all still open. @nestjs/bullmq closes queues before
 * workers; a job still running then (a webhook fan-out adding its deliveries, a campaign wave adding steps)
 * would wait on a closed queue inside its transaction until the transaction timed out (15 s measured).
 * Closing the workers here, in beforeApplicationShutdown, makes their later close a no-op.
 */
@Injectable()
export class WorkerDrain implements BeforeApplicationShutdown {
  constructor(private readonly discovery: DiscoveryService) {}

  async beforeApplicationShutdown(): Promise<void> {
    await Promise.allSettled(workerHosts(this.discovery).map((host) => host.worker.close()));
  }
}
