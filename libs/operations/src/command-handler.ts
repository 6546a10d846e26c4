import type { Database } from '@payorch/db';
import type { TerminalCommand, TerminalCommandReply } from '@payorch/domain';
import type { TerminalDriver } from '@payorch/drivers';

import { type EventSink, OperationExecutor } from './executor';
import { recoverOperation } from './recovery';

export interface CommandHandlerOptions {
  onEvents?: EventSink;
}

/**
 * What the device connector calls for each bus command addressed to a terminal it holds:
 * `reply = await handler.handle(command, driverOfThatTerminal)`.
 *  - `operation.execute` runs the operation at most once and replies when it is over;
 *  - `operation.recover` resolves an UNKNOWN operation;
 *  - `operation.cancel` interrupts the running one (409-worthy `TOO_LATE` when the terminal cannot any more).
 * Execute and recover are serialised per terminal (one command at a time); cancel bypasses the queue.
 */
export class OperationCommandHandler {
  readonly executor: OperationExecutor;
  private readonly queues = new Map<string, Promise<unknown>>();

  constructor(
    private readonly db: Database,
    options: CommandHandlerOptions = {},
  ) {
    this.executor = new OperationExecutor(db, { onEvents: options.onEvents });
  }

  async handle(command: TerminalCommand, driver: TerminalDriver): Promise<TerminalCommandReply> {
    try {
      switch (command.kind) {
        case 'operation.execute':
          return await this.serial(command.terminalId, async () => {
            const report = await this.executor.execute(command, driver);
            return { ok: true, result: { ran: report.ran, state: report.state.toLowerCase() } };
          });
        case 'operation.recover':
          return await this.serial(command.terminalId, async () => {
            const report = await recoverOperation(this.db, this.executor, driver, command);
            return { ok: true, result: { attempted: report.attempted, state: report.state.toLowerCase() } };
          });
        case 'operation.cancel': {
          const result = await driver.cancel(command.operationId);
          if (result === 'requested') return { ok: true, result: { cancel: 'requested' } };
          return {
            ok: false,
            code: 'TOO_LATE',
            message: result === 'too_late' ? 'the terminal can no longer interrupt this operation' : 'the operation is not running on the terminal',
          };
        }
        case 'terminal.refresh_info':
          return { ok: true, result: await driver.terminalInfo() };
      }
    } catch (error) {
      return { ok: false, code: 'INTERNAL', message: error instanceof Error ? error.message : String(error) };
    }
  }

  private serial<T>(key: string, fn: () => Promise<T>): Promise<T> {
    const previous = this.queues.get(key) ?? Promise.resolve();
    const run = previous.then(fn, fn);
    const tail = run.catch(() => undefined);
    this.queues.set(key, tail);
    void tail.then(() => {
      if (this.queues.get(key) === tail) this.queues.delete(key);
    });
    return run;
  }
}
