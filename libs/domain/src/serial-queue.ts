/** A queue already holds its limit of tasks (running + waiting); nothing was started. */
export class QueueFullError extends Error {
  override readonly name = 'QueueFullError';
}

export interface SerialQueueOptions {
  /** Tasks one key may hold, running and waiting; one more is refused with QueueFullError. Default: unbounded. */
  limit?: number;
}

interface Lane {
  tail: Promise<unknown>;
  depth: number;
}

/**
 * One FIFO per key: a task starts when every task queued before it under the same key has settled
 * (fulfilled or rejected); keys do not wait for each other. An idle key holds no memory. Used for "one
 * command at a time per terminal" (device connector, OperationCommandHandler) and for "one handshake or
 * reconcile at a time per agent" (TerminalHub).
 */
export class KeyedSerialQueue {
  private readonly lanes = new Map<string, Lane>();
  private readonly limit: number;

  constructor(options: SerialQueueOptions = {}) {
    this.limit = options.limit ?? Infinity;
  }

  /** Tasks of `key` running or waiting. */
  depth(key: string): number {
    return this.lanes.get(key)?.depth ?? 0;
  }

  /** true when one more task for `key` would be refused with QueueFullError. */
  isFull(key: string): boolean {
    return this.depth(key) >= this.limit;
  }

  /**
   * Runs `fn` after the tasks queued before it under `key`, and settles as `fn` does. Rejects at once,
   * without running `fn`, with QueueFullError when `key` already holds `limit` tasks.
   */
  run<T>(key: string, fn: () => Promise<T>): Promise<T> {
    let lane = this.lanes.get(key);
    if (lane && lane.depth >= this.limit) return Promise.reject(new QueueFullError(`${lane.depth} tasks already queued`));
    if (!lane) {
      lane = { tail: Promise.resolve(), depth: 0 };
      this.lanes.set(key, lane);
    }
    const current = lane;
    current.depth += 1;
    const result = current.tail.then(fn).finally(() => {
      current.depth -= 1;
      if (current.depth === 0 && this.lanes.get(key) === current) this.lanes.delete(key);
    });
    current.tail = result.catch(() => undefined);
    return result;
  }
}
