/**
 * A page's reads of the API and the live events it applies in place, kept in order. A read's answer is the state at
 * some moment after it started, so it may predate events the page already applied: applied as it is, it put an older
 * state back (a terminal shown offline after its `terminal.online` arrived while the Fleet was loading). Here:
 * - an answer is applied only when no later read started meanwhile (that one's answer is newer: two reads started by
 *   two events could be answered out of order);
 * - an event applied in place (`patch`) is applied again after the answer of every read in flight, in order: an
 *   answer that already holds it is set to the same state, one that predates it is brought up to date, and a later
 *   change has its own event, which comes after.
 */
export class FreshReads {
  private started = 0;
  /** The patches applied since each read in flight started, by read. */
  private readonly inFlight = new Map<number, Array<() => void>>();

  /** Runs `read` and applies its answer (`apply`) unless a later read started meanwhile. Rejects as `read` does. */
  async load<T>(read: () => Promise<T>, apply: (answer: T) => void): Promise<void> {
    const mine = ++this.started;
    const patches: Array<() => void> = [];
    this.inFlight.set(mine, patches);
    try {
      const answer = await read();
      if (mine !== this.started) return;
      apply(answer);
      for (const patch of patches) patch();
    } finally {
      this.inFlight.delete(mine);
    }
  }

  /** Applies a live event's change now, and again after the answer of each read in flight. */
  patch(change: () => void): void {
    change();
    for (const patches of this.inFlight.values()) patches.push(change);
  }
}
