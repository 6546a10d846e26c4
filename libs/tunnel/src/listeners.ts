export type Unsubscribe = () => void;

/** Runs `fn` on the microtask queue (not faked by jest timers, unlike `queueMicrotask`). */
export function defer(fn: () => void): void {
  void Promise.resolve().then(fn);
}

/**
 * Calls `callback` with `args` on the microtask queue, for a listener added after its once-only event happened (like
 * a settled promise); the returned unsubscribe cancels the call if it has not run yet.
 */
export function replay<A extends unknown[]>(callback: (...args: A) => void, ...args: A): Unsubscribe {
  let subscribed = true;
  defer(() => subscribed && callback(...args));
  return () => {
    subscribed = false;
  };
}

/**
 * A minimal listener set: no EventEmitter in libs (STYLE C7). A *sticky* set fires at most once and
 * replays its arguments, asynchronously, to listeners added afterwards (like a settled promise), so
 * `stream.onClose(cb)` after the close still learns why.
 */
export class Listeners<A extends unknown[]> {
  /** Created on the first `add`: most of a tunnel's listener sets stay empty, and a connector holds thousands of tunnels. */
  private callbacks: Set<(...args: A) => void> | undefined;
  private fired: A | undefined;

  constructor(private readonly sticky = false) {}

  get hasListeners(): boolean {
    return (this.callbacks?.size ?? 0) > 0;
  }

  add(callback: (...args: A) => void): Unsubscribe {
    const fired = this.fired;
    if (fired) return replay(callback, ...fired);
    const callbacks = (this.callbacks ??= new Set());
    callbacks.add(callback);
    return () => {
      callbacks.delete(callback);
    };
  }

  emit(...args: A): void {
    if (this.fired) return;
    if (this.sticky) this.fired = args;
    if (!this.callbacks) return;
    const callbacks = [...this.callbacks];
    if (this.sticky) this.callbacks = undefined;
    for (const callback of callbacks) callback(...args);
  }
}
