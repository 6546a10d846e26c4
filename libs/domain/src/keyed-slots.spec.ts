import { KeyedSlots } from './keyed-slots';

describe(KeyedSlots.name, () => {
  it('hands out at most `limit` slots per key, each released once, and forgets an idle key', () => {
    const slots = new KeyedSlots(2);
    const a1 = slots.take('a')!;
    const a2 = slots.take('a')!;
    expect(slots.take('a')).toBeNull();
    expect(slots.take('b')).not.toBeNull();
    expect([slots.of('a'), slots.of('b'), slots.total]).toEqual([2, 1, 3]);
    a1();
    a1();
    expect(slots.of('a')).toBe(1);
    expect(slots.take('a')).not.toBeNull();
    a2();
    expect(slots.total).toBe(2);
  });

  it('holds nothing with a limit of 0', () => {
    expect(new KeyedSlots(0).take('a')).toBeNull();
  });
});
