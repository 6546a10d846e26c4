import { RecentIds } from './joinproto.driver';

describe(RecentIds.name, () => {
  it('refuses an id among the recent ones and forgets the oldest beyond its capacity', () => {
    const ids = new RecentIds(3);
    expect(['000001', '000002', '000003'].map((id) => ids.add(id))).toEqual([true, true, true]);
    expect(ids.add('000002')).toBe(false);
    expect(ids.add('000004')).toBe(true);
    expect(ids.size).toBe(3);
    // 000001 was the oldest: forgotten, so it may be drawn again (and 000002 is forgotten for it).
    expect(ids.add('000001')).toBe(true);
    expect(['000003', '000004', '000002'].map((id) => ids.add(id))).toEqual([false, false, true]);
  });

  it('stays at its capacity however many ids pass through it', () => {
    const ids = new RecentIds(1_024);
    for (let i = 1; i <= 50_000; i++) ids.add(String(i).padStart(6, '0'));
    expect(ids.size).toBe(1_024);
    expect(ids.add('049999')).toBe(false);
    expect(ids.add('048977')).toBe(false);
    expect(ids.add('048976')).toBe(true);
  });
});
