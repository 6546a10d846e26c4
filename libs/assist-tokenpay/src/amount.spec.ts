import { fc, test } from '@fast-check/jest';
import { currencyExponent, orderAmountToMinorUnits, sameAmount, toOrderAmount } from './amount';
import { AssistValidationError } from './errors';

describe(toOrderAmount.name, () => {
  it.each([
    [2400, 'KZT', '24.00'],
    [1, 'RUB', '0.01'],
    [10145, 'RUB', '101.45'],
    [100, 'JPY', '100'],
    [1234, 'KWD', '1.234'],
    [999_999_999_999_999n, 'RUB', '9999999999999.99'],
    [5, 2, '0.05'],
  ] as const)('%s minor units of %s → %s', (minor, currency, expected) => {
    expect(toOrderAmount(minor, currency)).toBe(expected);
  });

  it.each([
    [0, 'RUB', 'NOT_POSITIVE'],
    [-5, 'RUB', 'NOT_POSITIVE'],
    [1.5, 'RUB', 'INVALID_VALUE'],
    [Number.MAX_SAFE_INTEGER + 1, 'RUB', 'INVALID_VALUE'],
    [1_000_000_000_000_000n, 'RUB', 'TOO_MANY_DIGITS'],
    [100, 'XXX', 'UNSUPPORTED_CURRENCY'],
  ] as const)('refuses %s %s (%s)', (minor, currency, code) => {
    expect(() => toOrderAmount(minor, currency)).toThrow(expect.objectContaining({ code }));
  });

  test.prop([fc.bigInt({ min: 1n, max: 999_999_999_999_999n }), fc.constantFrom('RUB', 'JPY', 'KWD')], { numRuns: 200 })(
    'round-trips exactly through orderAmountToMinorUnits',
    (minor, currency) => {
      const amount = toOrderAmount(minor, currency);
      expect(amount).toMatch(/^\d+(\.\d+)?$/);
      expect(orderAmountToMinorUnits(amount, currency)).toBe(minor);
      // Independent check: digits without the separator are the minor units, zero-padded.
      expect(BigInt(amount.replace('.', ''))).toBe(minor);
      expect(amount.split('.')[1]?.length ?? 0).toBe(currencyExponent(currency));
    },
  );
});

describe(orderAmountToMinorUnits.name, () => {
  it('accepts either separator and trailing zeros', () => {
    expect(orderAmountToMinorUnits('10,5', 'RUB')).toBe(1050n);
    expect(orderAmountToMinorUnits('10.500', 'RUB')).toBe(1050n);
    expect(orderAmountToMinorUnits('7', 'RUB')).toBe(700n);
  });

  it('refuses fractions finer than the currency allows instead of rounding', () => {
    expect(() => orderAmountToMinorUnits('1.005', 'RUB')).toThrow(AssistValidationError);
    expect(() => orderAmountToMinorUnits('1.5', 'JPY')).toThrow(AssistValidationError);
    expect(() => orderAmountToMinorUnits('1e3', 'RUB')).toThrow(AssistValidationError);
  });
});

describe(sameAmount.name, () => {
  it.each([
    ['24', '24.00', true],
    ['24,5', '24.50', true],
    ['024.00', '24', true],
    ['24.01', '24.1', false],
    ['abc', 'abc', false],
  ] as const)('%s vs %s → %s', (a, b, expected) => {
    expect(sameAmount(a, b)).toBe(expected);
  });
});
