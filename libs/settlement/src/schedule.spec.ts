import { csvField, csvRow } from './csv';
import { addDays, businessDateOf, cronPatternOf, lastScheduledInstant, localDateOf, scheduledInstantOf } from './schedule';

describe(cronPatternOf.name, () => {
  it('turns HH:MM into a daily cron pattern and rejects anything else', () => {
    expect(cronPatternOf('23:30')).toBe('30 23 * * *');
    expect(cronPatternOf('00:05')).toBe('5 0 * * *');
    expect(() => cronPatternOf('24:00')).toThrow(RangeError);
    expect(() => cronPatternOf('7:00')).toThrow(RangeError);
  });
});

describe(businessDateOf.name, () => {
  it('uses the store zone, not UTC', () => {
    // 2026-03-01 21:30 UTC is 00:30 on 2 March in Moscow (UTC+3) and 13:30 on 1 March in Los Angeles.
    const instant = new Date('2026-03-01T21:30:00Z');
    expect(localDateOf(instant, 'Europe/Moscow')).toBe('2026-03-02');
    expect(businessDateOf(instant, 'Europe/Moscow')).toBe('2026-03-01'); // before 06:00 → the previous business day
    expect(businessDateOf(instant, 'America/Los_Angeles')).toBe('2026-03-01');
    expect(businessDateOf(new Date('2026-03-01T20:30:00Z'), 'Europe/Moscow')).toBe('2026-03-01'); // 23:30 local
  });

  it('adds days across month ends', () => {
    expect(addDays('2026-02-28', 1)).toBe('2026-03-01');
    expect(addDays('2026-03-01', -1)).toBe('2026-02-28');
  });
});

describe(scheduledInstantOf.name, () => {
  it('is the local time in the zone, the instant BullMQ fires at (cron-parser next()) also on the nights the clocks change', () => {
    expect(scheduledInstantOf('2026-03-01', '23:30', 'Europe/Moscow').toISOString()).toBe('2026-03-01T20:30:00.000Z');
    expect(scheduledInstantOf('2026-03-01', '02:00', 'Asia/Kolkata').toISOString()).toBe('2026-02-28T20:30:00.000Z');
    expect(scheduledInstantOf('2026-03-01', '23:30', 'Pacific/Kiritimati').toISOString()).toBe('2026-03-01T09:30:00.000Z');
    expect(scheduledInstantOf('2026-03-01', '23:30', 'America/Los_Angeles').toISOString()).toBe('2026-03-02T07:30:00.000Z');
    // Clocks go forward: 02:30 does not exist and fires at 03:30 (what cron-parser gives BullMQ).
    expect(scheduledInstantOf('2026-03-08', '02:30', 'America/New_York').toISOString()).toBe('2026-03-08T07:30:00.000Z');
    expect(scheduledInstantOf('2026-03-29', '02:30', 'Europe/Berlin').toISOString()).toBe('2026-03-29T01:30:00.000Z');
    // Clocks go back: 01:30 happens twice; the first.
    expect(scheduledInstantOf('2026-11-01', '01:30', 'America/New_York').toISOString()).toBe('2026-11-01T05:30:00.000Z');
    expect(scheduledInstantOf('2026-10-25', '02:30', 'Europe/Berlin').toISOString()).toBe('2026-10-25T00:30:00.000Z');
    // Around the changes, the normal offsets.
    expect(scheduledInstantOf('2026-03-07', '23:30', 'America/New_York').toISOString()).toBe('2026-03-08T04:30:00.000Z');
    expect(scheduledInstantOf('2026-03-08', '23:30', 'America/New_York').toISOString()).toBe('2026-03-09T03:30:00.000Z');
    expect(() => scheduledInstantOf('2026-3-1', '23:30', 'UTC')).toThrow(RangeError);
  });
});

describe(lastScheduledInstant.name, () => {
  it('is the latest firing at or before the instant, in the zone', () => {
    // 23:30 Moscow is 20:30Z.
    expect(lastScheduledInstant('23:30', 'Europe/Moscow', new Date('2026-03-01T20:30:00Z')).toISOString()).toBe('2026-03-01T20:30:00.000Z');
    expect(lastScheduledInstant('23:30', 'Europe/Moscow', new Date('2026-03-01T20:29:59Z')).toISOString()).toBe('2026-02-28T20:30:00.000Z');
    // 00:30 Moscow on 2 March is still 1 March in UTC; the business date is 1 March (before 06:00).
    const night = lastScheduledInstant('00:30', 'Europe/Moscow', new Date('2026-03-01T22:00:00Z'));
    expect(night.toISOString()).toBe('2026-03-01T21:30:00.000Z');
    expect(businessDateOf(night, 'Europe/Moscow')).toBe('2026-03-01');
    // West of UTC: 23:30 in Los Angeles on 1 March is 07:30Z on 2 March.
    expect(lastScheduledInstant('23:30', 'America/Los_Angeles', new Date('2026-03-02T07:00:00Z')).toISOString()).toBe('2026-03-01T07:30:00.000Z');
  });
});

describe(csvField.name, () => {
  it('quotes commas, quotes and newlines, and defuses formulas but not negative numbers', () => {
    expect(csvRow(['a,b', 'say "hi"', 'two\nlines', '=SUM(A1)', '-1500', null, 7])).toBe('"a,b","say ""hi""","two\nlines",\'=SUM(A1),-1500,,7\r\n');
    expect(csvField('@cmd')).toBe("'@cmd");
  });
});
