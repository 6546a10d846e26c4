/**
 * Schedules and business days. A schedule says "close the day at HH:MM local time" for a store
 * (its IANA zone) or one terminal (its store's zone). BullMQ's cron runs with the same `tz`, so
 * daylight-saving changes are the cron library's job, not ours.
 */

export const LOCAL_TIME_PATTERN = /^([01]\d|2[0-3]):([0-5]\d)$/;

/**
 * A close at or after this local time closes *today*; one earlier (e.g. 02:00) closes the
 * business day that started yesterday (night shifts settle after midnight).
 */
export const BUSINESS_DAY_STARTS_AT = '06:00';

/** `"23:30"` → `"30 23 * * *"` (minute hour, every day). */
export function cronPatternOf(localTime: string): string {
  const match = LOCAL_TIME_PATTERN.exec(localTime);
  if (!match) throw new RangeError(`localTime must be HH:MM (00:00–23:59), got "${localTime}"`);
  return `${Number(match[2])} ${Number(match[1])} * * *`;
}

/** `YYYY-MM-DD` of an instant in a zone. */
export function localDateOf(instant: Date, timeZone: string): string {
  const parts = new Intl.DateTimeFormat('en-CA', { timeZone, year: 'numeric', month: '2-digit', day: '2-digit' }).formatToParts(instant);
  const get = (type: string) => parts.find((p) => p.type === type)!.value;
  return `${get('year')}-${get('month')}-${get('day')}`;
}

/** `HH:MM` of an instant in a zone. */
export function localTimeOf(instant: Date, timeZone: string): string {
  const parts = new Intl.DateTimeFormat('en-GB', { timeZone, hour: '2-digit', minute: '2-digit', hourCycle: 'h23' }).formatToParts(instant);
  const get = (type: string) => parts.find((p) => p.type === type)!.value;
  return `${get('hour')}:${get('minute')}`;
}

export function addDays(date: string, days: number): string {
  const d = new Date(`${date}T00:00:00Z`);
  d.setUTCDate(d.getUTCDate() + days);
  return d.toISOString().slice(0, 10);
}

/**
 * The business date a close-day at `instant` settles, in the store's zone: a schedule's firing and a manual close-day
 * without a date (the gateway's default) alike, so both settle the same day at the same time.
 */
export function businessDateOf(instant: Date, timeZone: string): string {
  const date = localDateOf(instant, timeZone);
  return localTimeOf(instant, timeZone) < BUSINESS_DAY_STARTS_AT ? addDays(date, -1) : date;
}

export const BUSINESS_DATE_PATTERN = /^\d{4}-(0[1-9]|1[0-2])-(0[1-9]|[12]\d|3[01])$/;

/** One formatter per zone (making one costs far more than using it): the settlement catch-up asks for every schedule. */
const wallClocks = new Map<string, Intl.DateTimeFormat>();

/** UTC offset of `timeZone` at `instant` (local wall clock − UTC), in ms. */
function offsetMs(instant: number, timeZone: string): number {
  let format = wallClocks.get(timeZone);
  if (format === undefined) {
    format = new Intl.DateTimeFormat('en-GB', {
      timeZone,
      year: 'numeric',
      month: '2-digit',
      day: '2-digit',
      hour: '2-digit',
      minute: '2-digit',
      second: '2-digit',
      hourCycle: 'h23',
    });
    wallClocks.set(timeZone, format);
  }
  const parts = format.formatToParts(new Date(instant));
  const get = (type: string) => Number(parts.find((p) => p.type === type)!.value);
  const wall = Date.UTC(get('year'), get('month') - 1, get('day'), get('hour'), get('minute'), get('second'));
  return wall - Math.floor(instant / 1000) * 1000;
}

const HOUR_MS = 3_600_000;

/**
 * The instant a daily schedule at `localTime` fires on the local `date` in `timeZone`, as BullMQ's cron (cron-parser,
 * `next()`) computes it: on the night the clocks go back, the first of the two; on the night they go forward, a time
 * that does not exist fires as late as the clocks jumped (02:30 → 03:30).
 */
export function scheduledInstantOf(date: string, localTime: string, timeZone: string): Date {
  const match = LOCAL_TIME_PATTERN.exec(localTime);
  if (!match || !BUSINESS_DATE_PATTERN.test(date)) throw new RangeError(`not a local date and time: "${date} ${localTime}"`);
  const [year, month, day] = date.split('-').map(Number) as [number, number, number];
  const wall = Date.UTC(year, month - 1, day, Number(match[1]), Number(match[2]));
  // Offsets run from −12 h to +14 h: the instant lies within [wall − 14 h, wall + 12 h], and the offsets in force at
  // both ends are the ones before and after a change of the clocks around it (if any).
  const before = offsetMs(wall - 15 * HOUR_MS, timeZone);
  const after = offsetMs(wall + 15 * HOUR_MS, timeZone);
  // An offset is right when it is the one in force at the instant it gives.
  const valid = [...new Set([before, after])].filter((offset) => offsetMs(wall - offset, timeZone) === offset).map((offset) => wall - offset);
  // None: the wall time fell into the hour the clocks skipped forward; it fires that much later (the offset before the jump).
  return new Date(valid.length > 0 ? Math.min(...valid) : wall - before);
}

/**
 * The latest instant at or before `at` at which a daily schedule at `localTime` in `timeZone` fired (or should have:
 * {@link scheduledInstantOf}). Its business date is {@link businessDateOf} of it.
 */
export function lastScheduledInstant(localTime: string, timeZone: string, at: Date): Date {
  const today = localDateOf(at, timeZone);
  for (const days of [0, -1, -2]) {
    const instant = scheduledInstantOf(addDays(today, days), localTime, timeZone);
    if (instant.getTime() <= at.getTime()) return instant;
  }
  // Unreachable: a day before yesterday's local date is always more than a day in the past.
  throw new RangeError(`no ${localTime} in ${timeZone} before ${at.toISOString()}`);
}
