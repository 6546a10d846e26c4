import { FIRST_CODES, SECOND_CODES, describeCodes } from './codes';
import { maskPan, redactFields, toSafeJSON } from './redact';
import { buildTokenPayFields } from './request';
import { APPLE_PAY_TOKEN, MERCHANT, validRequest } from './testing/fixtures';

describe('redaction', () => {
  it.each([
    ['4111111111111111', '411111******1111'],
    ['card 4111 1111 1111 1111 used', 'card 411111******1111 used'],
    ['411111****1111', '411111****1111'],
    ['order 12345', 'order 12345'],
  ])('maskPan(%s) → %s', (input, expected) => {
    expect(maskPan(input)).toBe(expected);
  });

  it('redactFields hides Password, PaymentToken and Signature and keeps the rest', () => {
    const fields = [...buildTokenPayFields(MERCHANT, validRequest()), ['Signature', 'c2ln'] as const];
    const safe = redactFields(fields);
    expect(safe['Password']).toBe('[REDACTED 12 chars]');
    expect(safe['PaymentToken']).toBe(`[REDACTED ${APPLE_PAY_TOKEN.length} chars]`);
    expect(safe['Signature']).toBe('[REDACTED 4 chars]');
    expect(safe['OrderNumber']).toBe('ORD-0001');
    expect(JSON.stringify(safe)).not.toContain(MERCHANT.password);
  });

  it('toSafeJSON redacts secret keys at any depth, masks PANs, keeps tokenType', () => {
    const safe = toSafeJSON({ request: validRequest({ orderComment: 'pan 5555555555554444' }), password: 'p', nested: [{ salt: 'abc' }] });
    expect(safe).toMatchObject({
      request: { paymentToken: `[REDACTED ${APPLE_PAY_TOKEN.length} chars]`, tokenType: 1, orderComment: 'pan 555555******4444' },
      password: '[REDACTED 1 chars]',
      nested: [{ salt: '[REDACTED 3 chars]' }],
    });
  });
});

describe('code tables', () => {
  it('name all 21 first codes of the spec table (13 is absent there)', () => {
    expect(Object.keys(FIRST_CODES).map(Number)).toEqual([0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 14, 15, 16, 17, 18, 19, 20, 21]);
    expect(new Set(Object.values(FIRST_CODES).map((c) => c.name)).size).toBe(21);
  });

  it('hold every second code of the spec table with its Russian text', () => {
    expect(SECOND_CODES.size).toBe(117);
    expect(SECOND_CODES.get(403)?.specText).toBe('Авторизация запрещена DS');
    expect(SECOND_CODES.get(108)?.field).toBe('OrderAmount');
  });

  it('describe a pair clearly', () => {
    expect(describeCodes(4, 120)).toBe('Parameter format error (Parameter EMAIL) [4/120]');
    expect(describeCodes(0, 0)).toBe('Success [0/0]');
  });
});
