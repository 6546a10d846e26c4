/**
 * Small rule checks used by the request builder. Each check records a {@link ValidationIssue}
 * naming the field and returns the normalised wire value (or `undefined` when absent/invalid).
 * Messages state the rule, never the value (values may be secrets or personal data).
 */
import { AMOUNT_PATTERN, MAX_AMOUNT_DIGITS } from './amount';
import { AssistValidationError, type ValidationIssue, type ValidationIssueCode } from './errors';

export interface TextRule {
  readonly required?: boolean;
  readonly min?: number;
  readonly max: number;
  readonly charset?: RegExp;
  readonly charsetText?: string;
}

const CONTROL_CHARS = /[\u0000-\u001f\u007f]/;

export class IssueCollector {
  readonly issues: ValidationIssue[] = [];

  add(field: string, code: ValidationIssueCode, message: string): undefined {
    this.issues.push({ field, code, message });
    return undefined;
  }

  throwIfAny(): void {
    if (this.issues.length > 0) throw new AssistValidationError(this.issues);
  }

  /** Absent (undefined, null, '') → REQUIRED when required, else skipped. */
  present(field: string, value: unknown, required: boolean | undefined): boolean {
    if (value === undefined || value === null || value === '') {
      if (required) this.add(field, 'REQUIRED', 'is required');
      return false;
    }
    return true;
  }

  /** Length is counted in characters (code points), as the spec's "N символов". */
  text(field: string, value: unknown, rule: TextRule): string | undefined {
    if (!this.present(field, value, rule.required)) return undefined;
    if (typeof value !== 'string') return this.add(field, 'INVALID_TYPE', 'must be a string');
    const length = [...value].length;
    if (rule.min !== undefined && length < rule.min) {
      return this.add(field, 'TOO_SHORT', `must be at least ${rule.min} characters`);
    }
    if (length > rule.max) return this.add(field, 'TOO_LONG', `must be at most ${rule.max} characters`);
    if (CONTROL_CHARS.test(value)) return this.add(field, 'INVALID_CHARACTERS', 'must not contain control characters');
    if (rule.charset && !rule.charset.test(value)) {
      return this.add(field, 'INVALID_CHARACTERS', `may contain only ${rule.charsetText ?? 'allowed characters'}`);
    }
    return value;
  }

  /** A value from a closed list of numbers (Delay, isConvert, FPMode …); numeric strings accepted. */
  oneOf<T extends number>(field: string, value: unknown, allowed: readonly T[], required = false): T | undefined {
    if (!this.present(field, value, required)) return undefined;
    const n = typeof value === 'string' && /^\d+$/.test(value) ? Number(value) : value;
    if (typeof n !== 'number' || !(allowed as readonly number[]).includes(n)) {
      return this.add(field, 'INVALID_VALUE', `must be one of ${allowed.join(', ')}`);
    }
    return n as T;
  }

  /** Spec amount rule: digits, optional '.' or ',' separator, at most 15 digits, greater than zero. */
  amount(field: string, value: unknown, required: boolean): string | undefined {
    if (!this.present(field, value, required)) return undefined;
    if (typeof value !== 'string') return this.add(field, 'INVALID_TYPE', 'must be a string (use toOrderAmount)');
    const match = AMOUNT_PATTERN.exec(value);
    if (!match) return this.add(field, 'INVALID_FORMAT', 'must be digits with an optional "." or "," separator');
    if (value.length - (match[2] === undefined ? 0 : 1) > MAX_AMOUNT_DIGITS) {
      return this.add(field, 'TOO_MANY_DIGITS', `must have at most ${MAX_AMOUNT_DIGITS} digits`);
    }
    if (!/[1-9]/.test(value)) return this.add(field, 'NOT_POSITIVE', 'must be greater than zero');
    return value;
  }
}

/** ClientIP: the spec says "at most 15 digits, 4 '.' separators"; we accept exactly a dotted-quad IPv4. */
export function isIpv4(value: string): boolean {
  const parts = value.split('.');
  return parts.length === 4 && parts.every((p) => /^(0|[1-9]\d{0,2})$/.test(p) && Number(p) <= 255);
}

/** DD.MM.YYYY that is a real calendar date (RecurringMaxDate). */
export function isDdMmYyyy(value: string): boolean {
  const m = /^(\d{2})\.(\d{2})\.(\d{4})$/.exec(value);
  if (!m) return false;
  const [day, month, year] = [Number(m[1]), Number(m[2]), Number(m[3])];
  const date = new Date(Date.UTC(year, month - 1, day));
  return date.getUTCFullYear() === year && date.getUTCMonth() === month - 1 && date.getUTCDate() === day;
}
