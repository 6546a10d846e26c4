import { InjectQueue } from '@nestjs/bullmq';
import { Inject, Injectable, type OnApplicationBootstrap, type OnApplicationShutdown } from '@nestjs/common';
import type { Queue } from 'bullmq';
import type { Redis } from 'ioredis';

import type { WorkerConfig } from '@payorch/config';
import { QUEUES } from '@payorch/domain';
import type { Logger } from '@payorch/logging';
import { InjectRedis } from '@payorch/redis';

import { ScheduleSyncService } from '../settlement/schedule-sync.service';
import { LOGGER, WORKER_CONFIG } from '../tokens';
import { type OwnScheduler, ownSchedulers, type ReconciledQueue } from './own-schedulers';

export interface ReconcileResult {
  /** Own schedulers (sweeps, schedule sync) that were missing and were created again. */
  recreated: string[];
  /** Settlement schedules upserted / removed to match PostgreSQL. */
  upserted: number;
  removed: number;
}

/**
 * Redis is a cache: the worker's job schedulers are made to match what they should be, not trusted to
 * survive (docs/runbooks/faults.md, "Redis restarts"). At start-up, after every Redis reconnect (the
 * `ready` that follows a `close`), every SCHEDULE_RECONCILE_INTERVAL_MS, and when readiness finds one
 * missing, it re-creates missing own schedulers and syncs settlement schedules from PostgreSQL
 * (ScheduleSyncService). Everything goes through upsertJobScheduler, so a run is idempotent; runs
 * never overlap (a request during a run is folded into one more run).
 */
@Injectable()
export class SchedulerReconciler implements OnApplicationBootstrap, OnApplicationShutdown {
  private readonly queues: Record<ReconciledQueue, Queue>;
  private readonly own: OwnScheduler[];
  private timer: NodeJS.Timeout | undefined;
  private running: Promise<ReconcileResult | null> | undefined;
  private again = false;
  private lastRun: { at: Date; error: string | null } | null = null;
  private detach: (() => void) | undefined;

  constructor(
    @Inject(WORKER_CONFIG) private readonly config: WorkerConfig,
    @Inject(LOGGER) private readonly logger: Logger,
    private readonly schedules: ScheduleSyncService,
    @InjectQueue(QUEUES.settlement) settlement: Queue,
    @InjectQueue(QUEUES.operationsRecovery) recovery: Queue,
    @InjectQueue(QUEUES.webhooks) webhooks: Queue,
    @InjectQueue(QUEUES.walletPayments) wallet: Queue,
    @InjectQueue(QUEUES.campaigns) campaigns: Queue,
    // The connection every queue of the worker is on (BullModule.forRootAsync).
    @InjectRedis('bull') private readonly bull: Redis,
  ) {
    this.queues = {
      [QUEUES.settlement]: settlement,
      [QUEUES.operationsRecovery]: recovery,
      [QUEUES.webhooks]: webhooks,
      [QUEUES.walletPayments]: wallet,
      [QUEUES.campaigns]: campaigns,
    };
    this.own = ownSchedulers(config);
  }

  async onApplicationBootstrap(): Promise<void> {
    await this.reconcile();
    this.timer = setInterval(() => void this.reconcile(), this.config.SCHEDULE_RECONCILE_INTERVAL_MS);
    this.timer.unref();
    // After Redis comes back (possibly empty), reconcile at once instead of at the next tick.
    const client = this.bull;
    let dropped = false;
    const onClose = () => (dropped = true);
    const onReady = () => {
      if (!dropped) return;
      dropped = false;
      this.logger.info('redis reconnected: reconciling job schedulers');
      void this.reconcile();
    };
    client.on('close', onClose);
    client.on('end', onClose);
    client.on('ready', onReady);
    this.detach = () => {
      client.off('close', onClose);
      client.off('end', onClose);
      client.off('ready', onReady);
    };
  }

  async onApplicationShutdown(): Promise<void> {
    if (this.timer) clearInterval(this.timer);
    this.detach?.();
    await this.running;
  }

  /** Own schedulers missing from Redis (readiness), by id. */
  async missing(): Promise<string[]> {
    const found = await Promise.all(this.own.map(async (s) => ((await this.queues[s.queue].getJobScheduler(s.id)) ? null : s.id)));
    return found.filter((id): id is string => id !== null);
  }

  get last(): { at: Date; error: string | null } | null {
    return this.lastRun;
  }

  /** One reconcile run (joined when one is already running, then run once more); never throws. */
  reconcile(): Promise<ReconcileResult | null> {
    if (this.running) {
      this.again = true;
      return this.running;
    }
    this.running = this.run().finally(() => {
      this.running = undefined;
      if (this.again) {
        this.again = false;
        void this.reconcile();
      }
    });
    return this.running;
  }

  private async run(): Promise<ReconcileResult | null> {
    try {
      const recreated: string[] = [];
      for (const s of this.own) {
        const queue = this.queues[s.queue];
        if (await queue.getJobScheduler(s.id)) continue;
        await queue.upsertJobScheduler(s.id, s.repeat, s.template);
        recreated.push(s.id);
      }
      const { upserted, removed } = await this.schedules.sync();
      this.lastRun = { at: new Date(), error: null };
      if (recreated.length) this.logger.warn({ recreated, upserted, removed }, 'job schedulers were missing from Redis and were recreated');
      else if (upserted || removed) this.logger.info({ upserted, removed }, 'job schedulers reconciled');
      return { recreated, upserted, removed };
    } catch (error) {
      this.lastRun = { at: new Date(), error: (error as Error).message };
      this.logger.warn({ err: (error as Error).message }, 'job scheduler reconcile failed; retrying at the next reconnect or tick');
      return null;
    }
  }
}
