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

/** The business date a close-day firing at `instant` settles, in the store's zone. */
export function businessDateOf(instant: Date, timeZone: string): string {
  const date = localDateOf(instant, timeZone);
  return localTimeOf(instant, timeZone) < BUSINESS_DAY_STARTS_AT ? addDays(date, -1) : date;
}

export const BUSINESS_DATE_PATTERN = /^\d{4}-(0[1-9]|1[0-2])-(0[1-9]|[12]\d|3[01])$/;
