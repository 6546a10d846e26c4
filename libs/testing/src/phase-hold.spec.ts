import { PhaseHold } from './phase-hold';

describe(PhaseHold.name, () => {
  it('lets a command through at once at a phase it does not hold', async () => {
    const sut = new PhaseHold();
    sut.at('card');
    await expect(sut.pass('answer')).resolves.toBe(true);
    expect(sut.reached('card')).toBe(false);
  });

  it('holds a command at its phase until release, and reports it reached meanwhile', async () => {
    const sut = new PhaseHold();
    sut.at('received');
    let passed: boolean | undefined;
    const held = sut.pass('received').then((go) => (passed = go));
    await Promise.resolve();
    expect([sut.reached('received'), passed]).toEqual([true, undefined]);
    sut.release();
    await held;
    expect([sut.reached('received'), passed, sut.holding]).toEqual([false, true, undefined]);
  });

  it('ends a hold with false when its link drops, before any release', async () => {
    const sut = new PhaseHold();
    sut.at('answer');
    const link = new AbortController();
    const held = sut.pass('answer', link.signal);
    link.abort();
    await expect(held).resolves.toBe(false);
    expect(sut.reached('answer')).toBe(false);
  });

  it('does not hold a command whose link is already gone', async () => {
    const sut = new PhaseHold();
    sut.at('card');
    await expect(sut.pass('card', AbortSignal.abort())).resolves.toBe(false);
    expect(sut.reached('card')).toBe(false);
  });

  it('parks a clock-driven simulator at its phase until release', () => {
    const sut = new PhaseHold();
    expect(sut.park('card')).toBe(false);
    sut.at('card');
    expect([sut.park('answer'), sut.park('card'), sut.parked('card'), sut.reached('card')]).toEqual([false, true, true, true]);
    sut.release();
    expect([sut.parked('card'), sut.reached('card'), sut.park('card')]).toEqual([false, false, false]);
  });
});
