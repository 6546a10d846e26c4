import type { Settlement } from './api';

/**
 * The settlement calendar's pure parts: month grids (weeks Monday → Sunday) and what a business day's
 * settlements add up to. Dates are `YYYY-MM-DD` business dates (the store's calendar, as the API gives
 * them), computed in UTC so the browser's own time zone never shifts a day.
 */

/** What a day shows, worst first: the colour and the words of its cell. */
export type DayState = 'failed' | 'discrepancies' | 'running' | 'settled' | 'none';

export interface DaySummary {
  state: DayState;
  /** The latest settlement of each terminal that day (a re-run supersedes the earlier runs), newest first. */
  latest: Settlement[];
  /** Discrepancies in those latest settlements. */
  discrepancies: number;
  /** The cell's words: `settled`, `2 discrepancies`, `failed`, `in progress`, `no settlement`. */
  text: string;
}

const DAY_MS = 86_400_000;
const parse = (date: string) => Date.parse(`${date}T00:00:00Z`);
const format = (ms: number) => new Date(ms).toISOString().slice(0, 10);

/** `2026-03` → its weeks, Monday first; days outside the month are null. */
export function monthGrid(month: string): (string | null)[][] {
  const first = parse(`${month}-01`);
  const next = parse(`${shiftMonth(month, 1)}-01`);
  const lead = (new Date(first).getUTCDay() + 6) % 7; // Monday = 0
  const cells: (string | null)[] = Array<null>(lead).fill(null);
  for (let ms = first; ms < next; ms += DAY_MS) cells.push(format(ms));
  while (cells.length % 7 !== 0) cells.push(null);
  const weeks: (string | null)[][] = [];
  for (let i = 0; i < cells.length; i += 7) weeks.push(cells.slice(i, i + 7));
  return weeks;
}

export const shiftDay = (date: string, days: number): string => format(parse(date) + days * DAY_MS);

export function shiftMonth(month: string, by: number): string {
  const [year, m] = month.split('-').map(Number) as [number, number];
  const index = year * 12 + (m - 1) + by;
  return `${Math.floor(index / 12)}-${String((index % 12) + 1).padStart(2, '0')}`;
}

export const monthOf = (date: string): string => date.slice(0, 7);
export const lastDayOf = (month: string): string => shiftDay(`${shiftMonth(month, 1)}-01`, -1);

// Written out rather than Intl: browsers and Node's ICU punctuate `weekday: 'long'` dates differently.
const MONTHS = ['January', 'February', 'March', 'April', 'May', 'June', 'July', 'August', 'September', 'October', 'November', 'December'];
const WEEKDAYS = ['Sunday', 'Monday', 'Tuesday', 'Wednesday', 'Thursday', 'Friday', 'Saturday'];

/** `2026-03-02` → `Monday 2 March 2026` (cell labels for assistive tools). */
export function dayLabel(date: string): string {
  const d = new Date(parse(date));
  return `${WEEKDAYS[d.getUTCDay()]} ${d.getUTCDate()} ${MONTHS[d.getUTCMonth()]} ${d.getUTCFullYear()}`;
}

/** `2026-03` → `March 2026`. */
export const monthLabel = (month: string): string => `${MONTHS[Number(month.slice(5, 7)) - 1]} ${month.slice(0, 4)}`;

/** One business day of a store: the latest run per terminal decides, and the worst terminal colours the day. */
export function summarizeDay(settlements: readonly Settlement[]): DaySummary {
  const byTerminal = new Map<string, Settlement>();
  for (const s of settlements) {
    const seen = byTerminal.get(s.terminalId);
    if (!seen || s.createdAt > seen.createdAt) byTerminal.set(s.terminalId, s);
  }
  const latest = [...byTerminal.values()].sort((a, b) => b.createdAt.localeCompare(a.createdAt));
  const discrepancies = latest.reduce((n, s) => n + (s.hasDiscrepancies ? Math.max(1, s.discrepancies.length) : 0), 0);
  let state: DayState = 'none';
  if (latest.some((s) => s.status === 'failed')) state = 'failed';
  else if (discrepancies > 0) state = 'discrepancies';
  else if (latest.some((s) => s.status === 'pending' || s.status === 'running')) state = 'running';
  else if (latest.length > 0) state = 'settled';
  const text = {
    failed: 'failed',
    discrepancies: `${discrepancies} ${discrepancies === 1 ? 'discrepancy' : 'discrepancies'}`,
    running: 'in progress',
    settled: 'settled',
    none: 'no settlement',
  }[state];
  return { state, latest, discrepancies, text };
}
