import { BullModule, getFlowProducerToken, getQueueToken } from '@nestjs/bullmq';
import { type DynamicModule, Module } from '@nestjs/common';
import type { FlowProducer, Queue } from 'bullmq';
import type { Redis } from 'ioredis';
import { Counter } from 'prom-client';

import { CAMPAIGN_QUEUE } from '@payorch/campaigns';
import type { WorkerConfig } from '@payorch/config';
import type { Database } from '@payorch/db';
import type { Logger, Registry } from '@payorch/logging';
import { TERMINAL_COMMAND_DISPATCHER, type TerminalCommandDispatcher } from '@payorch/operations';
import { redisToken } from '@payorch/redis';

import { REGISTRY } from '../health/health.controller';
import { DATABASE, LOGGER, WORKER_CONFIG } from '../tokens';
import { CampaignRunner, type CampaignTiming, DEFAULT_TIMING } from './campaign-runner';
import { CampaignSweep } from './campaign-sweep';
import { CampaignsProcessor } from './campaigns.processor';
import { CAMPAIGN_RUNNER, CAMPAIGN_SWEEP } from './campaigns.tokens';
import { ParkedSteps } from './parked-steps';

/**
 * Fleet campaigns (queue `campaigns` and its flow producer). Each terminal step goes over the worker's command bus;
 * the steps waiting for a slot are listed on the `command` connection (ParkedSteps) and woken through the queue. The
 * sweep (CampaignSweep) adds again, from the rows, the jobs Redis lost, retries the jobs that failed (a step's only with its target open) and
 * removes the flow of an ended campaign one of whose jobs failed.
 */
@Module({})
export class CampaignsModule {
  static register(deps: { timing?: Partial<CampaignTiming> } = {}): DynamicModule {
    const timing: CampaignTiming = { ...DEFAULT_TIMING, ...deps.timing };
    return {
      module: CampaignsModule,
      exports: [BullModule],
      imports: [
        BullModule.registerQueue({ name: CAMPAIGN_QUEUE }),
        // The flow producer is on the process's shared `bull` connection, which is not its to close: RedisConnections
        // ends it (QUIT) after every module has shut down. @nestjs/bullmq's default for flow producers (not queues) is a
        // disconnect at the flow producer's own shutdown, which cut it under the modules still shutting down.
        BullModule.registerFlowProducer({ name: CAMPAIGN_QUEUE, forceDisconnectOnShutdown: false }),
      ],
      providers: [
        {
          provide: CAMPAIGN_RUNNER,
          inject: [
            DATABASE,
            TERMINAL_COMMAND_DISPATCHER,
            getFlowProducerToken(CAMPAIGN_QUEUE),
            getQueueToken(CAMPAIGN_QUEUE),
            redisToken('command'),
            WORKER_CONFIG,
            LOGGER,
          ],
          useFactory: (
            db: Database,
            dispatcher: TerminalCommandDispatcher,
            flows: FlowProducer,
            queue: Queue,
            redis: Redis,
            config: WorkerConfig,
            logger: Logger,
          ) =>
            // The waiting lists outlive every fallback delay (at most 1.5 × parkMs) of the steps they list.
            new CampaignRunner(db, dispatcher, flows, timing, new ParkedSteps(redis, config.REDIS_KEY_PREFIX, queue, 2 * timing.parkMs, logger), logger),
        },
        {
          provide: CAMPAIGN_SWEEP,
          inject: [DATABASE, getQueueToken(CAMPAIGN_QUEUE), getFlowProducerToken(CAMPAIGN_QUEUE), redisToken('command'), LOGGER, REGISTRY, WORKER_CONFIG],
          useFactory: (db: Database, queue: Queue, flows: FlowProducer, redis: Redis, logger: Logger, registry: Registry, config: WorkerConfig) =>
            new CampaignSweep(
              db,
              queue,
              flows,
              redis,
              logger,
              config.CAMPAIGN_SWEEP_STEP_CHECKS_PER_PASS,
              new Counter({
                name: 'payorch_campaign_jobs_requeued_total',
                help: 'Campaign jobs the campaign sweep queued again (docs/campaigns.md, "Lost jobs"), by kind: run (campaign.run), wave (campaign.wave), step (campaign.step, one per unfinished target of the running wave); and by reason: lost (Redis had lost it, a flush or a failover without persistence: added again from the rows under its job id) or failed (a job in the failed set, a step only with its target open: retried).',
                labelNames: ['kind', 'reason'] as const,
                registers: [registry],
              }),
              new Counter({
                name: 'payorch_campaign_jobs_removed_total',
                help: 'Jobs of ended (completed or canceled) campaigns the campaign sweep removed from Redis (docs/campaigns.md, "Failed jobs"): their failed jobs, which nothing retries once the campaign ended, and the run each held or belonged to (removed with its children). By kind: run (campaign.run), wave (campaign.wave, failed), step (campaign.step, failed).',
                labelNames: ['kind'] as const,
                registers: [registry],
              }),
            ),
        },
        CampaignsProcessor,
      ],
    };
  }
}
