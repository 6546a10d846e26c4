import { describe, expect, it } from '@jest/globals';

import type { Settlement } from './api';
import { dayLabel, lastDayOf, monthGrid, monthLabel, shiftDay, shiftMonth, summarizeDay } from './calendar';

const settlement = (patch: Partial<Settlement>): Settlement =>
  ({
    id: 's',
    terminalId: 't1',
    storeId: 'st',
    businessDate: '2026-03-02',
    status: 'completed',
    hasDiscrepancies: false,
    discrepancies: [],
    createdAt: '2026-03-02T21:00:00.000Z',
    ...patch,
  }) as Settlement;

describe('monthGrid', () => {
  it('lays a month out in weeks from Monday, padding outside days with null', () => {
    const weeks = monthGrid('2026-03'); // 1 March 2026 is a Sunday
    expect(weeks[0]).toEqual([null, null, null, null, null, null, '2026-03-01']);
    expect(weeks[1]![0]).toBe('2026-03-02');
    expect(weeks.at(-1)).toEqual(['2026-03-30', '2026-03-31', null, null, null, null, null]);
    expect(weeks.flat().filter(Boolean)).toHaveLength(31);
    expect(monthGrid('2028-02').flat().filter(Boolean)).toHaveLength(29);
    expect(monthGrid('2027-02')).toHaveLength(4); // Monday 1 to Sunday 28
  });
});

describe('day and month arithmetic', () => {
  it('crosses month and year ends in UTC, whatever the zone', () => {
    expect(shiftDay('2026-03-01', -1)).toBe('2026-02-28');
    expect(shiftDay('2026-12-28', 7)).toBe('2027-01-04');
    expect(shiftMonth('2026-01', -1)).toBe('2025-12');
    expect(shiftMonth('2026-12', 1)).toBe('2027-01');
    expect(shiftMonth('2026-03', -15)).toBe('2024-12');
    expect(lastDayOf('2028-02')).toBe('2028-02-29');
    expect(dayLabel('2026-03-02')).toBe('Monday 2 March 2026');
    expect(monthLabel('2026-11')).toBe('November 2026');
  });
});

describe('summarizeDay', () => {
  it('says "no settlement" for an empty day, "settled" when every latest run completed without discrepancy', () => {
    expect(summarizeDay([])).toMatchObject({ state: 'none', text: 'no settlement' });
    expect(summarizeDay([settlement({})])).toMatchObject({ state: 'settled', text: 'settled' });
  });

  it('lets the worst terminal colour the day: failed, then discrepancies, then in progress', () => {
    const ok = settlement({ id: 'a', terminalId: 't1' });
    const diff = settlement({ id: 'b', terminalId: 't2', hasDiscrepancies: true, discrepancies: [{ kind: 'x' }, { kind: 'y' }] });
    const running = settlement({ id: 'c', terminalId: 't3', status: 'running' });
    const failed = settlement({ id: 'd', terminalId: 't4', status: 'failed' });
    expect(summarizeDay([ok, running])).toMatchObject({ state: 'running', text: 'in progress' });
    expect(summarizeDay([ok, running, diff])).toMatchObject({ state: 'discrepancies', text: '2 discrepancies', discrepancies: 2 });
    expect(summarizeDay([ok, running, diff, failed])).toMatchObject({ state: 'failed', text: 'failed' });
  });

  it('takes only the latest run of each terminal: a re-run supersedes a failed day', () => {
    const first = settlement({ id: 'old', status: 'failed', createdAt: '2026-03-02T21:00:00.000Z' });
    const rerun = settlement({ id: 'new', status: 'pending', createdAt: '2026-03-03T09:00:00.000Z' });
    const day = summarizeDay([first, rerun]);
    expect(day).toMatchObject({ state: 'running', text: 'in progress' });
    expect(day.latest.map((s) => s.id)).toEqual(['new']);
  });
});
