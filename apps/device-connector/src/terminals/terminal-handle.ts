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
 *
 * A handle ends one of two ways: `retire` (its terminal's row changed, or the terminal was withdrawn,
 * while its tunnel stays up) lets the command running in the terminal's queue finish before its driver
 * closes; `close` (its tunnel is gone, the connector stops) closes the driver at once.
 */
export class TerminalHandle {
  /** Aborted once the handle is retired or closed (its session closed, the terminal withdrawn or rebuilt): what runs for it stops. */
  private readonly closing = new AbortController();
  /** The driver's close, once begun: it happens once. */
  private driverClosed: Promise<void> | undefined;
  /** `retire`'s close of the driver, at the head of the terminal's queue. */
  private retired: Promise<void> | undefined;

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
   * (TERMINAL_BUSY) when the terminal already holds TERMINAL_QUEUE_LIMIT commands, and without running `fn`
   * when the handle is retired or closed before its turn (its link and driver are no longer the terminal's).
   */
  run<T>(fn: () => Promise<T>): Promise<T> {
    if (this.isClosed) return Promise.reject(new Error('terminal handle closed'));
    return this.queue.run(this.row.id, () => (this.isClosed ? Promise.reject(new Error('terminal handle closed')) : fn()));
  }

  get isClosed(): boolean {
    return this.closing.signal.aborted;
  }

  /** Aborted when the handle is retired or closed (e.g. its recovery on reconnect stops retrying). */
  get closed(): AbortSignal {
    return this.closing.signal;
  }

  /**
   * The handle is replaced (its terminal's row changed: a rebuilt handle takes over) or withdrawn (the terminal was
   * disabled, deleted or moved away) while its tunnel stays up: from now on it takes no new command (`run` refuses,
   * `closed` aborts), and its driver closes once the command running in the terminal's queue (on this driver or not)
   * has ended, before any command waiting there starts (`KeyedSerialQueue.runNext`). So the running command ends as
   * the terminal answers, within its own timeouts, instead of being cut to `unknown`; and the next command, on the
   * rebuilt handle's driver, starts only once this driver has let go of the terminal: one Joinproto terminal takes one
   * connection, and two drivers never talk to it at once. Resolves once the driver is closed. `close` still closes it
   * at once (the tunnel went away meanwhile).
   */
  retire(): Promise<void> {
    this.closing.abort();
    return (this.retired ??= this.driverClosed ?? this.queue.runNext(this.row.id, () => this.closeDriver()));
  }

  /** Closes the handle and its driver now: a command running on it is cut (a payment becomes `unknown`, and is recovered). For a tunnel that is gone, and shutdown. */
  close(): Promise<void> {
    this.closing.abort();
    return this.closeDriver();
  }

  private closeDriver(): Promise<void> {
    this.driverClosed ??= this.driver ? this.driver.close().catch(() => undefined) : Promise.resolve();
    return this.driverClosed;
  }
}
