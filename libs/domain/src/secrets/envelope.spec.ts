import { randomBytes } from 'node:crypto';

import { SecretBox, SecretError, parseMasterKey } from '../index';

const spec = (id: string) => `${id}:${randomBytes(32).toString('base64')}`;

describe(SecretBox.name, () => {
  const k1 = spec('k1');
  const k2 = spec('k2');

  it('round-trips and never contains the plaintext', () => {
    const sut = SecretBox.fromConfig(k1);
    const envelope = sut.encrypt('admin-password-123', 'terminal:t1:credentials');
    expect(envelope.startsWith('pe1.k1.')).toBe(true);
    expect(envelope).not.toContain('admin-password-123');
    expect(Buffer.from(envelope.split('.')[4]!, 'base64url').toString('utf8')).not.toContain('admin');
    expect(sut.decrypt(envelope, 'terminal:t1:credentials')).toBe('admin-password-123');
  });

  it('uses a fresh data key and IV per value', () => {
    const sut = SecretBox.fromConfig(k1);
    expect(sut.encrypt('same', 'a')).not.toBe(sut.encrypt('same', 'a'));
  });

  it('refuses a ciphertext moved to another row (AAD)', () => {
    const sut = SecretBox.fromConfig(k1);
    const envelope = sut.encrypt('secret', 'terminal:t1:credentials');
    expect(() => sut.decrypt(envelope, 'terminal:t2:credentials')).toThrow(SecretError);
  });

  it('detects tampering', () => {
    const sut = SecretBox.fromConfig(k1);
    const parts = sut.encrypt('secret', 'x').split('.');
    const ct = Buffer.from(parts[4]!, 'base64url');
    ct[0] = ct[0]! ^ 1;
    parts[4] = ct.toString('base64url');
    expect(() => sut.decrypt(parts.join('.'), 'x')).toThrow(expect.objectContaining({ code: 'SECRET_TAMPERED' }));
  });

  it('decrypts after rotation with the old key kept as previous, and rewraps to the new key', () => {
    const old = SecretBox.fromConfig(k1);
    const envelope = old.encrypt('assist-password', 'assist:m1');
    const rotated = SecretBox.fromConfig(k2, [k1]);
    expect(rotated.decrypt(envelope, 'assist:m1')).toBe('assist-password');
    const rewrapped = rotated.rewrap(envelope);
    expect(rotated.keyIdOf(rewrapped)).toBe('k2');
    const onlyNew = SecretBox.fromConfig(k2);
    expect(onlyNew.decrypt(rewrapped, 'assist:m1')).toBe('assist-password');
    expect(() => onlyNew.decrypt(envelope, 'assist:m1')).toThrow(expect.objectContaining({ code: 'SECRET_KEY_UNKNOWN' }));
  });

  it('keyed digests: not guessable without the master key, matched across a rotation, bound to their purpose', () => {
    const old = SecretBox.fromConfig(k1);
    const digest = old.digest('idempotency request', 'POST /v1/terminals {"password":"1234"}');
    expect(digest).toMatch(/^hmac1\.k1\.[0-9a-f]{64}$/);
    // Another master key (an attacker's guess) yields another digest: the stored one cannot be brute-forced offline.
    expect(SecretBox.fromConfig(spec('k1')).digest('idempotency request', 'POST /v1/terminals {"password":"1234"}')).not.toBe(digest);
    const rotated = SecretBox.fromConfig(k2, [k1]);
    expect(rotated.matchesDigest('idempotency request', 'POST /v1/terminals {"password":"1234"}', digest)).toBe(true);
    expect(rotated.matchesDigest('idempotency request', 'POST /v1/terminals {"password":"1235"}', digest)).toBe(false);
    expect(rotated.matchesDigest('another purpose', 'POST /v1/terminals {"password":"1234"}', digest)).toBe(false);
    expect(SecretBox.fromConfig(k2).matchesDigest('idempotency request', 'POST /v1/terminals {"password":"1234"}', digest)).toBe(false);
    expect(rotated.matchesDigest('idempotency request', 'x', 'not-a-digest')).toBe(false);
  });

  it('rejects malformed keys and envelopes', () => {
    expect(() => parseMasterKey('nocolon')).toThrow(expect.objectContaining({ code: 'SECRET_KEY_INVALID' }));
    expect(() => parseMasterKey('k:' + randomBytes(16).toString('base64'))).toThrow(SecretError);
    expect(() => SecretBox.fromConfig(k1).decrypt('garbage', 'x')).toThrow(expect.objectContaining({ code: 'SECRET_FORMAT' }));
  });
});
