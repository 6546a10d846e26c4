import { InjectQueue, Processor, WorkerHost } from '@nestjs/bullmq';
import { Inject, type OnModuleInit } from '@nestjs/common';
import { DelayedError, type Job, type Queue, UnrecoverableError } from 'bullmq';

import type { WorkerConfig } from '@payorch/config';
import { type JobData, type JobName, QUEUES } from '@payorch/domain';
import type { Logger } from '@payorch/logging';
import { SWEEP_JOB, SWEEP_SCHEDULER_ID } from '@payorch/wallet-payments';

import { deferOnDatabaseOutage } from '../database-outage';
import { LOGGER, METRICS, WORKER_CONFIG } from '../tokens';
import type { WorkerMetrics } from '../worker-metrics';
import { PermanentResolveError, StillPendingError, WalletResolutionService } from './wallet-resolution.service';
import { AFTER_SCHEMA } from '../schema-gate';

export type WalletJobName = Extract<JobName, `wallet_payment.${string}`>;

/** One handler per job name of the queue; the mapped type makes a missing one a compile error. */
type Handlers = { [N in WalletJobName]: (job: Job<JobData[N]>) => Promise<unknown> };

@Processor(QUEUES.walletPayments, AFTER_SCHEMA)
export class WalletPaymentsProcessor extends WorkerHost implements OnModuleInit {
  private readonly handlers: Handlers = {
    'wallet_payment.resolve': (job) => this.resolution.resolve(job.data),
    'wallet_payment.sweep': () => this.resolution.sweep(this.queue),
  };

  constructor(
    @Inject(WORKER_CONFIG) private readonly config: WorkerConfig,
    @Inject(LOGGER) private readonly logger: Logger,
    @Inject(METRICS) private readonly metrics: WorkerMetrics,
    @InjectQueue(QUEUES.walletPayments) private readonly queue: Queue,
    private readonly resolution: WalletResolutionService,
  ) {
    super();
  }

  async onModuleInit(): Promise<void> {
    this.worker.concurrency = this.config.WORKER_CONCURRENCY;
    // Repeatable sweep; upsert keeps a single scheduler however many workers start.
    await this.queue.upsertJobScheduler(
      SWEEP_SCHEDULER_ID,
      { every: this.config.WALLET_SWEEP_INTERVAL_MS },
      { name: SWEEP_JOB, data: {}, opts: { removeOnComplete: { count: 100 }, removeOnFail: { count: 100 } } },
    );
  }

  async process(job: Job, token?: string): Promise<unknown> {
    const handler = this.handlers[job.name as WalletJobName] as ((job: Job) => Promise<unknown>) | undefined;
    if (!handler) throw new UnrecoverableError(`no handler for job "${job.name}" on queue ${QUEUES.walletPayments}`);
    const end = this.metrics.duration.startTimer({ queue: QUEUES.walletPayments, name: job.name });
    try {
      const result = await handler(job).catch((error: unknown) => deferOnDatabaseOutage(job, token, error, this.logger));
      this.metrics.jobs.inc({ queue: QUEUES.walletPayments, name: job.name, outcome: 'completed' });
      return result;
    } catch (error) {
      if (error instanceof DelayedError) {
        this.metrics.jobs.inc({ queue: QUEUES.walletPayments, name: job.name, outcome: 'retry' });
        throw error;
      }
      if (error instanceof StillPendingError) {
        this.metrics.jobs.inc({ queue: QUEUES.walletPayments, name: job.name, outcome: 'pending' });
        throw error;
      }
      this.metrics.jobs.inc({ queue: QUEUES.walletPayments, name: job.name, outcome: 'failed' });
      this.logger.warn({ jobId: job.id, job: job.name, err: (error as Error).message }, 'wallet payment job failed');
      if (error instanceof PermanentResolveError) throw new UnrecoverableError(error.message);
      throw error;
    } finally {
      end();
    }
  }
}
