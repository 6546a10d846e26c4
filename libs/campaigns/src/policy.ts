/**
 * Pure rollout rules of a campaign (docs/campaigns.md): wave planning, maintenance windows in a store's time
 * zone, retry decisions, the failure-rate check and the ETA. No I/O; every function takes the time it needs.
 */

/** A count of terminals, or a percentage of the campaign's eligible terminals (rounded up, at least 1). */
export type WaveSize = { count: number } | { percent: number };

/** Store-local `HH:MM`–`HH:MM`; an end before the start wraps midnight (`22:00`–`04:00`). */
export interface MaintenanceWindow {
  start: string;
  end: string;
}

export interface CampaignPolicy {
  /** Size of every wave after the canary. */
  waveSize: WaveSize;
  /** The first wave; every one of its terminals must succeed before the rest start. None: no canary. */
  canary: WaveSize | null;
  /** Terminals of one store running a step of this campaign at once. */
  maxConcurrentPerStore: number;
  /** Terminals of the tenant running a step of any campaign at once (this campaign's limit). */
  maxConcurrentPerTenant: number;
  /** Steps start only inside this window of each store's own time zone; null: any time. */
  maintenanceWindow: MaintenanceWindow | null;
  /** Wait between attempts on a terminal that was offline, busy or recovering, or whose operation was never sent (NEVER_SENT_CODES). */
  retryDelaySeconds: number;
  /** Attempts per terminal when the campaign has no deadline (with a deadline: until the deadline, at most MAX_ATTEMPTS_BEFORE_DEADLINE). */
  maxAttempts: number;
  /** A (non-canary) wave whose failed share of its terminals passes this pauses the campaign. */
  failureThresholdPercent: number;
}

export const DEFAULT_POLICY: CampaignPolicy = {
  waveSize: { percent: 10 },
  canary: null,
  maxConcurrentPerStore: 1,
  maxConcurrentPerTenant: 50,
  maintenanceWindow: null,
  retryDelaySeconds: 60,
  maxAttempts: 10,
  failureThresholdPercent: 20,
};

function sizeOf(size: WaveSize, total: number): number {
  const n = 'count' in size ? size.count : Math.ceil((size.percent * total) / 100);
  return Math.max(1, Math.min(total, n));
}

export interface PlannedWave {
  index: number;
  canary: boolean;
  size: number;
}

/** Waves over `total` eligible terminals, in order: the canary (if any), then waves of `waveSize`. */
export function planWaves(total: number, policy: Pick<CampaignPolicy, 'waveSize' | 'canary'>): PlannedWave[] {
  const waves: PlannedWave[] = [];
  let left = total;
  if (left > 0 && policy.canary !== null) {
    const size = sizeOf(policy.canary, total);
    waves.push({ index: 0, canary: true, size });
    left -= size;
  }
  const step = sizeOf(policy.waveSize, total);
  while (left > 0) {
    const size = Math.min(step, left);
    waves.push({ index: waves.length, canary: false, size });
    left -= size;
  }
  return waves;
}

/** `HH:MM` → minutes after local midnight. */
export function minutesOf(hhmm: string): number {
  const match = /^([01]\d|2[0-3]):([0-5]\d)$/.exec(hhmm);
  if (!match) throw new RangeError(`not a HH:MM time: ${hhmm}`);
  return Number(match[1]) * 60 + Number(match[2]);
}

/** Local time of `at` in `timeZone`, as minutes (with fractions) after local midnight. */
export function localMinutes(at: Date, timeZone: string): number {
  const parts = new Intl.DateTimeFormat('en-GB', { timeZone, hourCycle: 'h23', hour: '2-digit', minute: '2-digit', second: '2-digit' }).formatToParts(at);
  const part = (type: string) => Number(parts.find((p) => p.type === type)?.value ?? 0);
  return part('hour') * 60 + part('minute') + part('second') / 60 + at.getUTCMilliseconds() / 60_000;
}

/**
 * 0 when `at` is inside the store-local window, else the milliseconds until it next opens. The step that waits
 * checks again when it wakes, so a DST change in between only costs one more wait.
 */
export function msUntilWindow(at: Date, timeZone: string, window: MaintenanceWindow | null): number {
  if (window === null) return 0;
  const now = localMinutes(at, timeZone);
  const start = minutesOf(window.start);
  const end = minutesOf(window.end);
  const inside = start <= end ? now >= start && now < end : now >= start || now < end;
  if (inside) return 0;
  const minutes = (start - now + 1440) % 1440;
  return Math.ceil(minutes * 60_000);
}

/**
 * Failure codes of an operation that prove nothing reached the terminal. Each is written only by a compare-and-set
 * from PENDING, and the executor's claim PENDING → SENT, committed before the driver writes a byte, is the only way to
 * the terminal: once the row left PENDING that way, no claim can follow.
 * - `NEVER_SENT`: `failNeverSent` (libs/operations supervision.ts), by the recovery sweep or by the connector the
 *   terminal's agent reconnected to, for an operation no executor claimed;
 * - `INTERNAL`: the step's own failure of its PENDING operation after a dispatch answered INTERNAL, mostly the command
 *   bus unavailable (Redis away: libs/command-bus dispatcher.ts). The compare-and-set applies only while no executor
 *   claimed the operation; one that did ends with its own outcome. No executor writes `INTERNAL`: an outcome's code is
 *   the driver's reason code (lower case), and the bus's codes reach an operation row only through such a "not sent"
 *   compare-and-set.
 * Until 2026-12-07 neither was retried: the target failed for good and counted as a failure of its wave.
 */
export const NEVER_SENT_CODES = ['NEVER_SENT', 'INTERNAL'] as const;
export type NeverSentCode = (typeof NEVER_SENT_CODES)[number];
export const isNeverSent = (code: string | null | undefined): code is NeverSentCode => (NEVER_SENT_CODES as readonly string[]).includes(code ?? '');

/**
 * Refusals that mean "not now" rather than "no", and failures that prove nothing was sent (NEVER_SENT_CODES): the
 * terminal is retried (until the deadline / maxAttempts). A failure after the terminal got the command is not.
 */
export const RETRYABLE_CODES = ['TERMINAL_OFFLINE', 'TERMINAL_BUSY', 'TERMINAL_RECOVERING', 'TIMEOUT', ...NEVER_SENT_CODES] as const;
export type RetryableCode = (typeof RETRYABLE_CODES)[number];
export const isRetryable = (code: string | null | undefined): code is RetryableCode => (RETRYABLE_CODES as readonly string[]).includes(code ?? '');

export type RetryDecision = { retry: true; at: Date } | { retry: false; reason: string };

/**
 * Most attempts of one terminal a deadline may allow (issue 20 review). With a deadline `maxAttempts` does not
 * apply, and each attempt is an operation row: a deadline in year 9999 with a retry every second created a row every
 * ~2 s per offline terminal. The gateway refuses a policy whose deadline leaves room for more (`attemptsBefore`);
 * a week of retries every 15 minutes (672) fits. The worker stops there too, for campaigns stored before the check.
 */
export const MAX_ATTEMPTS_BEFORE_DEADLINE = 1_000;

/** Attempts of a terminal that stays offline from `now` on: one now, then one every `retryDelaySeconds` until the deadline. */
export function attemptsBefore(now: Date, deadline: Date, retryDelaySeconds: number): number {
  const span = deadline.getTime() - now.getTime();
  return span < 0 ? 0 : Math.floor(span / (retryDelaySeconds * 1000)) + 1;
}

/**
 * After `attempts` attempts (operations created for the terminal) with the last failure's retryable code: when to try
 * again, or why not. With a deadline the terminal is retried until the next attempt would start after it (at most
 * MAX_ATTEMPTS_BEFORE_DEADLINE attempts); without one, `maxAttempts` bounds it. A terminal that could not be tried at
 * all (TERMINAL_RECOVERING before its first attempt) has made 0 attempts: it is retried whatever `maxAttempts`.
 */
export function nextAttempt(
  now: Date,
  attempts: number,
  deadline: Date | null,
  policy: Pick<CampaignPolicy, 'retryDelaySeconds' | 'maxAttempts'>,
  code: string,
): RetryDecision {
  const at = new Date(now.getTime() + policy.retryDelaySeconds * 1000);
  if (deadline !== null) {
    if (at.getTime() > deadline.getTime())
      return { retry: false, reason: `${code}: still unavailable at the deadline (${deadline.toISOString()}) after ${attempts} attempt(s)` };
    if (attempts >= MAX_ATTEMPTS_BEFORE_DEADLINE)
      return { retry: false, reason: `${code}: still unavailable after ${attempts} attempt(s), the most a deadline allows` };
    return { retry: true, at };
  }
  if (attempts >= policy.maxAttempts) return { retry: false, reason: `${code}: still unavailable after ${attempts} attempt(s)` };
  return { retry: true, at };
}

export interface WaveTally {
  size: number;
  failed: number;
  skipped: number;
}

/**
 * Whether a wave's failures stop the rollout: any failure in the canary; otherwise a failed share of the
 * wave's attempted terminals (size minus skipped) above the threshold.
 */
export function waveHalts(canary: boolean, tally: WaveTally, thresholdPercent: number): boolean {
  if (tally.failed === 0) return false;
  if (canary) return true;
  const attempted = tally.size - tally.skipped;
  return attempted > 0 && (tally.failed * 100) / attempted > thresholdPercent;
}

/** Linear estimate of the end from the pace so far; null before the first terminal finished or after the end. */
export function estimateEta(now: Date, startedAt: Date, done: number, remaining: number): Date | null {
  if (done === 0 || remaining === 0) return null;
  const perTarget = (now.getTime() - startedAt.getTime()) / done;
  return new Date(now.getTime() + Math.ceil(perTarget * remaining));
}
