/**
 * The phases of a payment command on a terminal simulator at which a fault test can hold it (issue 15: kill
 * or cut "at random points of an operation" without racing the terminal's script):
 * - `received`: the command reached the terminal's socket but the terminal has not read it yet (what is
 *   behind it on that link waits too); a link that drops meanwhile loses it;
 * - `card`: the terminal accepted the command and waits for the card (nothing decided, nothing logged);
 * - `answer`: the terminal decided and logged the outcome, but its answer has not left (a link that drops
 *   meanwhile loses the answer; the journal keeps it for recovery).
 */
export type HoldPhase = 'received' | 'card' | 'answer';

export const HOLD_PHASES: readonly HoldPhase[] = ['received', 'card', 'answer'];

/**
 * Test control shared by the terminal simulators: `at(phase)` holds the next payment commands at `phase`
 * until `release()`. A simulator that awaits calls `pass(phase)` where the phase is reached; one driven by
 * a clock calls `park(phase)` on each tick and stays put while it answers true. `reached` tells a test that
 * a command is held there (the condition it waits for before injecting the fault).
 */
export class PhaseHold {
  private phase: HoldPhase | undefined;
  private parkedAt: HoldPhase | undefined;
  private waiters: (() => void)[] = [];
  /** Commands waiting in pass() now. */
  private held = 0;

  /** Holds payment commands at `phase` from now on, until release(). */
  at(phase: HoldPhase): void {
    this.phase = phase;
  }

  /** The phase commands are held at (undefined: none). */
  get holding(): HoldPhase | undefined {
    return this.phase;
  }

  /** True once a command is held at `phase`. */
  reached(phase: HoldPhase): boolean {
    return this.phase === phase && (this.held > 0 || this.parkedAt === phase);
  }

  /** Lets every held command go on, and holds nothing more. */
  release(): void {
    this.phase = undefined;
    this.parkedAt = undefined;
    const waiters = this.waiters;
    this.waiters = [];
    for (const resume of waiters) resume();
  }

  /** Called by a clock-driven simulator at `phase`: true = stay there (held until release()). */
  park(phase: HoldPhase): boolean {
    if (this.phase !== phase) return false;
    this.parkedAt = phase;
    return true;
  }

  /** True while a clock-driven simulator is parked at `phase`. */
  parked(phase: HoldPhase): boolean {
    return this.parkedAt === phase;
  }

  /**
   * Called by a simulator at `phase`: resolves true at once unless held there, else true on release(), or
   * false as soon as `signal` aborts (the link the command came on dropped: the held command is lost).
   */
  async pass(phase: HoldPhase, signal?: AbortSignal): Promise<boolean> {
    if (this.phase !== phase) return true;
    if (signal?.aborted) return false;
    this.held += 1;
    try {
      return await new Promise<boolean>((resolve) => {
        const onAbort = () => {
          this.waiters = this.waiters.filter((w) => w !== resume);
          resolve(false);
        };
        const resume = () => {
          signal?.removeEventListener('abort', onAbort);
          resolve(true);
        };
        this.waiters.push(resume);
        signal?.addEventListener('abort', onAbort, { once: true });
      });
    } finally {
      this.held -= 1;
    }
  }
}
