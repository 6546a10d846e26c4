/**
 * PaymentToken checks per TokenType (spec table: "PaymentToken — JSON"; formats from
 * assist-notes.md): Apple Pay sends the raw `paymentData` JSON text (not base64), Google Pay the
 * `paymentMethodData.tokenizationData.token` JSON string. Only the outer envelope is checked; the
 * encrypted content is Assist's to decrypt.
 */
import type { TokenType } from './enums';
import type { IssueCollector } from './validate';

/** Our bound on the token text (the spec gives none); wallet tokens are a few KiB. */
export const MAX_PAYMENT_TOKEN_CHARS = 65_536;

const REQUIRED_KEYS: Readonly<Partial<Record<TokenType, readonly string[]>>> = {
  1: ['version', 'data', 'signature', 'header'],
  2: ['protocolVersion', 'signature', 'signedMessage'],
  5: ['Token', 'CustomerNumber'],
};

const FIELD = 'PaymentToken';

export function checkPaymentToken(issues: IssueCollector, value: unknown, tokenType: TokenType | undefined): string | undefined {
  if (!issues.present(FIELD, value, true)) return undefined;
  if (typeof value !== 'string') return issues.add(FIELD, 'INVALID_TYPE', 'must be the token JSON text');
  if (value.length > MAX_PAYMENT_TOKEN_CHARS) {
    return issues.add(FIELD, 'TOO_LONG', `must be at most ${MAX_PAYMENT_TOKEN_CHARS} characters`);
  }
  const parsed = parseJsonObject(value);
  if (!parsed) {
    if (looksLikeBase64Json(value)) {
      return issues.add(FIELD, 'TOKEN_IS_BASE64', 'must be the raw token JSON text, not its base64 encoding');
    }
    return issues.add(FIELD, 'INVALID_JSON', 'must be a JSON object');
  }
  const required = tokenType === undefined ? undefined : REQUIRED_KEYS[tokenType];
  const missing = (required ?? []).filter((key) => parsed[key] === undefined || parsed[key] === null);
  if (missing.length > 0) {
    return issues.add(FIELD, 'MISSING_KEY', `token JSON lacks ${missing.join(', ')} for TokenType ${tokenType}`);
  }
  if (Object.keys(parsed).length === 0) return issues.add(FIELD, 'INVALID_VALUE', 'must not be an empty object');
  return value;
}

function parseJsonObject(text: string): Record<string, unknown> | undefined {
  try {
    const value: unknown = JSON.parse(text);
    return typeof value === 'object' && value !== null && !Array.isArray(value) ? (value as Record<string, unknown>) : undefined;
  } catch {
    return undefined;
  }
}

function looksLikeBase64Json(text: string): boolean {
  if (!/^[A-Za-z0-9+/=\s]+$/.test(text)) return false;
  return parseJsonObject(Buffer.from(text, 'base64').toString('utf8')) !== undefined;
}
