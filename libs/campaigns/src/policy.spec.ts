import {
  attemptsBefore,
  estimateEta,
  isNeverSent,
  isRetryable,
  localMinutes,
  MAX_ATTEMPTS_BEFORE_DEADLINE,
  msUntilWindow,
  nextAttempt,
  planWaves,
  waveHalts,
} from './policy';
import { CAMPAIGN_TRANSITIONS, canTransitionCampaign, canTransitionTarget, TARGET_TRANSITIONS, WAVE_TRANSITIONS } from './transition';

describe(planWaves.name, () => {
  it('puts the canary first, then waves of the given size, covering every terminal once', () => {
    expect(planWaves(10, { canary: { count: 1 }, waveSize: { count: 4 } })).toEqual([
      { index: 0, canary: true, size: 1 },
      { index: 1, canary: false, size: 4 },
      { index: 2, canary: false, size: 4 },
      { index: 3, canary: false, size: 1 },
    ]);
  });

  it('rounds percentages up and never plans an empty wave', () => {
    const waves = planWaves(2_000, { canary: { percent: 0.5 }, waveSize: { percent: 25 } });
    expect(waves.map((w) => w.size)).toEqual([10, 500, 500, 500, 490]);
    expect(planWaves(3, { canary: null, waveSize: { percent: 1 } }).map((w) => w.size)).toEqual([1, 1, 1]);
    expect(planWaves(0, { canary: { count: 5 }, waveSize: { count: 5 } })).toEqual([]);
  });

  it('caps a canary larger than the fleet at the fleet', () => {
    expect(planWaves(3, { canary: { count: 10 }, waveSize: { count: 10 } })).toEqual([{ index: 0, canary: true, size: 3 }]);
  });
});

describe(msUntilWindow.name, () => {
  const window = { start: '02:00', end: '04:00' };
  // 23:30 UTC: 02:30 in Moscow (UTC+3), 18:30 in New York (UTC-5 in March).
  const at = new Date('2026-03-01T23:30:00Z');

  it('is 0 inside the window of the store’s own zone', () => {
    expect(localMinutes(at, 'Europe/Moscow')).toBe(150);
    expect(msUntilWindow(at, 'Europe/Moscow', window)).toBe(0);
  });

  it('is the time until the window opens elsewhere (New York: 18:30 → 02:00 is 7.5 h)', () => {
    expect(msUntilWindow(at, 'America/New_York', window)).toBe(7.5 * 3_600_000);
  });

  it('handles a window across midnight and no window at all', () => {
    const night = { start: '22:00', end: '04:00' };
    expect(msUntilWindow(new Date('2026-03-01T23:30:00Z'), 'UTC', night)).toBe(0);
    expect(msUntilWindow(new Date('2026-03-02T03:59:00Z'), 'UTC', night)).toBe(0);
    expect(msUntilWindow(new Date('2026-03-02T04:00:00Z'), 'UTC', night)).toBe(18 * 3_600_000);
    expect(msUntilWindow(at, 'America/New_York', null)).toBe(0);
  });
});

describe(nextAttempt.name, () => {
  const now = new Date('2026-03-01T10:00:00Z');
  const policy = { retryDelaySeconds: 60, maxAttempts: 3 };

  it('retries until the next attempt would start after the deadline, then fails with the reason', () => {
    expect(nextAttempt(now, 5, new Date('2026-03-01T10:05:00Z'), policy, 'TERMINAL_OFFLINE')).toEqual({ retry: true, at: new Date('2026-03-01T10:01:00Z') });
    const late = nextAttempt(now, 6, new Date('2026-03-01T10:00:30Z'), policy, 'TERMINAL_OFFLINE');
    expect(late).toEqual({ retry: false, reason: 'TERMINAL_OFFLINE: still unavailable at the deadline (2026-03-01T10:00:30.000Z) after 6 attempt(s)' });
  });

  it('without a deadline, stops after maxAttempts', () => {
    expect(nextAttempt(now, 2, null, policy, 'TERMINAL_BUSY').retry).toBe(true);
    expect(nextAttempt(now, 3, null, policy, 'TERMINAL_BUSY')).toEqual({ retry: false, reason: 'TERMINAL_BUSY: still unavailable after 3 attempt(s)' });
  });

  it('retries a terminal not tried yet (recovering before its first attempt) whatever maxAttempts, until the deadline', () => {
    expect(nextAttempt(now, 0, null, { retryDelaySeconds: 60, maxAttempts: 1 }, 'TERMINAL_RECOVERING').retry).toBe(true);
    expect(nextAttempt(now, 0, new Date('2026-03-01T10:00:30Z'), policy, 'TERMINAL_RECOVERING')).toEqual({
      retry: false,
      reason: 'TERMINAL_RECOVERING: still unavailable at the deadline (2026-03-01T10:00:30.000Z) after 0 attempt(s)',
    });
  });

  it('with a deadline, stops after MAX_ATTEMPTS_BEFORE_DEADLINE attempts even before it (a campaign stored before the gateway checked)', () => {
    const far = new Date('9999-12-31T00:00:00Z');
    const fast = { retryDelaySeconds: 1, maxAttempts: 3 };
    expect(nextAttempt(now, MAX_ATTEMPTS_BEFORE_DEADLINE - 1, far, fast, 'TERMINAL_OFFLINE').retry).toBe(true);
    expect(nextAttempt(now, MAX_ATTEMPTS_BEFORE_DEADLINE, far, fast, 'TERMINAL_OFFLINE')).toEqual({
      retry: false,
      reason: `TERMINAL_OFFLINE: still unavailable after ${MAX_ATTEMPTS_BEFORE_DEADLINE} attempt(s), the most a deadline allows`,
    });
  });
});

describe(isRetryable.name, () => {
  it('retries refusals and failures that prove nothing reached the terminal, not a failure after it got the command', () => {
    for (const code of ['TERMINAL_OFFLINE', 'TERMINAL_BUSY', 'TERMINAL_RECOVERING', 'TIMEOUT', 'NEVER_SENT', 'INTERNAL']) expect(isRetryable(code)).toBe(true);
    // A driver's reason code (the terminal answered), a terminal gone, a step's own failure.
    for (const code of ['terminal_error', 'declined_by_issuer', 'NOT_FOUND', 'STEP_FAILED', null]) expect(isRetryable(code)).toBe(false);
    expect(['NEVER_SENT', 'INTERNAL', 'TERMINAL_OFFLINE'].map(isNeverSent)).toEqual([true, true, false]);
  });
});

describe(attemptsBefore.name, () => {
  const now = new Date('2026-03-01T00:00:00Z');

  it('counts one attempt now and one every retry delay up to the deadline', () => {
    expect(attemptsBefore(now, new Date('2026-03-08T00:00:00Z'), 900)).toBe(7 * 24 * 4 + 1);
    expect(attemptsBefore(now, new Date('2026-03-01T00:00:59Z'), 60)).toBe(1);
    expect(attemptsBefore(now, new Date('2026-03-01T00:01:00Z'), 60)).toBe(2);
    expect(attemptsBefore(now, new Date('2026-02-28T00:00:00Z'), 60)).toBe(0);
  });
});

describe(waveHalts.name, () => {
  it('halts the canary on any failure', () => {
    expect(waveHalts(true, { size: 20, failed: 1, skipped: 0 }, 50)).toBe(true);
    expect(waveHalts(true, { size: 20, failed: 0, skipped: 3 }, 0)).toBe(false);
  });

  it('halts a wave whose failed share of attempted terminals passes the threshold', () => {
    expect(waveHalts(false, { size: 10, failed: 2, skipped: 0 }, 20)).toBe(false);
    expect(waveHalts(false, { size: 10, failed: 3, skipped: 0 }, 20)).toBe(true);
    expect(waveHalts(false, { size: 10, failed: 2, skipped: 2 }, 20)).toBe(true);
  });
});

describe(estimateEta.name, () => {
  it('extrapolates the pace so far; null before any result and when nothing is left', () => {
    const start = new Date('2026-03-01T10:00:00Z');
    const now = new Date('2026-03-01T10:10:00Z');
    expect(estimateEta(now, start, 100, 300)).toEqual(new Date('2026-03-01T10:40:00Z'));
    expect(estimateEta(now, start, 0, 300)).toBeNull();
    expect(estimateEta(now, start, 100, 0)).toBeNull();
  });
});

describe('transition tables', () => {
  it('ends are final and a campaign only resumes from a pause', () => {
    expect(Object.keys(CAMPAIGN_TRANSITIONS.COMPLETED)).toEqual([]);
    expect(Object.keys(CAMPAIGN_TRANSITIONS.CANCELED)).toEqual([]);
    expect(canTransitionCampaign('PAUSED', 'RUNNING')).toBe(true);
    expect(canTransitionCampaign('COMPLETED', 'RUNNING')).toBe(false);
    expect(canTransitionCampaign('RUNNING', 'RUNNING')).toBe(false);
  });

  it('a target never leaves SUCCEEDED / FAILED / SKIPPED, and only RUNNING reaches SUCCEEDED', () => {
    for (const final of ['SUCCEEDED', 'FAILED', 'SKIPPED'] as const) expect(Object.keys(TARGET_TRANSITIONS[final])).toEqual([]);
    const intoSucceeded = Object.entries(TARGET_TRANSITIONS)
      .filter(([, to]) => 'SUCCEEDED' in to)
      .map(([from]) => from);
    expect(intoSucceeded).toEqual(['RUNNING']);
    expect(canTransitionTarget('PENDING', 'SUCCEEDED')).toBe(false);
  });

  it('a halted wave passes only after the operator resumed', () => {
    expect(Object.keys(WAVE_TRANSITIONS.HALTED)).toEqual(['PASSED']);
    expect(Object.keys(WAVE_TRANSITIONS.PASSED)).toEqual([]);
  });
});
