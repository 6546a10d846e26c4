import { InjectQueue, Processor, WorkerHost } from '@nestjs/bullmq';
import { Inject, type OnModuleInit } from '@nestjs/common';
import { DelayedError, type Job, type Queue, UnrecoverableError, WaitingChildrenError } from 'bullmq';

import { CAMPAIGN_JOB_NAMES, CAMPAIGN_QUEUE, CAMPAIGN_SWEEP_START_JOB_ID, type CampaignJobData, type CampaignJobName } from '@payorch/campaigns';
import type { WorkerConfig } from '@payorch/config';
import type { Logger } from '@payorch/logging';

import { deferOnDatabaseOutage } from '../database-outage';
import { LOGGER, WORKER_CONFIG } from '../tokens';
import { SHORT_LOCK } from '../worker-lock';
import { CampaignRunner } from './campaign-runner';
import { CampaignSweep, campaignSweepScheduler } from './campaign-sweep';
import { CAMPAIGN_RUNNER, CAMPAIGN_SWEEP } from './campaigns.tokens';
import { AFTER_SCHEMA } from '../schema-gate';

type Handlers = { [N in CampaignJobName]: (job: Job<CampaignJobData[N]>, token?: string) => Promise<unknown> };

/**
 * The `campaigns` queue (docs/campaigns.md): `campaign.run` (parent) ← `campaign.wave` ← `campaign.step`, a
 * BullMQ flow, and `campaign.wake` (after a resume or a cancel). Waiting (a window, a retry time, a concurrency
 * slot, a pause) is a move to the delayed set, never a sleep inside the job; a job waiting for a slot or a
 * resume parks there until woken. A step holds its worker slot at most CampaignTiming.followMs while its
 * terminal runs the operation, then follows the operation's row from the delayed set — well within
 * SHORT_LOCK's 10 s lock. `campaign.sweep` (repeatable, and once at each start) adds again the jobs Redis lost.
 * Failures: an outage spends no attempt (deferOnDatabaseOutage); a step's last attempt ends its open target
 * (STEP_FAILED) or keeps following its running one instead of failing (CampaignRunner.outOfAttempts); a run or wave
 * job that failed (one attempt) is retried by the sweep while its campaign is open, and removed by it (with the rest
 * of the campaign's flow) once the campaign ended.
 */
@Processor(CAMPAIGN_QUEUE, { ...SHORT_LOCK, ...AFTER_SCHEMA })
export class CampaignsProcessor extends WorkerHost implements OnModuleInit {
  private readonly handlers: Handlers = {
    'campaign.run': (job, token) => this.runner.run(job, token),
    'campaign.wave': (job, token) => this.runner.wave(job, token),
    'campaign.step': (job, token) => this.runner.step(job, token),
    'campaign.wake': (job) => this.runner.wake(job),
    'campaign.sweep': () => this.sweep.sweep(),
  };

  constructor(
    @Inject(WORKER_CONFIG) private readonly config: WorkerConfig,
    @Inject(LOGGER) private readonly logger: Logger,
    @Inject(CAMPAIGN_RUNNER) private readonly runner: CampaignRunner,
    @Inject(CAMPAIGN_SWEEP) private readonly sweep: CampaignSweep,
    @InjectQueue(CAMPAIGN_QUEUE) private readonly queue: Queue,
  ) {
    super();
    const missing = CAMPAIGN_JOB_NAMES.filter((name) => !(name in this.handlers));
    if (missing.length > 0) throw new Error(`campaign jobs without a handler: ${missing.join(', ')}`);
  }

  async onModuleInit(): Promise<void> {
    this.worker.concurrency = this.config.WORKER_CONCURRENCY;
    // Repeatable sweep; upsert keeps a single scheduler however many workers start.
    const sweep = campaignSweepScheduler(this.config);
    await this.queue.upsertJobScheduler(sweep.id, sweep.repeat, sweep.template);
    // And one now: a worker started on an empty Redis (restarted without persistence) rebuilds the campaigns at once.
    await this.queue.add('campaign.sweep', {}, { jobId: CAMPAIGN_SWEEP_START_JOB_ID, removeOnComplete: true, removeOnFail: true });
  }

  async process(job: Job, token?: string): Promise<unknown> {
    const handler = this.handlers[job.name as CampaignJobName] as ((job: Job, token?: string) => Promise<unknown>) | undefined;
    if (!handler) throw new UnrecoverableError(`no handler for job "${job.name}" on queue ${CAMPAIGN_QUEUE}`);
    try {
      return await handler(job, token).catch((error: unknown) => deferOnDatabaseOutage(job, token, error, this.logger));
    } catch (error) {
      if (error instanceof DelayedError || error instanceof WaitingChildrenError) throw error;
      this.logger.warn({ jobId: job.id, job: job.name, err: (error as Error).message }, 'campaign job failed');
      throw error;
    }
  }
}
