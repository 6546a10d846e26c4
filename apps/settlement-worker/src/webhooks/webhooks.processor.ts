import { InjectQueue, Processor, WorkerHost } from '@nestjs/bullmq';
import { Inject, type OnModuleInit } from '@nestjs/common';
import { DelayedError, type Job, type Queue, UnrecoverableError } from 'bullmq';
import type { Redis } from 'ioredis';

import type { WorkerConfig } from '@payorch/config';
import { type JobData, type JobName, QUEUES } from '@payorch/domain';
import type { Logger } from '@payorch/logging';
import { InjectRedis } from '@payorch/redis';

import { deferOnDatabaseOutage } from '../database-outage';
import { LOGGER, METRICS, WORKER_CONFIG } from '../tokens';
import type { WorkerMetrics } from '../worker-metrics';
import { WebhookDeliveryService } from './webhook-delivery.service';
import { WEBHOOK_SWEEP_SCHEDULER_ID } from './webhooks.tokens';
import { AFTER_SCHEMA } from '../schema-gate';

export type WebhookJobName = Extract<JobName, `webhook.${string}`>;

type Handlers = { [N in WebhookJobName]: (job: Job<JobData[N]>, token: string | undefined) => Promise<unknown> };

/** How long a redelivery's job waits before it tries again to hand over to a delivery job that is running. */
const HAND_OVER_RETRY_MS = 1_000;

/** A delivery moved back to delayed to wait for a slot of its endpoint or tenant (no attempt made): metrics outcome `deferred`. */
class SlotDeferral extends DelayedError {}

/**
 * The `webhooks` queue. A delivery's retries are the same job moved back to delayed (moveToDelayed +
 * DelayedError) at the time the service computed, so the job id stays the delivery id and the schedule
 * is ours (capped exponential), not BullMQ's uncapped one. A delivery whose endpoint or tenant has no free
 * slot (DeliverySlots) is moved back to delayed the same way, and woken when its turn comes. A redelivery's job
 * (added by the gateway under an id of its own) hands over to the delivery's own job. The repeatable sweep finds
 * events without deliveries and deliveries whose job Redis lost (or that failed), and queues them again.
 */
@Processor(QUEUES.webhooks, AFTER_SCHEMA)
export class WebhooksProcessor extends WorkerHost implements OnModuleInit {
  private readonly handlers: Handlers = {
    'webhook.deliver': async (job, token) => {
      if (job.id !== undefined && job.id !== job.data.deliveryId) {
        // A redelivery's job (its own id): the delivery's own job makes the attempts, so that a delivery has one job id.
        const outcome = await this.service.handOver(job.data, this.queue);
        if (outcome !== 'active') return { handedOver: job.data.deliveryId, outcome };
        // The delivery's job is finishing its previous round: hand over once it has.
        await job.moveToDelayed(Date.now() + HAND_OVER_RETRY_MS, token);
        throw new DelayedError();
      }
      const holder = job.id ?? job.data.deliveryId;
      const step = await this.service.attempt(job.data, holder);
      if (step.kind === 'deferred') {
        await job.moveToDelayed(Date.now() + step.delayMs, token);
        await this.service.waitForSlot(step, holder);
        throw new SlotDeferral();
      }
      if (step.kind !== 'retry') return step;
      await job.moveToDelayed(step.at.getTime(), token);
      throw new DelayedError();
    },
    'webhook.fanout': (job) => this.service.fanout(job.data, this.queue),
    'webhook.sweep': async () => {
      // Two scans, neither kept from running by the other's failure: events without deliveries, deliveries without a job.
      const [events, overdue] = await Promise.allSettled([this.service.sweep(this.queue, this.redis), this.service.requeueOverdue(this.queue)]);
      if (events.status === 'rejected') throw events.reason;
      if (overdue.status === 'rejected') throw overdue.reason;
      return { ...events.value, overdue: overdue.value };
    },
  };

  constructor(
    @Inject(WORKER_CONFIG) private readonly config: WorkerConfig,
    @Inject(LOGGER) private readonly logger: Logger,
    @Inject(METRICS) private readonly metrics: WorkerMetrics,
    // The sweep's position key (GET/SET) on the process's `command` connection.
    @InjectRedis('command') private readonly redis: Redis,
    @InjectQueue(QUEUES.webhooks) private readonly queue: Queue,
    private readonly service: WebhookDeliveryService,
  ) {
    super();
  }

  async onModuleInit(): Promise<void> {
    this.worker.concurrency = this.config.WEBHOOK_CONCURRENCY;
    await this.queue.upsertJobScheduler(
      WEBHOOK_SWEEP_SCHEDULER_ID,
      { every: this.config.WEBHOOK_SWEEP_INTERVAL_MS },
      { name: 'webhook.sweep', data: {}, opts: { removeOnComplete: { count: 100 }, removeOnFail: { count: 100 } } },
    );
  }

  async process(job: Job, token?: string): Promise<unknown> {
    const handler = this.handlers[job.name as WebhookJobName] as ((job: Job, token: string | undefined) => Promise<unknown>) | undefined;
    if (!handler) throw new UnrecoverableError(`no handler for job "${job.name}" on queue ${QUEUES.webhooks}`);
    const end = this.metrics.duration.startTimer({ queue: QUEUES.webhooks, name: job.name });
    try {
      const result = await handler(job, token).catch((error: unknown) => deferOnDatabaseOutage(job, token, error, this.logger));
      this.metrics.jobs.inc({ queue: QUEUES.webhooks, name: job.name, outcome: 'completed' });
      return result;
    } catch (error) {
      if (error instanceof DelayedError) {
        this.metrics.jobs.inc({ queue: QUEUES.webhooks, name: job.name, outcome: error instanceof SlotDeferral ? 'deferred' : 'retry' });
        throw error;
      }
      this.metrics.jobs.inc({ queue: QUEUES.webhooks, name: job.name, outcome: 'failed' });
      this.logger.warn({ jobId: job.id, job: job.name, err: (error as Error).message }, 'webhook job failed');
      throw error;
    } finally {
      end();
    }
  }
}
