import { type DynamicModule, Inject, Module, type OnApplicationShutdown } from '@nestjs/common';
import { TerminusModule } from '@nestjs/terminus';

import type { ConnectorConfig } from '@payorch/config';
import type { Database } from '@payorch/db';
import type { KeyedSerialQueue, SecretBox } from '@payorch/domain';
import type { Logger, Registry } from '@payorch/logging';
import { type RedisConnections, RedisModule, redisToken } from '@payorch/redis';

import { AccessWatcher } from './access/access-watcher';
import { CommandBusService } from './bus/command-bus.service';
import { CommandRouter, type OperationCommandHandlerLike } from './bus/command-router';
import { EnrollmentController } from './enrollment/enrollment.controller';
import { EnrollmentService } from './enrollment/enrollment.service';
import { HealthController } from './health/health.controller';
import { RelayPortFactory } from './relay/relay-port.factory';
import { type DriverFactory, TerminalHub } from './terminals/terminal-hub';
import { TerminalPresence } from './terminals/terminal-presence';
import { CONNECTOR_CONFIG, DATABASE, DRIVER_FACTORY, INSTANCE_ID, LOGGER, OPERATION_HANDLER, REDIS, REGISTRY, SECRET_BOX, TERMINAL_QUEUE } from './tokens';
import { AgentTunnelServer } from './tunnel/agent-tunnel.server';
import { DatabaseSlots } from './tunnel/database-slots';

export interface ConnectorDeps {
  config: ConnectorConfig;
  db: Database;
  /** Drives terminals; null = presence by link probes only (no driver for any protocol). */
  driverFactory: DriverFactory | null;
  instanceId: string;
  logger: Logger;
  /** The issue-7 OperationCommandHandler; null = operation commands answer INTERNAL. */
  operationHandler: OperationCommandHandlerLike | null;
  /** The process's named Redis connections: `command`, `blocking`, `subscriber` (docs/architecture.md). */
  redis: RedisConnections;
  registry: Registry;
  secrets: SecretBox;
  /** One command at a time per terminal; the OperationCommandHandler must run its commands in the same queue. */
  terminalQueue: KeyedSerialQueue;
}

/** Closes the database on shutdown (RedisModule closes the Redis connections after every other module). */
class ConnectionCloser implements OnApplicationShutdown {
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
      imports: [RedisModule.forRoot(deps.redis), TerminusModule.forRoot({ logger: false })],
      providers: [
        { provide: CONNECTOR_CONFIG, useValue: deps.config },
        { provide: DATABASE, useValue: deps.db },
        { provide: DRIVER_FACTORY, useValue: deps.driverFactory },
        { provide: INSTANCE_ID, useValue: deps.instanceId },
        { provide: LOGGER, useValue: deps.logger },
        { provide: OPERATION_HANDLER, useValue: deps.operationHandler },
        // Ordinary commands (ownership keys, replies, PUBLISH, health) go on the named `command` connection.
        { provide: REDIS, useExisting: redisToken('command') },
        { provide: REGISTRY, useValue: deps.registry },
        { provide: SECRET_BOX, useValue: deps.secrets },
        { provide: TERMINAL_QUEUE, useValue: deps.terminalQueue },
        AccessWatcher,
        AgentTunnelServer,
        CommandBusService,
        CommandRouter,
        ConnectionCloser,
        DatabaseSlots,
        EnrollmentService,
        RelayPortFactory,
        TerminalHub,
        TerminalPresence,
      ],
    };
  }
}
