import { InjectQueue, Processor, WorkerHost } from '@nestjs/bullmq';
import { Inject, type OnApplicationShutdown, type OnModuleInit } from '@nestjs/common';
import { type Job, type Queue, UnrecoverableError } from 'bullmq';
import type { Redis } from 'ioredis';

import type { WorkerConfig } from '@payorch/config';
import { type JobData, type JobName, QUEUES } from '@payorch/domain';
import type { Logger } from '@payorch/logging';
import { InjectRedis } from '@payorch/redis';
import { settlementKeys } from '@payorch/settlement';

import { deferOnDatabaseOutage } from '../database-outage';
import { LOGGER, WORKER_CONFIG } from '../tokens';
import { SHORT_LOCK } from '../worker-lock';
import { ScheduleSyncService } from './schedule-sync.service';
import { SettlementSweepService, settlementSweepScheduler } from './settlement-sweep.service';
import { SettlementService } from './settlement.service';
import { AFTER_SCHEMA } from '../schema-gate';

export type SettlementJobName = Extract<JobName, `settlement.${string}`>;
type Handlers = { [N in SettlementJobName]: (job: Job<JobData[N]>, token?: string) => Promise<unknown> };

export const SYNC_SCHEDULER_ID = 'settlement-sync';
const SYNC_NOW_JOB_ID = 'settlement-sync-now';

/**
 * The `settlement` queue: scheduled and manual close-days (`settlement.run`), schedule firings
 * (`settlement.fire`), the schedule sync (`settlement.sync`, repeatable + on the gateway's
 * notification so API changes apply without a restart) and the repeatable sweep that re-queues the run of a
 * settlement whose job was lost and starts the scheduled runs lost before their first attempt (`settlement.sweep`). SHORT_LOCK: a worker killed mid close-day hands the
 * job over within ~15 s; the step-resumable job then recovers the sent close-day instead of sending another.
 */
@Processor(QUEUES.settlement, { ...SHORT_LOCK, ...AFTER_SCHEMA })
export class SettlementProcessor extends WorkerHost implements OnModuleInit, OnApplicationShutdown {
  private readonly handlers: Handlers = {
    'settlement.run': (job, token) => this.settlements.run(job, token),
    'settlement.fire': (job) => this.schedules.fire(job.data, new Date(job.opts.prevMillis ?? job.timestamp)),
    'settlement.sweep': () => this.sweep.sweep(),
    'settlement.sync': () => this.schedules.sync(),
  };
  private readonly channel: string;
  private readonly onMessage = (channel: string) => {
    if (channel === this.channel) void this.requestSync();
  };

  constructor(
    @Inject(WORKER_CONFIG) private readonly config: WorkerConfig,
    @Inject(LOGGER) private readonly logger: Logger,
    // The process's shared pub/sub connection (the webhook event listener uses it too); closed by RedisModule.
    @InjectRedis('subscriber') private readonly subscriber: Redis,
    @InjectQueue(QUEUES.settlement) private readonly queue: Queue,
    private readonly settlements: SettlementService,
    private readonly schedules: ScheduleSyncService,
    private readonly sweep: SettlementSweepService,
  ) {
    super();
    this.channel = settlementKeys(config.REDIS_KEY_PREFIX).schedulesChanged;
  }

  async onModuleInit(): Promise<void> {
    this.worker.concurrency = this.config.SETTLEMENT_CONCURRENCY;
    await this.queue.upsertJobScheduler(
      SYNC_SCHEDULER_ID,
      { every: this.config.SETTLEMENT_SYNC_INTERVAL_MS },
      { name: 'settlement.sync', data: {}, opts: { removeOnComplete: true, removeOnFail: { count: 100 } } },
    );
    // Repeatable sweep; upsert keeps a single scheduler however many workers start.
    const sweep = settlementSweepScheduler(this.config);
    await this.queue.upsertJobScheduler(sweep.id, sweep.repeat, sweep.template);
    this.subscriber.on('message', this.onMessage);
    await this.subscriber.subscribe(this.channel);
    await this.requestSync();
  }

  onApplicationShutdown(): void {
    this.subscriber.off('message', this.onMessage);
    // Not awaited: queued while Redis is away, and rejected when RedisModule closes the connection.
    this.subscriber.unsubscribe(this.channel).catch(() => undefined);
  }

  /** One pending sync at a time: a burst of notifications collapses into a single job. */
  private async requestSync(): Promise<void> {
    await this.queue
      .add('settlement.sync', {}, { jobId: SYNC_NOW_JOB_ID, removeOnComplete: true, removeOnFail: true })
      .catch((error: unknown) => this.logger.warn({ err: (error as Error).message }, 'could not enqueue a schedule sync'));
  }

  async process(job: Job, token?: string): Promise<unknown> {
    const handler = this.handlers[job.name as SettlementJobName] as ((job: Job, token?: string) => Promise<unknown>) | undefined;
    if (!handler) throw new UnrecoverableError(`no handler for job "${job.name}" on queue ${QUEUES.settlement}`);
    return handler(job, token).catch((error: unknown) => deferOnDatabaseOutage(job, token, error, this.logger));
  }
}
