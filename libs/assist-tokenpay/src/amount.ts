/**
 * Exact conversion between integer minor units and the spec's OrderAmount string
 * ("Число, 15 цифр (разделители «.», «,»)"). No floating point anywhere.
 */
import { AssistValidationError } from './errors';

/** ISO 4217 minor-unit exponents of the currencies we expect at Assist. */
export const CURRENCY_EXPONENTS: Readonly<Record<string, number>> = {
  AMD: 2,
  AZN: 2,
  BYN: 2,
  CHF: 2,
  CNY: 2,
  EUR: 2,
  GBP: 2,
  GEL: 2,
  KGS: 2,
  KZT: 2,
  MDL: 2,
  RUB: 2,
  TJS: 2,
  TRY: 2,
  UAH: 2,
  USD: 2,
  UZS: 2,
  ISK: 0,
  JPY: 0,
  KRW: 0,
  VND: 0,
  BHD: 3,
  JOD: 3,
  KWD: 3,
  OMR: 3,
  TND: 3,
};

/** Spec: OrderAmount has at most 15 digits in total. */
export const MAX_AMOUNT_DIGITS = 15;

/** `^\d+([.,]\d+)?$`: digits with an optional '.' or ',' separator (spec table, OrderAmount). */
export const AMOUNT_PATTERN = /^(\d+)(?:[.,](\d+))?$/;

export function currencyExponent(currency: string): number {
  const exponent = CURRENCY_EXPONENTS[currency];
  if (exponent === undefined) {
    throw new AssistValidationError([
      {
        field: 'OrderCurrency',
        code: 'UNSUPPORTED_CURRENCY',
        message: 'currency has no known minor-unit exponent; pass the exponent explicitly',
      },
    ]);
  }
  return exponent;
}

/**
 * Minor units → OrderAmount: `toOrderAmount(2400, 'KZT') === '24.00'`,
 * `toOrderAmount(100, 'JPY') === '100'`. `currency` may be an ISO code or an explicit exponent.
 */
export function toOrderAmount(minorUnits: number | bigint, currency: string | number): string {
  if (typeof minorUnits === 'number' && !Number.isSafeInteger(minorUnits)) {
    throw amountError('INVALID_VALUE', 'minor units must be a safe integer');
  }
  const minor = BigInt(minorUnits);
  if (minor <= 0n) throw amountError('NOT_POSITIVE', 'amount must be greater than zero');
  const exponent = typeof currency === 'number' ? currency : currencyExponent(currency);
  const digits = minor.toString().padStart(exponent + 1, '0');
  if (digits.length > MAX_AMOUNT_DIGITS) {
    throw amountError('TOO_MANY_DIGITS', `at most ${MAX_AMOUNT_DIGITS} digits`);
  }
  if (exponent === 0) return digits;
  return `${digits.slice(0, -exponent)}.${digits.slice(-exponent)}`;
}

/**
 * OrderAmount (either separator) → minor units, exactly. Refuses fractions finer than the
 * currency allows (`'1.005'` in RUB), which would otherwise be rounded silently.
 */
export function orderAmountToMinorUnits(amount: string, currency: string | number): bigint {
  const match = AMOUNT_PATTERN.exec(amount);
  if (!match) throw amountError('INVALID_FORMAT', 'digits with an optional "." or "," separator');
  const exponent = typeof currency === 'number' ? currency : currencyExponent(currency);
  const integer = match[1] ?? '';
  const fraction = (match[2] ?? '').replace(/0+$/, '');
  if (fraction.length > exponent) {
    throw amountError('INVALID_VALUE', `more than ${exponent} fraction digits for this currency`);
  }
  return BigInt(integer + fraction.padEnd(exponent, '0'));
}

/**
 * Whether two OrderAmount strings denote the same number (`'24'`, `'24.00'` and `'24,0'` do).
 * Used to check that an answer is about the amount we asked for.
 */
export function sameAmount(a: string, b: string): boolean {
  const na = normalizeAmount(a);
  return na !== undefined && na === normalizeAmount(b);
}

function normalizeAmount(amount: string): string | undefined {
  const match = AMOUNT_PATTERN.exec(amount.trim());
  if (!match) return undefined;
  const integer = (match[1] ?? '').replace(/^0+(?=\d)/, '');
  const fraction = (match[2] ?? '').replace(/0+$/, '');
  return fraction ? `${integer}.${fraction}` : integer;
}

function amountError(code: 'INVALID_VALUE' | 'INVALID_FORMAT' | 'NOT_POSITIVE' | 'TOO_MANY_DIGITS', message: string) {
  return new AssistValidationError([{ field: 'OrderAmount', code, message }]);
}
