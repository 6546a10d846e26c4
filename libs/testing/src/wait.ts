import { once, type EventEmitter } from 'node:events';
import { inspect } from 'node:util';

/**
 * Condition waits for tests: never sleep for a fixed time, wait for the thing that proves the
 * state was reached (a row, a message, an event), with a deadline and a message naming what was
 * awaited. The timer is captured at load, so a test that installs jest fake timers later still
 * polls in real time.
 */
const realSetTimeout = globalThis.setTimeout;
const realClearTimeout = globalThis.clearTimeout;

export interface WaitForOptions {
  /** Give up after this long (default 10 s). */
  timeoutMs?: number;
  /**
   * What is awaited, for the failure message ("operation approved", "terminal ONLINE"); a function
   * is called at the failure, to name the state reached ("412 of 500 completed").
   */
  what?: string | (() => string);
  /** Pause between two checks (default 20 ms). */
  intervalMs?: number;
  /**
   * Treat an error thrown by the condition as "not yet" (e.g. ECONNREFUSED while a process comes up,
   * a query while the database restarts); the last one is named on timeout. Default false: it fails the wait.
   */
  ignoreErrors?: boolean;
}

type Falsy = undefined | null | false | 0 | '';

function describeValue(value: unknown): string {
  return inspect(value, { depth: 3, breakLength: Infinity, maxStringLength: 200 }).slice(0, 400);
}

/**
 * Checks `condition` until it returns a truthy value, and resolves with that value. An error thrown
 * by the condition fails the wait at once, unless `ignoreErrors`. On timeout, the error names `what`
 * and the last value (or error) seen.
 */
export async function waitFor<T>(condition: () => T | Falsy | Promise<T | Falsy>, options: WaitForOptions = {}): Promise<Exclude<T, Falsy>> {
  const { timeoutMs = 10_000, what = 'condition', intervalMs = 20, ignoreErrors = false } = options;
  const deadline = Date.now() + timeoutMs;
  for (let checks = 1; ; checks++) {
    let last: string;
    try {
      const value = await condition();
      if (value) return value as Exclude<T, Falsy>;
      last = `last value ${describeValue(value)}`;
    } catch (error) {
      if (!ignoreErrors) throw error;
      last = `last error ${(error as Error)?.message ?? describeValue(error)}`;
    }
    if (Date.now() >= deadline) {
      const awaited = typeof what === 'function' ? what() : what;
      throw new Error(`timed out after ${timeoutMs} ms waiting for ${awaited} (${checks} checks, ${last})`);
    }
    await new Promise((resolve) => realSetTimeout(resolve, Math.min(intervalMs, Math.max(1, deadline - Date.now()))));
  }
}

/** Resolves with `promise`, or fails after `timeoutMs` naming `what`. The timer never outlives the wait. */
export async function withTimeout<T>(promise: Promise<T>, options: Pick<WaitForOptions, 'timeoutMs' | 'what'> = {}): Promise<T> {
  const { timeoutMs = 10_000, what = 'promise' } = options;
  let timer: ReturnType<typeof setTimeout> | undefined;
  const expired = new Promise<never>((_, reject) => {
    timer = realSetTimeout(() => {
      const awaited = typeof what === 'function' ? what() : what;
      reject(new Error(`timed out after ${timeoutMs} ms waiting for ${awaited}`));
    }, timeoutMs);
  });
  try {
    return await Promise.race([promise, expired]);
  } finally {
    realClearTimeout(timer);
  }
}

/** The arguments of the next `event` of `emitter` (node's events.once, bounded by a deadline). */
export function nextEvent<T extends unknown[] = unknown[]>(
  emitter: EventEmitter,
  event: string,
  options: Pick<WaitForOptions, 'timeoutMs' | 'what'> = {},
): Promise<T> {
  const controller = new AbortController();
  return withTimeout(once(emitter, event, { signal: controller.signal }) as Promise<T>, {
    what: `'${event}' event`,
    ...options,
  }).finally(() => controller.abort());
}
