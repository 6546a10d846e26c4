import { createCipheriv, createDecipheriv, createHmac, randomBytes, timingSafeEqual } from 'node:crypto';

import { PayorchError } from '../errors';

/**
 * Envelope encryption for tenant secrets at rest (terminal admin passwords, Assist credentials, keys).
 *
 * Each value gets a fresh 256-bit data key (DEK). The value is sealed with AES-256-GCM under the DEK,
 * and the DEK is sealed with AES-256-GCM under the master key-encryption key (KEK) from
 * PAYORCH_MASTER_KEY. The KEK id is stored with the ciphertext, so old values stay readable while a
 * new key is active, and `rewrap()` moves them to the new key without touching the plaintext's DEK.
 * `aad` binds a ciphertext to its row (e.g. `terminal:<id>:credentials`), so a ciphertext copied to
 * another row or tenant does not decrypt.
 *
 * Format: `pe1.<kid>.<wrappedDek b64url>.<iv b64url>.<ciphertext b64url>.<tag b64url>`
 * where wrappedDek = iv(12) ‖ tag(16) ‖ encrypted DEK(32).
 */
export type SecretErrorCode = 'SECRET_FORMAT' | 'SECRET_KEY_UNKNOWN' | 'SECRET_TAMPERED' | 'SECRET_KEY_INVALID';
export class SecretError extends PayorchError<SecretErrorCode> {}

const VERSION = 'pe1';

export interface MasterKey {
  id: string;
  key: Buffer;
}

/** Parses `<keyId>:<base64 of 32 bytes>`. */
export function parseMasterKey(spec: string): MasterKey {
  const i = spec.indexOf(':');
  const id = spec.slice(0, i);
  const key = Buffer.from(spec.slice(i + 1), 'base64');
  if (i <= 0 || !/^[A-Za-z0-9_-]{1,32}$/.test(id) || key.length !== 32) {
    throw new SecretError('SECRET_KEY_INVALID', 'master key must be "<keyId>:<base64 of 32 bytes>"');
  }
  return { id, key };
}

function seal(key: Buffer, plaintext: Buffer, aad: Buffer) {
  const iv = randomBytes(12);
  const cipher = createCipheriv('aes-256-gcm', key, iv);
  cipher.setAAD(aad);
  const ct = Buffer.concat([cipher.update(plaintext), cipher.final()]);
  return { iv, ct, tag: cipher.getAuthTag() };
}

function open(key: Buffer, iv: Buffer, ct: Buffer, tag: Buffer, aad: Buffer): Buffer {
  try {
    const decipher = createDecipheriv('aes-256-gcm', key, iv);
    decipher.setAAD(aad);
    decipher.setAuthTag(tag);
    return Buffer.concat([decipher.update(ct), decipher.final()]);
  } catch {
    throw new SecretError('SECRET_TAMPERED', 'secret failed authentication (wrong key, wrong row, or modified)');
  }
}

const b64 = (b: Buffer) => b.toString('base64url');
const unb64 = (s: string) => Buffer.from(s, 'base64url');

export class SecretBox {
  private readonly active: MasterKey;
  private readonly keys: Map<string, Buffer>;

  constructor(active: MasterKey, previous: readonly MasterKey[] = []) {
    this.active = active;
    this.keys = new Map([...previous, active].map((k) => [k.id, k.key]));
  }

  static fromConfig(activeSpec: string, previousSpecs: readonly string[] = []): SecretBox {
    return new SecretBox(parseMasterKey(activeSpec), previousSpecs.map(parseMasterKey));
  }

  get activeKeyId(): string {
    return this.active.id;
  }

  encrypt(plaintext: string, aad: string): string {
    const dek = randomBytes(32);
    const aadBuf = Buffer.from(aad, 'utf8');
    const data = seal(dek, Buffer.from(plaintext, 'utf8'), aadBuf);
    const wrapped = this.wrap(this.active, dek);
    dek.fill(0);
    return [VERSION, this.active.id, b64(wrapped), b64(data.iv), b64(data.ct), b64(data.tag)].join('.');
  }

  decrypt(envelope: string, aad: string): string {
    const parts = this.parse(envelope);
    const dek = this.unwrap(parts.kid, parts.wrapped);
    try {
      return open(dek, parts.iv, parts.ct, parts.tag, Buffer.from(aad, 'utf8')).toString('utf8');
    } finally {
      dek.fill(0);
    }
  }

  /**
   * A keyed digest (`hmac1.<keyId>.<hex>`, HMAC-SHA256 under a key derived from the active master key
   * for `purpose`) of a value that must not be guessable offline from the database: e.g. a request
   * body holding a short write-only password. Without the master key, a stored digest says nothing.
   */
  digest(purpose: string, value: string): string {
    return `hmac1.${this.active.id}.${this.hmac(this.active.key, purpose, value)}`;
  }

  /** Whether `stored` is the digest of `value` under the key it names (active or previous). */
  matchesDigest(purpose: string, value: string, stored: string): boolean {
    const [version, kid, hex] = stored.split('.');
    const key = kid ? this.keys.get(kid) : undefined;
    if (version !== 'hmac1' || !key || !hex) return false;
    const expected = Buffer.from(this.hmac(key, purpose, value), 'hex');
    const actual = Buffer.from(hex, 'hex');
    return expected.length === actual.length && timingSafeEqual(expected, actual);
  }

  private hmac(masterKey: Buffer, purpose: string, value: string): string {
    const derived = createHmac('sha256', masterKey).update(`payorch digest key: ${purpose}`).digest();
    return createHmac('sha256', derived).update(value, 'utf8').digest('hex');
  }

  /** Key id an envelope was sealed with (to find values still on a retired key). */
  keyIdOf(envelope: string): string {
    return this.parse(envelope).kid;
  }

  /** Re-seals the data key under the active master key; the data itself is not re-encrypted. */
  rewrap(envelope: string): string {
    const parts = this.parse(envelope);
    if (parts.kid === this.active.id) return envelope;
    const dek = this.unwrap(parts.kid, parts.wrapped);
    const wrapped = this.wrap(this.active, dek);
    dek.fill(0);
    return [VERSION, this.active.id, b64(wrapped), b64(parts.iv), b64(parts.ct), b64(parts.tag)].join('.');
  }

  private wrap(master: MasterKey, dek: Buffer): Buffer {
    const sealed = seal(master.key, dek, Buffer.from(`${VERSION}:${master.id}`));
    return Buffer.concat([sealed.iv, sealed.tag, sealed.ct]);
  }

  private unwrap(kid: string, wrapped: Buffer): Buffer {
    const key = this.keys.get(kid);
    if (!key) throw new SecretError('SECRET_KEY_UNKNOWN', `no master key with id "${kid}" is configured`);
    if (wrapped.length !== 12 + 16 + 32) throw new SecretError('SECRET_FORMAT', 'wrapped data key has a wrong length');
    return open(key, wrapped.subarray(0, 12), wrapped.subarray(28), wrapped.subarray(12, 28), Buffer.from(`${VERSION}:${kid}`));
  }

  private parse(envelope: string) {
    const parts = envelope.split('.');
    if (parts.length !== 6 || parts[0] !== VERSION) {
      throw new SecretError('SECRET_FORMAT', 'not a payorch secret envelope');
    }
    const [, kid, wrapped, iv, ct, tag] = parts as [string, string, string, string, string, string];
    return { kid, wrapped: unb64(wrapped), iv: unb64(iv), ct: unb64(ct), tag: unb64(tag) };
  }
}
