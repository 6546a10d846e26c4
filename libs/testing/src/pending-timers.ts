import { createHook } from 'node:async_hooks';

/** What Node's Timeout objects (setTimeout / setInterval) expose: `_destroyed` is set once cleared or fired (not repeating). */
interface NodeTimer {
  readonly _destroyed?: boolean;
  readonly _idleTimeout?: number;
  hasRef(): boolean;
}

export interface TrackedTimers {
  /**
   * Timers set since trackTimers() that are still pending and referenced, i.e. that keep the process alive, each as
   * `<ms> ms timer set at` and the frames that set it (outside Node's own), so a failure names their owner.
   */
  pending(): string[];
  /** Stops tracking. */
  stop(): void;
}

/** A frame of the test runner's own code (jest's packages), which shares the process when jest runs a file in band. */
const RUNNER_FRAME = /[\\/]node_modules[\\/](@jest[\\/]|jest-[^\\/]+[\\/]|jest[\\/])/;

/**
 * Whether a timer was set by the test runner itself: every frame of its stack (outside Node's own) is jest's. Its
 * reporter debounces its status line with a 100 ms timer in the test's own process when the file runs in band (CI:
 * a `bootstrap.int-spec` of the settlement worker failed on it), and that timer is not the code under test.
 */
export function setByTestRunner(stack: string): boolean {
  const frames = stack.split('\n').filter((frame) => frame.trim().length > 0);
  return frames.length > 0 && frames.every((frame) => RUNNER_FRAME.test(frame));
}

/**
 * Tracks the timers this process sets from now on (async_hooks), to check that a close() leaves none behind: a timer
 * still pending after everything closed holds the process open (jest: "did not exit one second after the test run
 * has completed"; a SIGTERM'd service: not gone within its grace period). Read synchronously, no wait: a timer
 * cleared or fired is `_destroyed` at once. Unreferenced timers do not hold the process and are not reported, nor are
 * the test runner's own (`setByTestRunner`).
 */
export function trackTimers(): TrackedTimers {
  const timers = new Map<number, { timer: NodeTimer; stack: string }>();
  const hook = createHook({
    init(asyncId, type, _triggerAsyncId, resource) {
      if (type !== 'Timeout') return;
      // Without the message line and this hook's own frame.
      const frames = (new Error().stack ?? '').split('\n').slice(2);
      const stack = frames
        .filter((frame) => !/\((node:|internal\/)|at node:/.test(frame))
        .slice(0, 8)
        .join('\n');
      if (setByTestRunner(stack)) return;
      timers.set(asyncId, { timer: resource as NodeTimer, stack });
    },
  });
  hook.enable();
  return {
    pending: () => {
      const open: string[] = [];
      for (const [asyncId, { timer, stack }] of timers) {
        if (timer._destroyed) timers.delete(asyncId);
        else if (timer.hasRef()) open.push(`${timer._idleTimeout ?? '?'} ms timer set at\n${stack}`);
      }
      return open;
    },
    stop: () => {
      hook.disable();
      timers.clear();
    },
  };
}
