export type Unsubscribe = () => void;

/** Runs `fn` on the microtask queue (not faked by jest timers, unlike `queueMicrotask`). */
export function defer(fn: () => void): void {
  void Promise.resolve().then(fn);
}

/**
 * A minimal listener set: no EventEmitter in libs (STYLE C7). A *sticky* set fires at most once and
 * replays its arguments, asynchronously, to listeners added afterwards (like a settled promise), so
 * `stream.onClose(cb)` after the close still learns why.
 */
export class Listeners<A extends unknown[]> {
  private readonly callbacks = new Set<(...args: A) => void>();
  private fired: A | undefined;

  constructor(private readonly sticky = false) {}

  get hasListeners(): boolean {
    return this.callbacks.size > 0;
  }

  add(callback: (...args: A) => void): Unsubscribe {
    const fired = this.fired;
    if (fired) {
      defer(() => callback(...fired));
      return () => undefined;
    }
    this.callbacks.add(callback);
    return () => {
      this.callbacks.delete(callback);
    };
  }

  emit(...args: A): void {
    if (this.fired) return;
    if (this.sticky) this.fired = args;
    const callbacks = [...this.callbacks];
    if (this.sticky) this.callbacks.clear();
    for (const callback of callbacks) callback(...args);
  }
}
