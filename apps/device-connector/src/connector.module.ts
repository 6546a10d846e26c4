import { type DynamicModule, Inject, Module, type OnApplicationShutdown } from '@nestjs/common';

import type { ConnectorConfig } from '@payorch/config';
import type { Database } from '@payorch/db';
import type { Logger, Registry } from '@payorch/logging';

import { EnrollmentController } from './enrollment/enrollment.controller';
import { EnrollmentService } from './enrollment/enrollment.service';
import { HealthController } from './health/health.controller';
import { CONNECTOR_CONFIG, DATABASE, INSTANCE_ID, LOGGER, REGISTRY } from './tokens';
import { AgentTunnelServer } from './tunnel/agent-tunnel.server';

export interface ConnectorDeps {
  config: ConnectorConfig;
  db: Database;
  instanceId: string;
  logger: Logger;
  registry: Registry;
}

class DatabaseCloser implements OnApplicationShutdown {
  constructor(@Inject(DATABASE) private readonly db: Database) {}

  async onApplicationShutdown(): Promise<void> {
    await this.db.close();
  }
}

@Module({})
export class ConnectorModule {
  static register(deps: ConnectorDeps): DynamicModule {
    return {
      module: ConnectorModule,
      controllers: [EnrollmentController, HealthController],
      providers: [
        { provide: CONNECTOR_CONFIG, useValue: deps.config },
        { provide: DATABASE, useValue: deps.db },
        { provide: INSTANCE_ID, useValue: deps.instanceId },
        { provide: LOGGER, useValue: deps.logger },
        { provide: REGISTRY, useValue: deps.registry },
        AgentTunnelServer,
        DatabaseCloser,
        EnrollmentService,
      ],
    };
  }
}
