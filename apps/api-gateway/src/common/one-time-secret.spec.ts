import { canonicalJson } from '@payorch/domain';

import { splitOneTimeSecrets } from './one-time-secret';

/** The recursive form canonicalJson replaced: stored request hashes were made with it. */
function recursiveCanonical(value: unknown): string {
  if (Array.isArray(value)) return `[${value.map(recursiveCanonical).join(',')}]`;
  if (value && typeof value === 'object') {
    return `{${Object.keys(value as object)
      .sort()
      .map((k) => `${JSON.stringify(k)}:${recursiveCanonical((value as Record<string, unknown>)[k])}`)
      .join(',')}}`;
  }
  return JSON.stringify(value ?? null);
}

describe(canonicalJson.name, () => {
  it.each<[string, unknown]>([
    ['scalars', [1, -2.5, 'a"b\\c\n', true, false, null]],
    ['empty containers', { a: [], b: {}, c: [[]], d: [{}] }],
    ['sorted keys at every level', { z: 1, a: { y: [3, { k: 'v', b: null }], b: 'x' }, m: [{ b: 1, a: 2 }] }],
    ['unicode keys', { ключ: 'значение', '\u0000': 1 }],
    ['undefined as null', { a: undefined, b: [undefined] }],
    ['top-level scalar', 'text'],
    ['top-level undefined', undefined],
  ])('matches the recursive form: %s', (_name, value) => {
    expect(canonicalJson(value)).toBe(recursiveCanonical(value));
  });

  it('hashes a 200 KB body of nested arrays without overflowing the stack', () => {
    const depth = 100_000;
    const body = JSON.parse(`${'['.repeat(depth)}${']'.repeat(depth)}`) as unknown;
    expect(() => recursiveCanonical(body)).toThrow(RangeError);
    const out = canonicalJson(body);
    expect(out).toHaveLength(2 * depth);
    expect(out.startsWith('[[[') && out.endsWith(']]]')).toBe(true);
  });

  it('handles deeply nested objects too', () => {
    const depth = 50_000;
    const body = JSON.parse(`${'{"a":'.repeat(depth)}1${'}'.repeat(depth)}`) as unknown;
    expect(canonicalJson(body)).toBe(`${'{"a":'.repeat(depth)}1${'}'.repeat(depth)}`);
  });
});

describe(splitOneTimeSecrets.name, () => {
  const webhook = { id: 'w1', url: 'https://example.com/hook', createdAt: new Date('2026-01-01T00:00:00Z') };

  it('sends a declared secret with secretWithheld: false and stores it as null with secretWithheld: true', () => {
    const { sent, stored, undeclared } = splitOneTimeSecrets({ ...webhook, secret: 'whsec_abc' }, ['secret']);
    expect(sent).toEqual({ ...webhook, secret: 'whsec_abc', secretWithheld: false });
    expect(stored).toEqual({ id: 'w1', url: 'https://example.com/hook', createdAt: '2026-01-01T00:00:00.000Z', secret: null, secretWithheld: true });
    expect(undeclared).toEqual([]);
  });

  it('keeps answers without secrets as they are', () => {
    const body = { id: 't1', hasCredentials: true, hasSalt: true, tokenType: 'apple_pay', runKey: 'manual:k', data: { items: [{ a: 1 }] } };
    expect(splitOneTimeSecrets(body, [])).toEqual({ sent: body, stored: body, undeclared: [] });
    expect(splitOneTimeSecrets(undefined, [])).toEqual({ sent: undefined, stored: null, undeclared: [] });
  });

  it('withholds undeclared secret-like strings anywhere in the stored copy and reports their paths', () => {
    const body = { id: 'x', apiKey: 'pok_1', nested: { list: [{ clientSecret: 's' }, { accessToken: 't', password: '' }] } };
    const { sent, stored, undeclared } = splitOneTimeSecrets(body, []);
    expect(sent).toBe(body);
    expect(stored).toEqual({ id: 'x', apiKey: null, nested: { list: [{ clientSecret: null }, { accessToken: null, password: '' }] }, secretWithheld: true });
    expect(undeclared.sort()).toEqual(['apiKey', 'nested.list[0].clientSecret', 'nested.list[1].accessToken']);
    expect(body.apiKey).toBe('pok_1');
  });

  it('withholds an undeclared secret next to a declared one', () => {
    const { stored, undeclared } = splitOneTimeSecrets({ agent: { id: 'a' }, enrollmentToken: 'pen_1', credential: 'pac_1' }, ['enrollmentToken']);
    expect(stored).toEqual({ agent: { id: 'a' }, enrollmentToken: null, credential: null, secretWithheld: true });
    expect(undeclared).toEqual(['credential']);
  });
});
