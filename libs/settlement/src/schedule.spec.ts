import { csvField, csvRow } from './csv';
import { addDays, businessDateOf, cronPatternOf, localDateOf } from './schedule';

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

describe(csvField.name, () => {
  it('quotes commas, quotes and newlines, and defuses formulas but not negative numbers', () => {
    expect(csvRow(['a,b', 'say "hi"', 'two\nlines', '=SUM(A1)', '-1500', null, 7])).toBe('"a,b","say ""hi""","two\nlines",\'=SUM(A1),-1500,,7\r\n');
    expect(csvField('@cmd')).toBe("'@cmd");
  });
});
