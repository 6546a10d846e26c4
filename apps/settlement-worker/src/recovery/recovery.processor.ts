import { InjectQueue, Processor, WorkerHost } from '@nestjs/bullmq';
import { Inject, type OnModuleInit } from '@nestjs/common';
import { type Job, type Queue, UnrecoverableError } from 'bullmq';

import type { WorkerConfig } from '@payorch/config';
import { type JobData, type JobName, QUEUES } from '@payorch/domain';
import type { Logger } from '@payorch/logging';

import { LOGGER, METRICS, WORKER_CONFIG } from '../tokens';
import type { WorkerMetrics } from '../worker-metrics';
import { RecoveryService } from './recovery.service';
import { RECOVERY_SWEEP_SCHEDULER_ID } from './recovery.tokens';
import { AFTER_SCHEMA } from '../schema-gate';

export type RecoveryJobName = Extract<JobName, `operation.${string}`>;

type Handlers = { [N in RecoveryJobName]: (job: Job<JobData[N]>) => Promise<unknown> };

@Processor(QUEUES.operationsRecovery, AFTER_SCHEMA)
export class RecoveryProcessor extends WorkerHost implements OnModuleInit {
  private readonly handlers: Handlers = {
    'operation.recover': (job) => this.service.recover(job.data),
    'operation.recovery_sweep': () => this.service.sweep(this.queue),
  };

  constructor(
    @Inject(WORKER_CONFIG) private readonly config: WorkerConfig,
    @Inject(LOGGER) private readonly logger: Logger,
    @Inject(METRICS) private readonly metrics: WorkerMetrics,
    @InjectQueue(QUEUES.operationsRecovery) private readonly queue: Queue,
    private readonly service: RecoveryService,
  ) {
    super();
  }

  async onModuleInit(): Promise<void> {
    this.worker.concurrency = this.config.WORKER_CONCURRENCY;
    await this.queue.upsertJobScheduler(
      RECOVERY_SWEEP_SCHEDULER_ID,
      { every: this.config.RECOVERY_INTERVAL_MS },
      { name: 'operation.recovery_sweep', data: {}, opts: { removeOnComplete: { count: 100 }, removeOnFail: { count: 100 } } },
    );
  }

  async process(job: Job): Promise<unknown> {
    const handler = this.handlers[job.name as RecoveryJobName] as ((job: Job) => Promise<unknown>) | undefined;
    if (!handler) throw new UnrecoverableError(`no handler for job "${job.name}" on queue ${QUEUES.operationsRecovery}`);
    const end = this.metrics.duration.startTimer({ queue: QUEUES.operationsRecovery, name: job.name });
    try {
      const result = await handler(job);
      this.metrics.jobs.inc({ queue: QUEUES.operationsRecovery, name: job.name, outcome: 'completed' });
      return result;
    } catch (error) {
      this.metrics.jobs.inc({ queue: QUEUES.operationsRecovery, name: job.name, outcome: 'failed' });
      this.logger.warn({ jobId: job.id, job: job.name, err: (error as Error).message }, 'recovery job failed');
      throw error;
    } finally {
      end();
    }
  }
}
