import { INFO_LIMITS, storableInfo, storableText } from './terminal-presence';

/** What agents and terminals say is stored only in a form PostgreSQL takes (text and jsonb refuse NUL and lone surrogates). */
describe(storableText.name, () => {
  it('replaces NUL and lone surrogates, and with `controls` every control character', () => {
    expect(storableText('a\u0000b\uD800c\uDC00d', 100)).toBe('a\uFFFDb\uFFFDc\uFFFDd');
    expect(storableText('line\nnext\u0007\u009b', 100)).toBe('line\nnext\u0007\u009b');
    expect(storableText('line\nnext\u0007\u009b', 100, true)).toBe('line\uFFFDnext\uFFFD\uFFFD');
  });

  it('cuts at maxChars without leaving half of a surrogate pair', () => {
    expect(storableText('ab😀', 3)).toBe('ab\uFFFD');
    expect(storableText('ab😀', 4)).toBe('ab😀');
  });
});

describe(storableInfo.name, () => {
  it('keeps an ordinary info as it is', () => {
    const info = { protocol: 'SSI_ECR', os: 'linux', model: 'A920', apps: [{ name: 'pay', versionCode: 12 }], secure: true, none: null };
    expect(storableInfo(info)).toEqual(info);
  });

  it('cleans strings and keys, and turns what JSON cannot carry into what it can', () => {
    expect(storableInfo({ 'k\u0000': 'v\u0000', n: Number.NaN, big: 10n ** 20n, at: new Date(0), skip: undefined })).toEqual({
      'k\uFFFD': 'v\uFFFD',
      n: null,
      big: '100000000000000000000',
      at: '1970-01-01T00:00:00.000Z',
    });
  });

  it('bounds depth, entries, string length and the whole, and says it cut', () => {
    let deep: unknown = 'bottom';
    for (let i = 0; i < 10_000; i++) deep = [deep];
    const cut = storableInfo({ deep, wide: Array.from({ length: 1000 }, (_, i) => i), long: 'x'.repeat(100_000) });
    expect(cut.truncated).toBe(true);
    expect((cut.wide as unknown[]).length).toBe(INFO_LIMITS.entries);
    expect((cut.long as string).length).toBe(INFO_LIMITS.stringChars);
    let depth = 0;
    for (let level: unknown = cut.deep; Array.isArray(level); level = level[0]) depth += 1;
    expect(depth).toBe(INFO_LIMITS.depth - 1);

    const huge = storableInfo(Object.fromEntries(Array.from({ length: 200 }, (_, i) => [`k${i}`, 'y'.repeat(1000)])));
    expect(huge.truncated).toBe(true);
    expect(JSON.stringify(huge).length).toBeLessThanOrEqual(INFO_LIMITS.totalChars + 100);
  });
});
