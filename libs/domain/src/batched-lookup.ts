export interface BatchedLookupOptions {
  /** Keys per load at most (default 500); more wait for the next load. */
  maxBatch?: number;
}

interface Waiter<V> {
  resolve: (value: V | undefined) => void;
  reject: (error: unknown) => void;
}

/**
 * Reads by key, several keys per read: the keys asked for in one tick, and those asked for while a read is
 * running, go to the next read together (at most `maxBatch`; the same key asked twice is read once). One
 * read at a time, so under load the batches grow by themselves and at rest a key is read at once (after
 * the tick). Made for lookups that a burst repeats with different keys (a reconnect storm's credential
 * checks): on a loopback socket a round trip's writes and wake-ups, not the rows, are what costs
 * (bench/README.md). `load` answers the keys it found; a key it leaves out resolves `undefined`; a failed
 * load rejects every key of its batch (none is retried here). Nothing is cached: each key is read after
 * it was asked for.
 */
export class BatchedLookup<K, V> {
  private readonly waiting = new Map<K, Array<Waiter<V>>>();
  private readonly maxBatch: number;
  private running = false;
  private scheduled = false;

  constructor(
    private readonly load: (keys: K[]) => Promise<Map<K, V>>,
    options: BatchedLookupOptions = {},
  ) {
    this.maxBatch = options.maxBatch ?? 500;
  }

  get(key: K): Promise<V | undefined> {
    return new Promise<V | undefined>((resolve, reject) => {
      const list = this.waiting.get(key);
      if (list) list.push({ resolve, reject });
      else this.waiting.set(key, [{ resolve, reject }]);
      this.schedule();
    });
  }

  private schedule(): void {
    if (this.running || this.scheduled || this.waiting.size === 0) return;
    this.scheduled = true;
    setImmediate(() => {
      this.scheduled = false;
      void this.next();
    });
  }

  private async next(): Promise<void> {
    if (this.running || this.waiting.size === 0) return;
    this.running = true;
    const batch = new Map<K, Array<Waiter<V>>>();
    for (const [key, waiters] of this.waiting) {
      if (batch.size === this.maxBatch) break;
      batch.set(key, waiters);
    }
    for (const key of batch.keys()) this.waiting.delete(key);
    try {
      const found = await this.load([...batch.keys()]);
      for (const [key, waiters] of batch) for (const waiter of waiters) waiter.resolve(found.get(key));
    } catch (error) {
      for (const waiters of batch.values()) for (const waiter of waiters) waiter.reject(error);
    } finally {
      this.running = false;
      this.schedule();
    }
  }
}
