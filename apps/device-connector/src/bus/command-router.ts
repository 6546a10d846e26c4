import { Inject, Injectable, type OnApplicationBootstrap, type OnModuleDestroy } from '@nestjs/common';

import { assertUnreachable, QueueFullError, type TerminalCommand, type TerminalCommandReply } from '@payorch/domain';
import type { ConnectorConfig } from '@payorch/config';
import type { TerminalDriver } from '@payorch/drivers';
import type { Logger } from '@payorch/logging';

import { TerminalHub } from '../terminals/terminal-hub';
import { CONNECTOR_CONFIG, INSTANCE_ID, LOGGER, OPERATION_HANDLER } from '../tokens';
import { CommandBusService } from './command-bus.service';

/** The issue-7 OperationCommandHandler's shape (libs/operations): runs execute / cancel / recover on a driver. */
export interface OperationCommandHandlerLike {
  /** `driver`: the terminal's driver as it is when the command's turn in the terminal's queue comes (null: not held here any more). */
  handle(command: TerminalCommand, driver: () => TerminalDriver | null): Promise<TerminalCommandReply>;
  /** Waits (at most timeoutMs) for the operations accepted with `replyWhen: 'queued'` that still run here. */
  drain?(timeoutMs: number): Promise<boolean>;
}

/** Part of SHUTDOWN_GRACE_MS kept for closing the tunnels and the connections after the operations' drain. */
const AFTER_DRAIN_RESERVE_MS = 3_000;

/** How long a shutting-down connector lets accepted operations finish before it closes the tunnels. */
export function operationsDrainMs(config: Pick<ConnectorConfig, 'SHUTDOWN_GRACE_MS' | 'SHUTDOWN_DRAIN_DELAY_MS'>): number {
  return Math.max(0, config.SHUTDOWN_GRACE_MS - config.SHUTDOWN_DRAIN_DELAY_MS - AFTER_DRAIN_RESERVE_MS);
}

/**
 * Receiving side of the command bus: resolves the terminal among the agents held by this instance
 * (tenant-checked) and runs the command in the terminal's queue. `terminal.refresh_info` is handled
 * here; `operation.*` goes to the OperationCommandHandler, which owns the operation state machine and
 * queues in the same per-terminal queue (TERMINAL_QUEUE).
 */
@Injectable()
export class CommandRouter implements OnApplicationBootstrap, OnModuleDestroy {
  constructor(
    private readonly bus: CommandBusService,
    private readonly hub: TerminalHub,
    @Inject(OPERATION_HANDLER) private readonly operations: OperationCommandHandlerLike | null,
    @Inject(LOGGER) private readonly logger: Logger,
    @Inject(INSTANCE_ID) private readonly instanceId: string,
    @Inject(CONNECTOR_CONFIG) private readonly config: ConnectorConfig,
  ) {}

  async onApplicationBootstrap(): Promise<void> {
    await this.bus.consume((command) => this.handle(command));
  }

  /**
   * Graceful drain, before the tunnels close (AgentTunnelServer.beforeApplicationShutdown): take no new
   * command, then let the operations this instance accepted finish on their terminals. What is still running
   * after operationsDrainMs (SHUTDOWN_GRACE_MS less the drain delay and a reserve) is left to recovery (the agent reconnects elsewhere; that instance marks the
   * operation unknown and asks the terminal).
   */
  async onModuleDestroy(): Promise<void> {
    await this.bus.stopConsuming();
    const drainMs = operationsDrainMs(this.config);
    const drained = await this.operations?.drain?.(drainMs);
    if (drained === false) this.logger.warn({ drainMs }, 'operations still running at shutdown: left to recovery');
  }

  async handle(command: TerminalCommand): Promise<TerminalCommandReply> {
    const handle = this.hub.find(command.tenantId, command.terminalId);
    // A terminal withdrawn here (disabled, moved) lets the command running on it finish (TerminalHandle.retire): a
    // cancel of that command still reaches its driver (the handler knows which one runs it).
    if (!handle && command.kind === 'operation.cancel' && this.operations) return this.operations.handle(command, () => null);
    if (!handle) return { ok: false, code: 'TERMINAL_OFFLINE', message: 'the terminal is not connected to this connector instance' };
    try {
      switch (command.kind) {
        case 'terminal.refresh_info':
          return { ok: true, result: { info: await this.hub.refreshInfo(handle), instance: this.instanceId } };
        case 'operation.execute':
        case 'operation.cancel':
        case 'operation.recover': {
          if (!handle.driver) return { ok: false, code: 'INTERNAL', message: `no driver for protocol ${handle.row.protocol}` };
          if (!this.operations) return { ok: false, code: 'INTERNAL', message: 'operations are not enabled on this connector' };
          // Resolved at the command's turn: a terminal whose row changed while the command waited (credentials, merchant,
          // connection) has a rebuilt driver by then, and the replaced one is closed (after the command that ran on it).
          return await this.operations.handle(command, () => this.hub.find(command.tenantId, command.terminalId)?.driver ?? null);
        }
        default:
          return assertUnreachable(command);
      }
    } catch (error) {
      if (error instanceof QueueFullError) return { ok: false, code: 'TERMINAL_BUSY', message: `the terminal's command queue is full: ${error.message}` };
      this.logger.warn({ terminalId: command.terminalId, kind: command.kind, err: (error as Error).message }, 'terminal command failed');
      return { ok: false, code: 'INTERNAL', message: (error as Error).message };
    }
  }
}
