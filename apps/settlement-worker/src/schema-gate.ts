import { type BeforeApplicationShutdown, Inject, Injectable, type OnApplicationBootstrap } from '@nestjs/common';
import { DiscoveryService } from '@nestjs/core';

import { SchemaCheck, SchemaGate } from '@payorch/health';
import type { Logger } from '@payorch/logging';

import { LOGGER } from './tokens';
import { workerHosts } from './worker-hosts';

/** The worker's SchemaCheck (libs/db SCHEMA_MIGRATION): shared by the gate below and the `schema` readiness check. */
export const SCHEMA_CHECK = Symbol('SCHEMA_CHECK');

/** Worker options of every @Processor: its BullMQ Worker does not start with the module; WorkerSchemaGate starts it. */
export const AFTER_SCHEMA = { autorun: false } as const;

/**
 * The worker takes no job until the database holds the schema this build was written against: during a rolling update
 * the new worker can start before the migration step has finished, and its jobs (settlements, webhooks, wallet
 * resolutions, campaign steps) ran against the previous schema and failed, some of them for good. Every @Processor is
 * declared AFTER_SCHEMA; this starts their BullMQ Workers once SchemaCheck says the build's migration is applied (at once
 * when it is), and never after shutdown began. A processor declared without AFTER_SCHEMA fails the start, so a new
 * queue cannot skip the gate unnoticed.
 */
@Injectable()
export class WorkerSchemaGate implements OnApplicationBootstrap, BeforeApplicationShutdown {
  private readonly gate: SchemaGate;

  constructor(
    private readonly discovery: DiscoveryService,
    @Inject(SCHEMA_CHECK) private readonly check: SchemaCheck,
    @Inject(LOGGER) private readonly logger: Logger,
  ) {
    this.gate = new SchemaGate(check, {
      onWaiting: (migration) =>
        logger.warn({ migration }, 'the database schema is older than this build: no job is taken until the migration step has applied this migration'),
      onError: (error) => logger.warn({ err: error.message }, 'could not read the database schema version; asking again'),
    });
  }

  onApplicationBootstrap(): void {
    const hosts = workerHosts(this.discovery);
    const early = hosts.filter((host) => host.worker.isRunning()).map((host) => host.constructor.name);
    if (early.length) throw new Error(`BullMQ workers started before the schema check: ${early.join(', ')} (declare their @Processor with AFTER_SCHEMA)`);
    this.gate.start(() => {
      for (const host of hosts) {
        if (host.worker.closing || host.worker.isRunning()) continue;
        host.worker.run().catch((error: Error) => this.logger.error({ err: error.message, queue: host.worker.name }, 'BullMQ worker stopped with an error'));
      }
      this.logger.info({ migration: this.check.migration }, 'database schema in place: taking jobs');
    });
  }

  beforeApplicationShutdown(): void {
    this.gate.close();
  }
}
