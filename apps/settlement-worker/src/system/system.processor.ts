import { hostname } from 'node:os';

import { Processor, WorkerHost } from '@nestjs/bullmq';
import { Inject, type OnModuleInit } from '@nestjs/common';
import { type Job, UnrecoverableError } from 'bullmq';

import type { WorkerConfig } from '@payorch/config';
import { type JobData, type JobName, QUEUES } from '@payorch/domain';
import type { Logger } from '@payorch/logging';

import { LOGGER, METRICS, WORKER_CONFIG } from '../tokens';
import type { WorkerMetrics } from '../worker-metrics';
import { AFTER_SCHEMA } from '../schema-gate';

export type SystemJobName = Extract<JobName, `system.${string}`>;

/** Handlers of the system queue, one per job name; the Record type makes a missing one a compile error. */
type Handlers = { [N in SystemJobName]: (job: Job<JobData[N]>) => Promise<unknown> };

@Processor(QUEUES.system, AFTER_SCHEMA)
export class SystemProcessor extends WorkerHost implements OnModuleInit {
  private readonly handlers: Handlers = {
    'system.ping': async (job) => ({ pong: true, requestId: job.data.requestId, worker: `${hostname()}:${process.pid}`, ranAt: new Date().toISOString() }),
  };

  constructor(
    @Inject(WORKER_CONFIG) private readonly config: WorkerConfig,
    @Inject(LOGGER) private readonly logger: Logger,
    @Inject(METRICS) private readonly metrics: WorkerMetrics,
  ) {
    super();
  }

  onModuleInit(): void {
    // Concurrency comes from config at runtime, not from the decorator at import time.
    this.worker.concurrency = this.config.WORKER_CONCURRENCY;
  }

  async process(job: Job): Promise<unknown> {
    const handler = this.handlers[job.name as SystemJobName] as ((job: Job) => Promise<unknown>) | undefined;
    if (!handler) throw new UnrecoverableError(`no handler for job "${job.name}" on queue ${QUEUES.system}`);
    const end = this.metrics.duration.startTimer({ queue: QUEUES.system, name: job.name });
    try {
      const result = await handler(job);
      this.metrics.jobs.inc({ queue: QUEUES.system, name: job.name, outcome: 'completed' });
      this.logger.info({ jobId: job.id, job: job.name }, 'job completed');
      return result;
    } catch (error) {
      this.metrics.jobs.inc({ queue: QUEUES.system, name: job.name, outcome: 'failed' });
      throw error;
    } finally {
      end();
    }
  }
}
