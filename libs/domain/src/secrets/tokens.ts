import { createHash, randomBytes, timingSafeEqual } from 'node:crypto';

/**
 * Bearer secrets we issue: API keys, agent enrollment tokens and agent credentials.
 * Shown once; only a SHA-256 hash and a short public prefix (for lookup) are stored.
 * They carry 256 random bits, so a fast hash is enough (no password stretching needed).
 *
 * Format: `<kind>_<prefix: 12 base32 chars>_<secret: 43 base64url chars>`.
 */
export type TokenKind = 'pok' | 'pen' | 'pac';
export const TOKEN_KINDS = { apiKey: 'pok', enrollment: 'pen', agentCredential: 'pac' } as const satisfies Record<string, TokenKind>;

const ALPHABET = 'abcdefghijklmnopqrstuvwxyz234567';
const FORMAT = /^(pok|pen|pac)_([a-z2-7]{12})_([A-Za-z0-9_-]{43})$/;

export interface IssuedToken {
  token: string;
  prefix: string;
  hash: string;
}

export function hashToken(token: string): string {
  return createHash('sha256').update(token, 'utf8').digest('hex');
}

export function issueToken(kind: TokenKind): IssuedToken {
  const prefix = Array.from(randomBytes(12), (b) => ALPHABET[b & 31]).join('');
  const token = `${kind}_${prefix}_${randomBytes(32).toString('base64url')}`;
  return { token, prefix, hash: hashToken(token) };
}

/** The lookup prefix of a well-formed token of the expected kind, or null. */
export function tokenPrefix(token: string, kind: TokenKind): string | null {
  const m = FORMAT.exec(token);
  return m && m[1] === kind ? m[2]! : null;
}

export function verifyToken(token: string, storedHash: string): boolean {
  const a = Buffer.from(hashToken(token), 'hex');
  const b = Buffer.from(storedHash, 'hex');
  return a.length === b.length && timingSafeEqual(a, b);
}
