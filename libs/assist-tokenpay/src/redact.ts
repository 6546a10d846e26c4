/**
 * Redaction for anything that may reach a log line, an error or an API answer: credentials and
 * payment tokens are replaced, card numbers are masked to first 6 / last 4.
 */
import type { TokenPayFields } from './request';

/** Wire fields whose value is a secret (compared case-insensitively, as the server reads names). */
const SECRET_FIELDS = new Set(['password', 'paymenttoken', 'signature', 'salt']);

const SECRET_KEYS = /^(password|paymenttoken|token|signature|salt|privatekey|secret)$/i;

/** 12–19 consecutive digits (optionally split by spaces or dashes) are treated as a PAN. */
const PAN_LIKE = /\b\d(?:[ -]?\d){11,18}\b/g;

export function maskPan(text: string): string {
  return text.replace(PAN_LIKE, (match) => {
    const digits = match.replace(/[ -]/g, '');
    return `${digits.slice(0, 6)}${'*'.repeat(digits.length - 10)}${digits.slice(-4)}`;
  });
}

/** A log-safe copy of wire fields: secrets replaced by `[REDACTED n chars]`, PANs masked. */
export function redactFields(fields: TokenPayFields | URLSearchParams): Record<string, string> {
  const safe: Record<string, string> = {};
  for (const [name, value] of fields) {
    safe[name] = SECRET_FIELDS.has(name.toLowerCase()) ? `[REDACTED ${value.length} chars]` : maskPan(value);
  }
  return safe;
}

/**
 * A log-safe JSON view of any request-like object: keys named like secrets (password, token,
 * signature, salt, privateKey) are replaced and every string is PAN-masked.
 */
export function toSafeJSON(value: unknown): unknown {
  if (typeof value === 'string') return maskPan(value);
  if (Array.isArray(value)) return value.map(toSafeJSON);
  if (typeof value === 'object' && value !== null) {
    const out: Record<string, unknown> = {};
    for (const [key, v] of Object.entries(value)) {
      out[key] = SECRET_KEYS.test(key) ? `[REDACTED${typeof v === 'string' ? ` ${v.length} chars` : ''}]` : toSafeJSON(v);
    }
    return out;
  }
  return value;
}
