import { Controller, Get, Header, Inject, Res } from '@nestjs/common';
import { HealthCheckService, HealthIndicatorService } from '@nestjs/terminus';
import type { Response } from 'express';
import type { Redis } from 'ioredis';

import type { Database } from '@payorch/db';
import { databasePing, legacyHealth, liveness, Readiness, type ReadinessProbe, redisPing } from '@payorch/health';
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

@Controller()
export class HealthController {
  private readonly readiness: Readiness;

  constructor(
    @Inject(DATABASE) db: Database,
    @Inject(REDIS) redis: Redis,
    @Inject(REGISTRY) private readonly registry: Registry,
    @Inject(INSTANCE_ID) private readonly instanceId: string,
    private readonly tunnels: AgentTunnelServer,
    bus: CommandBusService,
    health: HealthCheckService,
    indicators: HealthIndicatorService,
  ) {
    this.readiness = new Readiness({ health, indicators, registry, probes: { database: databasePing(db), redis: redisPing(redis), commandBus: commandBusProbe(bus) } });
    commandBusMetrics(registry, () => bus.backlog());
  }

  /** Liveness: the process answers; no dependency is checked. */
  @Get('health/live')
  live() {
    return { ...liveness('device-connector'), instance: this.instanceId };
  }

  /** Readiness: PostgreSQL, Redis and the command-bus consumer; 503 lists each check's `ok` and `reason`. */
  @Get('health/ready')
  async ready(@Res({ passthrough: true }) res: Response) {
    const report = await this.readiness.evaluate();
    res.status(report.ok ? 200 : 503);
    return { status: report.ok ? 'ok' : 'not_ready', service: 'device-connector', instance: this.instanceId, checks: report.checks };
  }

  /** Kept for older probes: the same checks as /health/ready, in the original body. */
  @Get('health')
  async health(@Res({ passthrough: true }) res: Response) {
    const report = await this.readiness.evaluate();
    res.status(report.ok ? 200 : 503);
    const { status, checks } = legacyHealth(report);
    return { status, service: 'device-connector', instance: this.instanceId, checks, agentsConnected: this.tunnels.connectedAgents.length };
  }

  @Get('metrics')
  @Header('Content-Type', 'text/plain; version=0.0.4')
  metrics(): Promise<string> {
    return this.registry.metrics();
  }
}
