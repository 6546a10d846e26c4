import { createHash } from 'node:crypto';
import { computeCheckValue, verifyCheckValue, type CheckValueFields } from './checkvalue';

const md5 = (s: string) => createHash('md5').update(s, 'utf8').digest('hex');

/** assist-notes.md: computed by Assist's own PHP code. */
const ASSIST_VECTOR: CheckValueFields = {
  merchantId: '679471',
  orderNumber: '26012015_4',
  orderAmount: '24.00',
  orderCurrency: 'KZT',
  orderState: 'Approved',
};

describe(computeCheckValue.name, () => {
  it("matches the vector from Assist's code (assist-notes.md)", () => {
    expect(computeCheckValue('secret', ASSIST_VECTOR)).toBe('D80E01190F204527CA15F453E05418BC');
  });

  // Computed with Python's hashlib (md5((md5(salt)+md5(x)).upper()).upper()), not with this library.
  it.each([
    [
      'Sandbox-Salt-1',
      { merchantId: '1234567', orderNumber: 'ORD-0001', orderAmount: '101.45', orderCurrency: 'RUB', orderState: 'Delayed' },
      '927FF8405A045B135779F731DF6E7B24',
    ],
    [
      'соль',
      { merchantId: '777', orderNumber: 'заказ-17', orderAmount: '100', orderCurrency: 'JPY', orderState: 'Declined' },
      '7D4F585D4769755FA7735761BEE713B2',
    ],
  ] as const)('matches the hand-computed vector for salt %s', (salt, fields, expected) => {
    expect(computeCheckValue(salt, fields)).toBe(expected);
  });

  it('follows the formula step by step: inner lower-case digests, concatenation upper-cased', () => {
    const salt = 'k3y';
    const fields = { merchantId: '42', orderNumber: 'N-9', orderAmount: '0.01', orderCurrency: 'USD', orderState: 'In Process' };
    const x = '42N-90.01USDIn Process';
    const concatenated = md5(salt) + md5(x);
    const expected = md5(concatenated.toUpperCase()).toUpperCase();
    expect(computeCheckValue(salt, fields)).toBe(expected);
    // The usual mistake (no inner upper-casing) gives a different value.
    expect(computeCheckValue(salt, fields)).not.toBe(md5(concatenated).toUpperCase());
  });

  it('depends on the exact server amount string', () => {
    expect(computeCheckValue('secret', { ...ASSIST_VECTOR, orderAmount: '24' })).not.toBe('D80E01190F204527CA15F453E05418BC');
  });
});

describe(verifyCheckValue.name, () => {
  it('accepts the right value in either case', () => {
    expect(verifyCheckValue('secret', ASSIST_VECTOR, 'D80E01190F204527CA15F453E05418BC')).toBe(true);
    expect(verifyCheckValue('secret', ASSIST_VECTOR, 'd80e01190f204527ca15f453e05418bc')).toBe(true);
  });

  it.each([
    ['another state', { ...ASSIST_VECTOR, orderState: 'Declined' }, 'D80E01190F204527CA15F453E05418BC'],
    ['a flipped digit', ASSIST_VECTOR, 'D80E01190F204527CA15F453E05418BD'],
    ['a truncated value', ASSIST_VECTOR, 'D80E01190F204527'],
    ['an empty value', ASSIST_VECTOR, ''],
  ] as const)('rejects %s', (_case, fields, received) => {
    expect(verifyCheckValue('secret', fields, received)).toBe(false);
  });

  it('rejects the right value under another salt', () => {
    expect(verifyCheckValue('Secret', ASSIST_VECTOR, 'D80E01190F204527CA15F453E05418BC')).toBe(false);
  });
});
