/** Clock and timers, injectable so heartbeats and timeouts are testable without waiting. */
export interface TimerApi {
  now(): number;
  setTimeout(callback: () => void, ms: number): unknown;
  clearTimeout(handle: unknown): void;
}

/** The global timers, looked up at call time so jest fake timers apply. */
export const systemTimers: TimerApi = {
  now: () => Date.now(),
  setTimeout: (callback, ms) => setTimeout(callback, ms),
  clearTimeout: (handle) => clearTimeout(handle as ReturnType<typeof setTimeout>),
};
