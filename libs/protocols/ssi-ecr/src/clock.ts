import { SsiEcrError } from './errors';

/** Time source and timer, injectable so tests run without real waits. */
export interface Clock {
  now(): number;
  /** Schedules `fn` after `ms`; returns a cancel function. */
  setTimer(fn: () => void, ms: number): () => void;
}

export const systemClock: Clock = {
  now: () => Date.now(),
  setTimer: (fn, ms) => {
    const handle = setTimeout(fn, ms);
    return () => clearTimeout(handle);
  },
};

/** Waits `ms`; an abort of `signal` ends the wait at once (the caller then checks `signal.aborted`). */
export function sleep(clock: Clock, ms: number, signal?: AbortSignal): Promise<void> {
  return new Promise((resolve) => {
    if (signal?.aborted) return resolve();
    const done = () => {
      cancel();
      signal?.removeEventListener('abort', done);
      resolve();
    };
    const cancel = clock.setTimer(done, Math.max(0, ms));
    signal?.addEventListener('abort', done, { once: true });
  });
}

/** Delay before retry number `attempt` (0-based). */
export type Backoff = (attempt: number) => number;

/** Exponential backoff capped at `maxMs`. */
export function exponentialBackoff(initialMs: number, maxMs: number, factor = 1.5): Backoff {
  return (attempt) => Math.min(maxMs, Math.round(initialMs * factor ** attempt));
}

/** Races `promise` against a timer; rejects with TIMEOUT. */
export function withTimeout<T>(clock: Clock, promise: Promise<T>, ms: number, what: string): Promise<T> {
  return new Promise<T>((resolve, reject) => {
    const cancel = clock.setTimer(() => reject(new SsiEcrError('TIMEOUT', `${what} timed out after ${ms} ms`, { context: { timeoutMs: ms } })), ms);
    promise.then(
      (value) => {
        cancel();
        resolve(value);
      },
      (error: unknown) => {
        cancel();
        reject(error);
      },
    );
  });
}
