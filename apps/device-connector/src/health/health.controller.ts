import { Controller, Inject } from '@nestjs/common';
import { HealthCheckService, HealthIndicatorService } from '@nestjs/terminus';
import type { Redis } from 'ioredis';

import { type Database, SCHEMA_MIGRATION } from '@payorch/db';
import { databasePing, Readiness, type ReadinessProbe, redisPing, SchemaCheck, ServiceHealth, ServiceHealthController } from '@payorch/health';
import { commandBusMetrics, type Registry } from '@payorch/logging';

import { CommandBusService } from '../bus/command-bus.service';
import { AgentTunnelServer } from '../tunnel/agent-tunnel.server';
import { DATABASE, INSTANCE_ID, REDIS, REGISTRY } from '../tokens';

/** A read loop whose last XREADGROUP returned longer ago than this many block times is stuck. */
const STUCK_AFTER_BLOCKS = 5;

/** The consumer loop runs and read within the last few block times; details: backlog of the group. */
function commandBusProbe(bus: CommandBusService): ReadinessProbe {
  return async () => {
    const status = bus.consumerStatus();
    if (!status || !status.running) throw new Error('command-bus consumer is not running');
    if (status.problem) throw new Error(status.problem);
    const sinceRead = Date.now() - status.lastReadAt;
    if (sinceRead > STUCK_AFTER_BLOCKS * status.blockMs) throw new Error(`command-bus consumer stuck: no read for ${sinceRead} ms`);
    const backlog = await bus.backlog();
    return { lastReadMsAgo: sinceRead, ...backlog };
  };
}

/** `/health/live`, `/health/ready` (PostgreSQL, the build's schema applied, Redis, the command-bus consumer), `/health`, `/metrics`; every body names the instance. */
@Controller()
export class HealthController extends ServiceHealthController {
  constructor(
    @Inject(DATABASE) db: Database,
    @Inject(REDIS) redis: Redis,
    @Inject(REGISTRY) registry: Registry,
    @Inject(INSTANCE_ID) instanceId: string,
    tunnels: AgentTunnelServer,
    bus: CommandBusService,
    health: HealthCheckService,
    indicators: HealthIndicatorService,
  ) {
    const readiness = new Readiness({
      health,
      indicators,
      registry,
      probes: { database: databasePing(db), schema: new SchemaCheck(db, SCHEMA_MIGRATION).probe(), redis: redisPing(redis), commandBus: commandBusProbe(bus) },
    });
    super(
      new ServiceHealth({
        service: 'device-connector',
        readiness,
        registry,
        identity: { instance: instanceId },
        legacyExtra: () => ({ agentsConnected: tunnels.connectedAgents.length }),
      }),
    );
    commandBusMetrics(registry, () => bus.backlog());
  }
}
