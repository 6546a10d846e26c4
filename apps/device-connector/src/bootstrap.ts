import { hostname } from 'node:os';

import type { INestApplication } from '@nestjs/common';
import { NestFactory } from '@nestjs/core';
import type { NestExpressApplication } from '@nestjs/platform-express';

import type { ConnectorConfig } from '@payorch/config';
import { Database } from '@payorch/db';
import { JSON_MEDIA_TYPES, KeyedSerialQueue, requestIdMiddleware, requireJsonBody, SecretBox } from '@payorch/domain';
import { configureSystemLookups, lookupLimits, systemLookups } from '@payorch/egress-guard';
import { createLogger, createMetricsRegistry, egressLookupMetrics, type Logger } from '@payorch/logging';
import { OperationCommandHandler, redisEventSink } from '@payorch/operations';
import { RedisConnections } from '@payorch/redis';

import type { OperationCommandHandlerLike } from './bus/command-router';
import { ConnectorModule } from './connector.module';
import { defaultDriverFactory } from './drivers/driver-factory';
import { ConnectorErrorFilter } from './error.filter';
import { TERMINAL_QUEUE_LIMIT } from './terminals/terminal-handle';
import type { DriverFactory } from './terminals/terminal-hub';
import { AgentTunnelServer } from './tunnel/agent-tunnel.server';

/** Largest enrollment body (`{"token", "version"}` is under 300 bytes); larger → 413. */
const ENROLLMENT_BODY_LIMIT = '16kb';

export interface ConnectorAppOptions {
  /** Default: createDriver from @payorch/drivers. */
  driverFactory?: DriverFactory | null;
  /** Default: @payorch/operations' OperationCommandHandler on the connector's database. */
  operationHandler?: OperationCommandHandlerLike | null;
}

export async function createConnectorApp(config: ConnectorConfig, logger?: Logger, options: ConnectorAppOptions = {}): Promise<INestApplication> {
  const instanceId = config.CONNECTOR_INSTANCE_ID ?? `${hostname()}-${process.pid}`;
  const log = logger ?? createLogger({ name: 'device-connector', level: config.LOG_LEVEL, base: { instance: instanceId } });
  const redis = connectorRedis(config, instanceId, log);
  const secrets = SecretBox.fromConfig(config.PAYORCH_MASTER_KEY, config.PAYORCH_PREVIOUS_MASTER_KEYS);
  // Operation progress, presence and relay events go to their tenant's live channel once committed (an operation's view
  // sealed with the master key: a gateway answers `?wait=` with it, docs/architecture.md).
  const db = Database.connect(config.DATABASE_APP_URL, config.CONNECTOR_DATABASE_POOL_SIZE, {
    preparedStatements: config.DATABASE_PREPARED_STATEMENTS,
    onCommitted: redisEventSink(redis.get('command'), config.REDIS_KEY_PREFIX, (err) => log.warn({ err: err.message }, 'event publish failed'), secrets),
  });
  // One queue per terminal, shared by the operation handler and the TerminalHub (terminal info).
  const terminalQueue = new KeyedSerialQueue({ limit: TERMINAL_QUEUE_LIMIT });
  const registry = createMetricsRegistry('device-connector');
  // The process's host name lookups (relay destinations): DNS queries end by EGRESS_DNS_TIMEOUT_MS, bounded in number and shared fairly by tenant (docs/security.md).
  configureSystemLookups(lookupLimits(config.EGRESS_DNS_MAX_IN_FLIGHT, config.EGRESS_DNS_MAX_QUEUED), { timeoutMs: config.EGRESS_DNS_TIMEOUT_MS });
  egressLookupMetrics(registry, systemLookups);
  const app = await NestFactory.create<NestExpressApplication>(
    ConnectorModule.register({
      config,
      db,
      driverFactory: options.driverFactory === undefined ? defaultDriverFactory() : options.driverFactory,
      instanceId,
      logger: log,
      operationHandler:
        options.operationHandler === undefined
          ? new OperationCommandHandler(db, {
              onBackgroundError: (err, command) =>
                log.error({ err: err.message, operationId: 'operationId' in command ? command.operationId : undefined }, 'queued operation failed'),
              pendingHoldIntervalMs: config.PENDING_HOLD_INTERVAL_MS,
              neverSentAfterMs: config.RECOVERY_PENDING_AFTER_MS,
              queue: terminalQueue,
              recordFrames: config.OPERATION_FRAME_JOURNAL === 'on',
            })
          : options.operationHandler,
      redis,
      registry,
      secrets,
      terminalQueue,
    }),
    // Only the JSON parser below: no urlencoded parser, so a form body never reaches the enrollment (nor a lookup).
    { logger: false, bodyParser: false },
  );
  // As the gateway (docs/security.md, "Input hygiene, the error envelope and authentication throttling"): the request
  // id first, so every error carries it; 415 for a body that is not JSON; 400/413 from the parser; every error in the
  // envelope (ConnectorErrorFilter), nothing of the request quoted back.
  app.use(requestIdMiddleware);
  app.use(requireJsonBody);
  app.useBodyParser('json', { limit: ENROLLMENT_BODY_LIMIT, type: JSON_MEDIA_TYPES });
  app.useGlobalFilters(new ConnectorErrorFilter(log));
  // Signals are main.ts' (exitGracefullyOnSignals: readiness 503, drain, bounded exit); tests call app.close().
  await app.init();
  app.get(AgentTunnelServer).attach(app.getHttpServer());
  return app;
}

/**
 * The connector's Redis connections (docs/architecture.md, "Redis connections"): `command` for ownership
 * keys, command-bus replies/acks/XGROUP and PUBLISH (offline queue kept, 3 retries, as before; auto-pipelined),
 * `blocking` for the command-bus consumer's XREADGROUP BLOCK, `subscriber` for the access watcher's PSUBSCRIBE
 * (it subscribes itself after every reconnect, then re-checks every agent: no automatic re-subscription).
 */
function connectorRedis(config: ConnectorConfig, instanceId: string, logger: Logger): RedisConnections {
  return new RedisConnections({
    url: config.REDIS_URL,
    clientName: `${config.REDIS_KEY_PREFIX}:device-connector:${instanceId}`,
    connections: {
      blocking: {},
      // Auto-pipelining: the commands issued in one tick go out as one write (a storm's ownership claims, a
      // tick's replies and acks). No BullMQ on this connection (BullMQ is not safe with it).
      command: { enableOfflineQueue: true, maxRetriesPerRequest: 3, enableAutoPipelining: true },
      // Named as docs/runbooks/agent.md tells operators to find it in CLIENT LIST.
      subscriber: { autoResubscribe: false, connectionName: `payorch-access-${instanceId}` },
    },
    onError: (name, err) => logger.warn({ err: err.message, connection: name }, 'redis connection error'),
  });
}

/**
 * Starts listening with the accept queue of CONNECTOR_LISTEN_BACKLOG (a reconnect storm's dials wait in it
 * instead of being dropped). `INestApplication.listen` hands its arguments to `http.Server#listen(port, host,
 * backlog)`; its types only name the first two.
 */
export async function listenConnector(
  app: INestApplication,
  config: Pick<ConnectorConfig, 'CONNECTOR_LISTEN_BACKLOG'>,
  port: number,
  host: string,
): Promise<void> {
  await (app.listen as unknown as (port: number, host: string, backlog: number) => Promise<unknown>).call(app, port, host, config.CONNECTOR_LISTEN_BACKLOG);
}
