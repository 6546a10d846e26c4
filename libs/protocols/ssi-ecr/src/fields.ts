import { SsiEcrError } from './errors';
import type { JsonValue } from './json';

/**
 * Named checks for field formats of spec 4.1 / 4.3.2. Each returns the typed value or throws
 * INVALID_FIELD (E09 "Format error", with the key in `errorParams`).
 */

/** Spec 4.3.2: amounts are n(12), minor units without separators ("2450" = 24.50). */
export const MAX_AMOUNT = 999_999_999_999;

export function invalid(field: string, message: string): SsiEcrError {
  return new SsiEcrError('INVALID_FIELD', `${field}: ${message}`, { reply: 'E09', field });
}

/** [spec 4.3.2 *] amount in minor units: a safe non-negative integer of at most 12 digits. */
export function checkAmount(field: string, value: number): number {
  if (!Number.isSafeInteger(value) || value < 0 || value > MAX_AMOUNT) {
    throw invalid(field, 'amount must be an integer number of minor units in [0, 999999999999]');
  }
  return value;
}

/** [spec 4.3.2 *] amount on the wire: a digit string (n(12)); terminals also send JSON numbers in responses. */
export function amountFromWire(field: string, value: JsonValue): number {
  if (typeof value === 'string' && /^\d{1,12}$/.test(value)) return Number(value);
  if (typeof value === 'number') return checkAmount(field, value);
  throw invalid(field, 'amount must be a string of 1-12 digits (minor units)');
}

export const amountToWire = (field: string, value: number): string => String(checkAmount(field, value));

type StringCheck = { readonly pattern: RegExp; readonly rule: string };

/** Spec 4.1 formats, as used by the keys of 4.3.2. */
export const STRING_FORMATS = {
  /** n(3) ISO 4217 numeric, e.g. "980". */
  currency: { pattern: /^\d{3}$/, rule: 'must be 3 digits (ISO 4217 numeric)' },
  /** n, leading zeros significant ("000456"). */
  digits: { pattern: /^\d{1,12}$/, rule: 'must be 1-12 digits' },
  /** an: letters and digits (rrn, authCode). */
  alnum: { pattern: /^[0-9A-Za-z]{1,32}$/, rule: 'must be 1-32 letters or digits' },
  /** an, but real terminals pad merchant ids with spaces ("EXIM CASH      "): printable ASCII, never trimmed. */
  merchantId: { pattern: /^[\x20-\x7e]{1,32}$/, rule: 'must be 1-32 printable ASCII characters' },
  /** ans (terminalId, fontStyle): any printable text, at most 256 characters. */
  text: { pattern: /^[^\x00-\x1f]{1,256}$/u, rule: 'must be 1-256 printable characters' },
  /** Later revision: client-chosen operation id. */
  uid: { pattern: /^[0-9A-Za-z_-]{1,64}$/, rule: 'must be 1-64 characters [0-9A-Za-z_-]' },
} as const satisfies Record<string, StringCheck>;

export type StringFormat = keyof typeof STRING_FORMATS;

export function checkString(field: string, format: StringFormat, value: unknown): string {
  const check = STRING_FORMATS[format];
  if (typeof value !== 'string' || !check.pattern.test(value)) throw invalid(field, check.rule);
  return value;
}

/** Spec 5.5.8: an http(s) URL of a PDF file. */
export function checkUrl(field: string, value: unknown): string {
  if (typeof value === 'string') {
    try {
      const url = new URL(value);
      if (url.protocol === 'http:' || url.protocol === 'https:') return value;
    } catch {
      // fall through to the typed error
    }
  }
  throw invalid(field, 'must be an http(s) URL');
}

/** Spec 5.5.7: the XML receipt to print, non-empty. */
export function checkReceiptXml(field: string, value: unknown): string {
  if (typeof value !== 'string' || value.length === 0) throw invalid(field, 'must be a non-empty XML string');
  return value;
}

export function checkBoolean(field: string, value: unknown): boolean {
  if (typeof value !== 'boolean') throw invalid(field, 'must be true or false');
  return value;
}

/** Spec 4.3.1 `step` (n, "reserved for multi-pass operations"); later revisions send it as a string. */
export type OperationStep = 0 | 1 | 2;

export function stepFromWire(value: unknown): OperationStep {
  const n = typeof value === 'string' && /^\d$/.test(value) ? Number(value) : value;
  if (n === 0 || n === 1 || n === 2) return n;
  throw invalid('step', 'must be 0, 1 or 2 (number or digit string)');
}
