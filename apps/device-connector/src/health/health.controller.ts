import { Controller, Get, Header, Inject, Res } from '@nestjs/common';
import type { Response } from 'express';

import type { Database } from '@payorch/db';
import { probe } from '@payorch/domain';
import type { Registry } from '@payorch/logging';

import { AgentTunnelServer } from '../tunnel/agent-tunnel.server';
import { DATABASE, INSTANCE_ID, REGISTRY } from '../tokens';

@Controller()
export class HealthController {
  constructor(
    @Inject(DATABASE) private readonly db: Database,
    @Inject(REGISTRY) private readonly registry: Registry,
    @Inject(INSTANCE_ID) private readonly instanceId: string,
    private readonly tunnels: AgentTunnelServer,
  ) {}

  @Get('health')
  async health(@Res({ passthrough: true }) res: Response) {
    const checks = { database: await probe(() => this.db.ping()) };
    const ok = checks.database === 'ok';
    res.status(ok ? 200 : 503);
    return { status: ok ? 'ok' : 'degraded', service: 'device-connector', instance: this.instanceId, checks, agentsConnected: this.tunnels.connectedAgents.length };
  }

  @Get('metrics')
  @Header('Content-Type', 'text/plain; version=0.0.4')
  metrics(): Promise<string> {
    return this.registry.metrics();
  }
}
