import { type RecoveryPassOutcome, type RecoveryPassReport, type RecoveryRetryPolicy, TerminalRecovery } from './terminal-recovery';

const clean: RecoveryPassReport = { neverSent: 0, leftPending: 0, markedUnknown: 1, recovered: 1, stillUnknown: 0 };
const undecided: RecoveryPassReport = { neverSent: 0, leftPending: 0, markedUnknown: 1, recovered: 0, stillUnknown: 1 };

/** A recovery whose passes the test answers one by one (`next`), on jest's fake timers. */
function rig(policy: RecoveryRetryPolicy = { delayMs: (n) => 1_000 * n, undecidedRetries: 2 }) {
  const closing = new AbortController();
  const passes: Array<{ resolve(report: RecoveryPassReport): void; reject(error: Error): void; signal: AbortSignal }> = [];
  const outcomes: RecoveryPassOutcome[] = [];
  let held = true;
  const sut = new TerminalRecovery({
    pass: (signal) => new Promise((resolve, reject) => passes.push({ resolve, reject, signal })),
    held: () => held,
    closed: closing.signal,
    policy: () => policy,
    onPass: (outcome) => outcomes.push(outcome),
  });
  return {
    sut,
    passes,
    outcomes,
    close: () => closing.abort(),
    letGo: () => (held = false),
    /** Settles the pass in flight and lets the recovery act on it. */
    async answer(with_: RecoveryPassReport | Error) {
      const pass = passes.at(-1)!;
      if (with_ instanceof Error) pass.reject(with_);
      else pass.resolve(with_);
      await sut.running;
    },
  };
}

describe(TerminalRecovery.name, () => {
  beforeEach(() => jest.useFakeTimers());
  afterEach(() => jest.useRealTimers());

  it('retries a failed pass with the backoff until one is clean, then rests', async () => {
    const r = rig();
    r.sut.run('reconnect');
    await r.answer(new Error('Connection terminated unexpectedly'));
    expect(r.outcomes.at(-1)).toMatchObject({ trigger: 'reconnect', retryInMs: 1_000, error: { message: 'Connection terminated unexpectedly' } });
    await jest.advanceTimersByTimeAsync(999);
    expect(r.passes).toHaveLength(1);
    await jest.advanceTimersByTimeAsync(1);
    expect(r.passes).toHaveLength(2);
    await r.answer(new Error('still down'));
    expect(r.outcomes.at(-1)).toMatchObject({ trigger: 'retry', retryInMs: 2_000 });
    await jest.advanceTimersByTimeAsync(2_000);
    await r.answer(clean);
    expect(r.outcomes.at(-1)).toEqual({ trigger: 'retry', retryInMs: undefined, report: clean });
    expect(r.sut.settled).toBe(true);
    await jest.advanceTimersByTimeAsync(60_000);
    expect(r.passes).toHaveLength(3);
    // A later failure starts the backoff from the beginning again.
    r.sut.run('refusal');
    await r.answer(new Error('down again'));
    expect(r.outcomes.at(-1)).toMatchObject({ trigger: 'refusal', retryInMs: 1_000 });
  });

  it('runs one pass at a time: a trigger while one is queued or running does nothing', async () => {
    const r = rig();
    r.sut.run('reconnect');
    r.sut.run('refusal');
    r.sut.run('retry');
    expect(r.passes).toHaveLength(1);
    await r.answer(clean);
    expect(r.outcomes).toHaveLength(1);
  });

  it('brings a scheduled retry forward when an operation is refused, without running it again later', async () => {
    const r = rig({ delayMs: () => 3_600_000, undecidedRetries: 2 });
    r.sut.run('reconnect');
    await r.answer(new Error('Connection terminated unexpectedly'));
    expect(r.sut.settled).toBe(false);
    r.sut.run('refusal');
    expect(r.passes).toHaveLength(2);
    await r.answer(clean);
    await jest.advanceTimersByTimeAsync(3_600_000);
    expect(r.passes).toHaveLength(2);
    expect(r.outcomes.map((o) => o.trigger)).toEqual(['reconnect', 'refusal']);
  });

  it('asks again after a pass left an operation undecided, at most undecidedRetries times in a row', async () => {
    const r = rig();
    r.sut.run('reconnect');
    await r.answer(undecided);
    await jest.advanceTimersByTimeAsync(1_000);
    await r.answer(undecided);
    await jest.advanceTimersByTimeAsync(2_000);
    await r.answer(undecided);
    expect(r.outcomes.map((o) => o.retryInMs)).toEqual([1_000, 2_000, undefined]);
    expect(r.sut.settled).toBe(true);
    await jest.advanceTimersByTimeAsync(60_000);
    expect(r.passes).toHaveLength(3);
  });

  it('stops when the terminal is let go: a scheduled retry never runs, a pass in flight is aborted and not reported', async () => {
    const r = rig();
    r.sut.run('reconnect');
    await r.answer(new Error('Connection terminated unexpectedly'));
    r.close();
    expect(r.sut.settled).toBe(true);
    await jest.advanceTimersByTimeAsync(60_000);
    expect(r.passes).toHaveLength(1);
    r.sut.run('refusal');
    expect(r.passes).toHaveLength(1);

    const s = rig();
    s.sut.run('reconnect');
    s.close();
    expect(s.passes[0]!.signal.aborted).toBe(true);
    await s.answer(new Error('driver closed'));
    expect(s.outcomes).toEqual([]);
    await jest.advanceTimersByTimeAsync(60_000);
    expect(s.passes).toHaveLength(1);
  });

  it('schedules no retry once its session no longer holds the terminal', async () => {
    const r = rig();
    r.sut.run('reconnect');
    r.letGo();
    await r.answer(new Error('Connection terminated unexpectedly'));
    expect(r.outcomes.at(-1)).toMatchObject({ retryInMs: undefined });
    expect(r.sut.settled).toBe(true);
    r.sut.run('refusal');
    expect(r.passes).toHaveLength(1);
  });

  it('schedules a first pass as a retry when the link did not open, unless one ran already', async () => {
    const r = rig();
    r.sut.retryLater();
    expect(r.passes).toHaveLength(0);
    await jest.advanceTimersByTimeAsync(1_000);
    expect(r.passes).toHaveLength(1);
    await r.answer(clean);
    r.sut.retryLater();
    await jest.advanceTimersByTimeAsync(60_000);
    expect(r.passes).toHaveLength(1);
  });
});
