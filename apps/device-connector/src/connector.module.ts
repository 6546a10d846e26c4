import { type DynamicModule, Inject, Module, type OnApplicationShutdown } from '@nestjs/common';
import { TerminusModule } from '@nestjs/terminus';
import type { Redis } from 'ioredis';

import type { ConnectorConfig } from '@payorch/config';
import type { Database } from '@payorch/db';
import type { SecretBox } from '@payorch/domain';
import type { Logger, Registry } from '@payorch/logging';

import { AccessWatcher } from './access/access-watcher';
import { CommandBusService } from './bus/command-bus.service';
import { CommandRouter, type OperationCommandHandlerLike } from './bus/command-router';
import { EnrollmentController } from './enrollment/enrollment.controller';
import { EnrollmentService } from './enrollment/enrollment.service';
import { HealthController } from './health/health.controller';
import { RelayPortFactory } from './relay/relay-port.factory';
import { type DriverFactory, TerminalHub } from './terminals/terminal-hub';
import { TerminalPresence } from './terminals/terminal-presence';
import { CONNECTOR_CONFIG, DATABASE, DRIVER_FACTORY, INSTANCE_ID, LOGGER, OPERATION_HANDLER, REDIS, REGISTRY, SECRET_BOX } from './tokens';
import { AgentTunnelServer } from './tunnel/agent-tunnel.server';

export interface ConnectorDeps {
  config: ConnectorConfig;
  db: Database;
  /** Drives terminals; null = presence by link probes only (no driver for any protocol). */
  driverFactory: DriverFactory | null;
  instanceId: string;
  logger: Logger;
  /** The issue-7 OperationCommandHandler; null = operation commands answer INTERNAL. */
  operationHandler: OperationCommandHandlerLike | null;
  redis: Redis;
  registry: Registry;
  secrets: SecretBox;
}

class ConnectionCloser implements OnApplicationShutdown {
  constructor(
    @Inject(DATABASE) private readonly db: Database,
    @Inject(REDIS) private readonly redis: Redis,
  ) {}

  async onApplicationShutdown(): Promise<void> {
    await Promise.allSettled([this.db.close(), this.redis.quit()]);
  }
}

@Module({})
export class ConnectorModule {
  static register(deps: ConnectorDeps): DynamicModule {
    return {
      module: ConnectorModule,
      controllers: [EnrollmentController, HealthController],
      imports: [TerminusModule.forRoot({ logger: false })],
      providers: [
        { provide: CONNECTOR_CONFIG, useValue: deps.config },
        { provide: DATABASE, useValue: deps.db },
        { provide: DRIVER_FACTORY, useValue: deps.driverFactory },
        { provide: INSTANCE_ID, useValue: deps.instanceId },
        { provide: LOGGER, useValue: deps.logger },
        { provide: OPERATION_HANDLER, useValue: deps.operationHandler },
        { provide: REDIS, useValue: deps.redis },
        { provide: REGISTRY, useValue: deps.registry },
        { provide: SECRET_BOX, useValue: deps.secrets },
        AccessWatcher,
        AgentTunnelServer,
        CommandBusService,
        CommandRouter,
        ConnectionCloser,
        EnrollmentService,
        RelayPortFactory,
        TerminalHub,
        TerminalPresence,
      ],
    };
  }
}
