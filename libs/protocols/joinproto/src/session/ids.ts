/**
 * Source of DF01 ids (spec 1.2.0: a unique id of every command). Ids must be unique per terminal and never
 * reused while an answer to them may still come; persist the counter across restarts (e.g. a DB sequence).
 */
export interface IdAllocator {
  next(): string | Promise<string>;
  /**
   * Called with the id the session settled on (a valid id not in doubt: `next` may be asked again until one is),
   * before the frame carrying it is written; a rejection aborts the command unsent. The place to record which id a
   * command goes out with (the connector's claim stores it for recovery with command 95).
   */
  accepted?(id: string): void | Promise<void>;
}

export interface SequentialIdOptions {
  /** First number to hand out (e.g. the persisted counter + 1). Default 1. */
  readonly start?: number;
  /** Called with the next number to hand out, to persist it. */
  readonly onAdvance?: (next: number) => void;
}

const ID_SPACE = 1_000_000;

/** Six-digit ids 000001..999999, wrapping to 000001. The session skips ids still in doubt. */
export function createSequentialIdAllocator(options: SequentialIdOptions = {}): IdAllocator {
  let next = normalise(options.start ?? 1);
  return {
    next() {
      const id = String(next).padStart(6, '0');
      next = normalise(next + 1);
      options.onAdvance?.(next);
      return id;
    },
  };
}

function normalise(value: number): number {
  const wrapped = Math.trunc(value) % ID_SPACE;
  return wrapped <= 0 ? 1 : wrapped;
}
