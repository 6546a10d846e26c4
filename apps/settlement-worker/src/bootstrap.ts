import { hostname } from 'node:os';

import type { INestApplication } from '@nestjs/common';
import { NestFactory } from '@nestjs/core';

import type { WorkerConfig } from '@payorch/config';
import { Database } from '@payorch/db';
import { SecretBox } from '@payorch/domain';
import { configureSystemLookups, lookupLimits, type Resolver, systemLookups } from '@payorch/egress-guard';
import { createLogger, createMetricsRegistry, egressLookupMetrics, type Logger } from '@payorch/logging';
import { redisEventSink, type TerminalCommandDispatcher } from '@payorch/operations';
import { RedisConnections } from '@payorch/redis';

import type { CampaignTiming } from './campaigns/campaign-runner';
import type { SettlementRunner } from './settlement/settlement-runner';
import { WorkerModule } from './worker.module';

/** The worker process: BullMQ processors plus a small HTTP server for /health and /metrics. */
export async function createWorkerApp(
  config: WorkerConfig,
  logger?: Logger,
  options: { settlementRunner?: SettlementRunner; dispatcher?: TerminalCommandDispatcher; resolver?: Resolver; campaignTiming?: Partial<CampaignTiming> } = {},
): Promise<INestApplication> {
  const log = logger ?? createLogger({ name: 'settlement-worker', level: config.LOG_LEVEL });
  const redis = workerRedis(config, log);
  // The master key(s), opened once: merchant and webhook secrets, and the seal of an operation's view on its live events.
  const secrets = SecretBox.fromConfig(config.PAYORCH_MASTER_KEY, config.PAYORCH_PREVIOUS_MASTER_KEYS);
  // Settlement, wallet and recovery events go to their tenant's live channel once committed. The pool is sized from
  // config: a fixed 4 connections queued 32 concurrent settlements behind each other's transactions.
  const db = Database.connect(config.DATABASE_APP_URL, config.WORKER_DATABASE_POOL_SIZE, {
    preparedStatements: config.DATABASE_PREPARED_STATEMENTS,
    // An operation's view on its events' live messages is sealed with the master key (a gateway answers `?wait=` with it).
    onCommitted: redisEventSink(redis.get('command'), config.REDIS_KEY_PREFIX, (err) => log.warn({ err: err.message }, 'event publish failed'), secrets),
  });
  const registry = createMetricsRegistry('settlement-worker');
  // The process's host name lookups (webhooks, Assist): DNS queries end by EGRESS_DNS_TIMEOUT_MS, bounded in number and shared fairly by tenant (docs/security.md).
  configureSystemLookups(lookupLimits(config.EGRESS_DNS_MAX_IN_FLIGHT, config.EGRESS_DNS_MAX_QUEUED), { timeoutMs: config.EGRESS_DNS_TIMEOUT_MS });
  egressLookupMetrics(registry, systemLookups);
  const app = await NestFactory.create(
    WorkerModule.register({
      config,
      db,
      logger: log,
      redis,
      registry,
      secrets,
      // Settlements and operation recovery both go over the one command bus (CommandBusModule, libs/command-bus); tests inject in-process ones.
      settlementRunner: options.settlementRunner,
      dispatcher: options.dispatcher,
      resolver: options.resolver,
      campaignTiming: options.campaignTiming,
    }),
    { logger: false },
  );
  // SIGTERM/SIGINT (main.ts: exitGracefullyOnSignals) → Nest closes the module → @nestjs/bullmq closes
  // workers (active jobs finish first), all within SHUTDOWN_GRACE_MS.
  return app;
}

/**
 * The worker's Redis connections (docs/architecture.md, "Redis connections"): `bull` for BullMQ queues and
 * workers (BullMQ adds one blocking duplicate per Worker), `command` for the app's own commands (PUBLISH,
 * tenant slots, webhook sweep position, command-bus XADD; offline queue kept, 2 retries), `blocking` for the
 * command-bus reply reader, `subscriber` for schedule-change notifications and the webhook fan-out listener.
 */
function workerRedis(config: WorkerConfig, logger: Logger): RedisConnections {
  return new RedisConnections({
    url: config.REDIS_URL,
    clientName: `${config.REDIS_KEY_PREFIX}:settlement-worker:${hostname()}-${process.pid}`,
    connections: { blocking: {}, bull: {}, command: { enableOfflineQueue: true }, subscriber: {} },
    onError: (name, err) => logger.warn({ err: err.message, connection: name }, 'redis connection error'),
  });
}
