/** A queue already holds its limit of tasks (running + waiting); nothing was started. */
export class QueueFullError extends Error {
  override readonly name = 'QueueFullError';
}

export interface SerialQueueOptions {
  /** Tasks one key may hold, running and waiting; one more is refused with QueueFullError. Default: unbounded. */
  limit?: number;
}

interface Lane {
  /** Tasks not started yet, in the order they start: those of `runNext` first. */
  waiting: Array<() => void>;
  /** How many tasks at the front of `waiting` came from `runNext`. */
  next: number;
  running: boolean;
  /** Tasks running and waiting. */
  depth: number;
}

/**
 * One FIFO per key: a task starts when every task queued before it under the same key has settled
 * (fulfilled or rejected); keys do not wait for each other. An idle key holds no memory. Used for "one
 * command at a time per terminal" (device connector, OperationCommandHandler) and for "one handshake or
 * reconcile at a time per agent" (TerminalHub). `runNext` jumps the line: its task starts as soon as the
 * task running now has settled (the device connector closes a replaced terminal driver so, after the command
 * running on it and before the next command of the terminal starts on the new driver).
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
    const lane = this.lanes.get(key);
    if (lane && lane.depth >= this.limit) return Promise.reject(new QueueFullError(`${lane.depth} tasks already queued`));
    return this.enqueue(key, fn, false);
  }

  /**
   * Runs `fn` as soon as the task running under `key` (if any) has settled, before every task waiting there
   * (after the `runNext` tasks queued before it), and settles as `fn` does. Never refused: it counts in `depth`
   * but not against `limit`.
   */
  runNext<T>(key: string, fn: () => Promise<T>): Promise<T> {
    return this.enqueue(key, fn, true);
  }

  private enqueue<T>(key: string, fn: () => Promise<T>, first: boolean): Promise<T> {
    let lane = this.lanes.get(key);
    if (!lane) {
      lane = { waiting: [], next: 0, running: false, depth: 0 };
      this.lanes.set(key, lane);
    }
    const current = lane;
    current.depth += 1;
    return new Promise<T>((resolve, reject) => {
      const start = () => {
        current.running = true;
        // Never inside run(): `fn` starts on a later tick, as it does behind other tasks.
        const settled = Promise.resolve()
          .then(fn)
          .finally(() => this.settle(key, current));
        settled.then(resolve, reject);
      };
      if (!current.running) start();
      else if (first) current.waiting.splice(current.next++, 0, start);
      else current.waiting.push(start);
    });
  }

  /** The running task of `lane` settled: the next one starts, or the idle key is forgotten. */
  private settle(key: string, lane: Lane): void {
    lane.depth -= 1;
    lane.running = false;
    const next = lane.waiting.shift();
    if (next) {
      if (lane.next > 0) lane.next -= 1;
      next();
    } else if (lane.depth === 0 && this.lanes.get(key) === lane) {
      this.lanes.delete(key);
    }
  }
}
