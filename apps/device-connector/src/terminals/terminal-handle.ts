import type { KeyedSerialQueue } from '@payorch/domain';
import type { LinkFactory, TerminalDriver } from '@payorch/drivers';

import type { TerminalRow } from './terminal-link';

/** Commands one terminal may hold, running and waiting; one more is answered TERMINAL_BUSY (docs/tunnel.md §12.1). */
export const TERMINAL_QUEUE_LIMIT = 8;

/**
 * One terminal held by this connector instance: its row, its link factory (a tunnel stream to the
 * terminal) and its single driver. Commands run one at a time in the terminal's queue, the instance's
 * one KeyedSerialQueue keyed by terminal id that the OperationCommandHandler runs operations in too.
 * The queue outlives the handle: a handle rebuilt for a changed row, or for the agent's new tunnel,
 * waits for the commands of the one it replaced. `driver` is the bare driver, for use inside `run`
 * (the OperationCommandHandler queues by itself); `cancel` bypasses the queue on purpose, since it
 * must reach the driver while the command it cancels is running.
 */
export class TerminalHandle {
  /** Aborted once the handle is closed (its session closed, the terminal withdrawn or rebuilt): what runs for it stops. */
  private readonly closing = new AbortController();

  constructor(
    readonly row: TerminalRow,
    readonly agentId: string,
    readonly link: LinkFactory,
    /** Null when no driver exists for the protocol. */
    readonly driver: TerminalDriver | null,
    private readonly queue: KeyedSerialQueue,
  ) {}

  get tenantId(): string {
    return this.row.tenantId;
  }

  /**
   * Runs `fn` in the terminal's queue, after every command queued before it. Rejects with QueueFullError
   * (TERMINAL_BUSY) when the terminal already holds TERMINAL_QUEUE_LIMIT commands.
   */
  run<T>(fn: () => Promise<T>): Promise<T> {
    if (this.isClosed) return Promise.reject(new Error('terminal handle closed'));
    return this.queue.run(this.row.id, fn);
  }

  get isClosed(): boolean {
    return this.closing.signal.aborted;
  }

  /** Aborted when the handle closes (e.g. its recovery on reconnect stops retrying). */
  get closed(): AbortSignal {
    return this.closing.signal;
  }

  async close(): Promise<void> {
    if (this.isClosed) return;
    this.closing.abort();
    await this.driver?.close().catch(() => undefined);
  }
}
