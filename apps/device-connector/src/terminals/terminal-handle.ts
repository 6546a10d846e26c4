import type { CancelResult, ExecuteHooks, LinkFactory, OperationCommand, OperationOutcome, ProtocolRefs, TerminalDriver } from '@payorch/drivers';

import type { TerminalRow } from './terminal-link';

export class TerminalBusyError extends Error {
  override readonly name = 'TerminalBusyError';
  readonly code = 'TERMINAL_BUSY';
}

/**
 * One terminal held by this connector instance: its row, its link factory (a tunnel stream to the
 * terminal), its single driver, and a FIFO that runs one command at a time. `cancel` bypasses the
 * queue on purpose: it must reach the driver while the command it cancels is running.
 */
export class TerminalHandle {
  private tail: Promise<unknown> = Promise.resolve();
  private queued = 0;
  private closed = false;

  constructor(
    readonly row: TerminalRow,
    readonly agentId: string,
    readonly link: LinkFactory,
    private readonly rawDriver: TerminalDriver | null,
    private readonly maxQueued = 8,
  ) {}

  get tenantId(): string {
    return this.row.tenantId;
  }

  /** Commands running or waiting. */
  get depth(): number {
    return this.queued;
  }

  /** The driver behind the per-terminal queue, or null when no driver exists for the protocol. */
  get driver(): TerminalDriver | null {
    if (!this.rawDriver) return null;
    const driver = this.rawDriver;
    return {
      protocol: driver.protocol,
      execute: (command: OperationCommand, hooks: ExecuteHooks): Promise<OperationOutcome> => this.run(() => driver.execute(command, hooks)),
      cancel: (operationId: string): Promise<CancelResult> => driver.cancel(operationId),
      recover: (command: OperationCommand, refs: ProtocolRefs): Promise<OperationOutcome> => this.run(() => driver.recover(command, refs)),
      terminalInfo: (): Promise<Record<string, unknown>> => this.run(() => driver.terminalInfo()),
      close: () => this.close(),
    };
  }

  /**
   * Runs `fn` after every command queued before it. Rejects with TerminalBusyError when `maxQueued`
   * commands are already waiting (a caller should not pile up payments on one terminal).
   */
  run<T>(fn: () => Promise<T>): Promise<T> {
    if (this.closed) return Promise.reject(new Error('terminal handle closed'));
    if (this.queued >= this.maxQueued) return Promise.reject(new TerminalBusyError(`${this.queued} commands already queued for this terminal`));
    this.queued += 1;
    const result = this.tail.then(fn);
    this.tail = result.then(
      () => undefined,
      () => undefined,
    );
    void this.tail.then(() => (this.queued -= 1));
    return result;
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    await this.rawDriver?.close().catch(() => undefined);
  }
}
