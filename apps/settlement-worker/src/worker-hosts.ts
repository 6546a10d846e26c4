import { WorkerHost } from '@nestjs/bullmq';
import type { DiscoveryService } from '@nestjs/core';

/** Every @Processor of the app (its BullMQ Worker is `host.worker`): the schema gate starts them, the drain closes them. */
export function workerHosts(discovery: DiscoveryService): WorkerHost[] {
  return discovery
    .getProviders()
    .map(({ instance }) => instance)
    .filter((instance): instance is WorkerHost => instance instanceof WorkerHost);
}
