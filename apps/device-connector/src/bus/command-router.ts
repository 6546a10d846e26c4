import { Inject, Injectable, type OnApplicationBootstrap } from '@nestjs/common';

import { assertUnreachable, QueueFullError, type TerminalCommand, type TerminalCommandReply } from '@payorch/domain';
import type { TerminalDriver } from '@payorch/drivers';
import type { Logger } from '@payorch/logging';

import { TerminalHub } from '../terminals/terminal-hub';
import { INSTANCE_ID, LOGGER, OPERATION_HANDLER } from '../tokens';
import { CommandBusService } from './command-bus.service';

/** The issue-7 OperationCommandHandler's shape (libs/operations): runs execute / cancel / recover on a driver. */
export interface OperationCommandHandlerLike {
  handle(command: TerminalCommand, driver: TerminalDriver): Promise<TerminalCommandReply>;
}

/**
 * Receiving side of the command bus: resolves the terminal among the agents held by this instance
 * (tenant-checked) and runs the command in the terminal's queue. `terminal.refresh_info` is handled
 * here; `operation.*` goes to the OperationCommandHandler, which owns the operation state machine and
 * queues in the same per-terminal queue (TERMINAL_QUEUE).
 */
@Injectable()
export class CommandRouter implements OnApplicationBootstrap {
  constructor(
    private readonly bus: CommandBusService,
    private readonly hub: TerminalHub,
    @Inject(OPERATION_HANDLER) private readonly operations: OperationCommandHandlerLike | null,
    @Inject(LOGGER) private readonly logger: Logger,
    @Inject(INSTANCE_ID) private readonly instanceId: string,
  ) {}

  async onApplicationBootstrap(): Promise<void> {
    await this.bus.consume((command) => this.handle(command));
  }

  async handle(command: TerminalCommand): Promise<TerminalCommandReply> {
    const handle = this.hub.find(command.tenantId, command.terminalId);
    if (!handle) return { ok: false, code: 'TERMINAL_OFFLINE', message: 'the terminal is not connected to this connector instance' };
    try {
      switch (command.kind) {
        case 'terminal.refresh_info':
          return { ok: true, result: { info: await this.hub.refreshInfo(handle), instance: this.instanceId } };
        case 'operation.execute':
        case 'operation.cancel':
        case 'operation.recover': {
          const driver = handle.driver;
          if (!driver) return { ok: false, code: 'INTERNAL', message: `no driver for protocol ${handle.row.protocol}` };
          if (!this.operations) return { ok: false, code: 'INTERNAL', message: 'operations are not enabled on this connector' };
          return await this.operations.handle(command, driver);
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
