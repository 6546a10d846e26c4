import { CLOSE_DAY_REDO_MS, settlementRetryDelayMs } from './retry';

describe(settlementRetryDelayMs.name, () => {
  const policy = { baseMs: 30_000, maxMs: 600_000 };

  it.each<[string, Parameters<typeof settlementRetryDelayMs>[0], number]>([
    ['a close-day that did nothing, first time → a new one soon', { code: 'CLOSE_DAY_FAILED', retries: 1 }, CLOSE_DAY_REDO_MS],
    ['… also after earlier busy deferrals', { code: 'CLOSE_DAY_FAILED', retries: 3, previousCode: 'TERMINAL_BUSY' }, CLOSE_DAY_REDO_MS],
    ['a close-day that did nothing twice in a row → the normal backoff', { code: 'CLOSE_DAY_FAILED', retries: 2, previousCode: 'CLOSE_DAY_FAILED' }, 60_000],
    ['an outcome still unknown → the normal backoff (recovery decides; never re-sent)', { code: 'OUTCOME_UNKNOWN', retries: 1 }, 30_000],
    ['an offline terminal → the normal backoff', { code: 'TERMINAL_OFFLINE', retries: 2, previousCode: 'TERMINAL_OFFLINE' }, 60_000],
    ['the backoff is capped', { code: 'TERMINAL_BUSY', retries: 10 }, 600_000],
  ])('%s', (_, deferral, expected) => {
    expect(settlementRetryDelayMs(deferral, policy)).toBe(expected);
  });

  it('never waits longer than the normal backoff (a short configured base stays short)', () => {
    expect(settlementRetryDelayMs({ code: 'CLOSE_DAY_FAILED', retries: 1 }, { baseMs: 500, maxMs: 2_000 })).toBe(500);
  });
});
