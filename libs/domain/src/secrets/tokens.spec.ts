import { issueToken, TOKEN_KINDS, tokenPrefix, verifyToken } from '../index';

describe('issued tokens', () => {
  it('issues a token whose prefix and hash verify, and never stores the secret part', () => {
    const issued = issueToken(TOKEN_KINDS.apiKey);
    expect(issued.token).toMatch(/^pok_[a-z2-7]{12}_[A-Za-z0-9_-]{43}$/);
    expect(tokenPrefix(issued.token, 'pok')).toBe(issued.prefix);
    expect(issued.hash).toMatch(/^[0-9a-f]{64}$/);
    // The secret is base64url and may itself contain '_': it is everything after `pok_<prefix>_`.
    const secret = issued.token.slice(`pok_${issued.prefix}_`.length);
    expect(secret).toHaveLength(43);
    expect(issued.hash).not.toContain(secret);
    expect(verifyToken(issued.token, issued.hash)).toBe(true);
  });

  it('rejects other kinds, malformed tokens and wrong secrets', () => {
    const issued = issueToken(TOKEN_KINDS.enrollment);
    expect(tokenPrefix(issued.token, 'pok')).toBeNull();
    expect(tokenPrefix('pok_short_x', 'pok')).toBeNull();
    const tampered = issued.token.slice(0, -1) + (issued.token.endsWith('A') ? 'B' : 'A');
    expect(verifyToken(tampered, issued.hash)).toBe(false);
    expect(verifyToken(issued.token, 'abcd')).toBe(false);
  });

  it('gives distinct tokens and prefixes', () => {
    const seen = new Set(Array.from({ length: 200 }, () => issueToken('pac').prefix));
    expect(seen.size).toBe(200);
  });
});
