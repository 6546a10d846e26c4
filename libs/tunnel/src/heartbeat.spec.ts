import { Heartbeat, type HeartbeatHooks } from './heartbeat';
import { ManualClock } from './testing/manual-clock';
import type { TimerApi } from './timers';

/** A ManualClock that counts its pending timers. */
class CountingClock extends ManualClock {
  readonly pending = new Set<unknown>();

  override setTimeout(callback: () => void, ms: number): unknown {
    const handle: unknown = super.setTimeout(() => {
      this.pending.delete(handle);
      callback();
    }, ms);
    this.pending.add(handle);
    return handle;
  }

  override clearTimeout(handle: unknown): void {
    this.pending.delete(handle);
    super.clearTimeout(handle);
  }
}

function recorder(clock: TimerApi): HeartbeatHooks & { pings: number[]; lost: number[] } {
  const start = clock.now();
  const pings: number[] = [];
  const lost: number[] = [];
  return {
    pings,
    lost,
    heartbeatPing: () => pings.push(clock.now() - start),
    heartbeatLost: (silentMs) => lost.push(silentMs),
  };
}

const options = { intervalMs: 1600, maxMissed: 2 };

describe(Heartbeat.name, () => {
  it('turns the heartbeats of an interval on one timer (issue 19: a Timeout and a closure per idle tunnel)', () => {
    const clock = new CountingClock();
    const hooks = Array.from({ length: 200 }, () => recorder(clock));
    const beats = hooks.map((h) => new Heartbeat(options, clock, h));
    for (const beat of beats) beat.start();
    expect(clock.pending.size).toBe(1);
    clock.advance(2 * options.intervalMs);
    expect(clock.pending.size).toBe(1);
    expect(hooks.every((h) => h.pings.length === 2 && h.lost.length === 0)).toBe(true);
    for (const beat of beats) beat.stop();
    expect(clock.pending.size).toBe(0);
  });

  it('pings one interval after its start (within a sixteenth) and every interval after, apart from heartbeats started at other times', () => {
    const clock = new ManualClock();
    const first = recorder(clock);
    new Heartbeat(options, clock, first).start();
    clock.advance(800);
    const second = recorder(clock);
    const beat = new Heartbeat(options, clock, second);
    beat.start();
    clock.advance(800);
    expect(first.pings).toEqual([1600]);
    expect(second.pings).toEqual([]);
    beat.markAlive();
    clock.advance(800);
    expect(second.pings).toHaveLength(1);
    expect(second.pings[0]).toBeGreaterThan(1500);
    expect(second.pings[0]).toBeLessThanOrEqual(1600);
    clock.advance(3200);
    expect(first.pings).toEqual([1600, 3200]);
    expect(first.lost).toEqual([4800]);
  });

  it('stays alive while frames arrive, and declares the peer lost after maxMissed + 1 silent intervals', () => {
    const clock = new ManualClock();
    const hooks = recorder(clock);
    const beat = new Heartbeat(options, clock, hooks);
    beat.start();
    for (let i = 0; i < 10; i++) {
      clock.advance(1000);
      beat.markAlive();
    }
    expect(hooks.lost).toEqual([]);
    expect(hooks.pings.length).toBeGreaterThanOrEqual(5);
    clock.advance(3 * options.intervalMs);
    expect(hooks.lost).toHaveLength(1);
    expect(hooks.lost[0]).toBeGreaterThanOrEqual(2 * options.intervalMs);
    expect(hooks.lost[0]).toBeLessThanOrEqual(3 * options.intervalMs);
  });

  it('after a late timer (a busy event loop), ticks once instead of firing the missed slots in a burst', () => {
    let time = 0;
    const due: Array<{ at: number; callback: () => void }> = [];
    const clock: TimerApi = {
      now: () => time,
      setTimeout: (callback, ms) => due.push({ at: time + ms, callback }),
      clearTimeout: () => undefined,
    };
    const hooks = recorder(clock);
    new Heartbeat(options, clock, hooks).start();
    // The event loop was blocked for three intervals: the wheel's timer fires late, once.
    time = 3 * options.intervalMs;
    for (let fired = 0; fired < 16 && due.length > 0; fired++) {
      const next = due.shift()!;
      time = Math.max(time, next.at);
      next.callback();
    }
    expect(hooks.lost).toEqual([]);
    expect(hooks.pings.length).toBeLessThanOrEqual(1);
  });
});
