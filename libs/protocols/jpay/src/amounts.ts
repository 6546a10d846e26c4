/**
 * Amount formats.
 *  - [JPAY-8.9-AMOUNT] "Сумма должна быть указана 12 цифрами с лидирующими нулями в копейках":
 *    integer minor units, 12 digits when we encode; on decode we accept 1–15 digits because the
 *    documents' own SBP/CFT receipt shows 11 (`00000000110`).
 *  - [JPAY-8.11-SIGN] report/settlement balances: "12 цифр со знаком. Знак плюс обозначается символом 'D'.
 *    Знак минус символом 'C'".
 */
import { JpayError } from './errors';

export const MAX_AMOUNT_MINOR = 999_999_999_999;

export function encodeAmount(minor: number, field = 'amount'): string {
  if (!Number.isSafeInteger(minor) || minor < 0 || minor > MAX_AMOUNT_MINOR) {
    throw new JpayError('INVALID_ARGUMENT', `${field} must be an integer 0..${MAX_AMOUNT_MINOR} minor units`, {
      field,
    });
  }
  return String(minor).padStart(12, '0');
}

export function decodeAmount(text: string, field = 'amount'): number {
  const trimmed = text.trim();
  if (!/^\d{1,15}$/.test(trimmed)) {
    throw new JpayError('FIELD_INVALID', `${field} is not an amount in minor units [JPAY-8.9-AMOUNT]`, { field });
  }
  return Number(trimmed);
}

/** Decodes `D000000001000` → 1000, `C000000001000` → -1000 (an unsigned value is read as positive). */
export function decodeSignedAmount(text: string, field = 'amount'): number {
  const match = /^([DC]?)(\d{1,15})$/.exec(text.trim());
  if (!match) {
    throw new JpayError('FIELD_INVALID', `${field} is not a D/C signed amount [JPAY-8.11-SIGN]`, {
      field,
    });
  }
  const value = Number(match[2]);
  return match[1] === 'C' && value !== 0 ? -value : value;
}

export function encodeSignedAmount(minor: number, field = 'amount'): string {
  const digits = encodeAmount(Math.abs(minor), field);
  return (minor < 0 ? 'C' : 'D') + digits;
}

export function decodeCount(text: string, field: string): number {
  const trimmed = text.trim();
  if (!/^\d{1,9}$/.test(trimmed)) {
    throw new JpayError('FIELD_INVALID', `${field} is not a count`, { field });
  }
  return Number(trimmed);
}
