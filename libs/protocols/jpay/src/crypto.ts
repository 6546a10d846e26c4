/**
 * §9 "Шифрование команд": ECDHE on secp256r1 + AES-256-GCM, byte formats per
 * `shared/specs/jpay-notes.md` (decoded from the documents' examples):
 *  - [JPAY-9-CH] `client-handshake` = base64(ECParameters + point): 03 ‖ 00 17 ‖ 41 ‖ 04 X Y (69 bytes);
 *  - [JPAY-9-SH] `server-handshake` = base64(41 ‖ 04 X Y) (66 bytes); on input we also accept the bare
 *                65-byte point and the 69-byte form; any point not on P-256 is rejected;
 *  - [JPAY-9-BLOCK] `<encrypted>` = base64(tag(16) ‖ iv(16) ‖ ciphertext).
 * The three assumptions no vendor source confirms live in `JPAY_CRYPTO_ASSUMPTIONS`, and only here.
 */
import { createCipheriv, createDecipheriv, createECDH, randomBytes, type ECDH } from 'node:crypto';

import { JpayError } from './errors';

export const JPAY_CRYPTO_ASSUMPTIONS = {
  /** 1. The 32-byte ECDH secret (X coordinate) is the AES-256 key, no KDF ("Этот секрет используется как ключ AES256"). */
  kdf: 'none',
  /** 2. "начальное значение (iv) длиной 16 байтов" — not GCM's usual 12. */
  ivBytes: 16,
  /** 3. No additional authenticated data. */
  aad: undefined,
} as const;

const CURVE = 'prime256v1';
const TAG_BYTES = 16;
const KEY_BYTES = 32;
const POINT_BYTES = 65;
const EC_PARAMS_PREFIX = Buffer.from([0x03, 0x00, 0x17, 0x41]);

/** The AES-256-GCM key of a secure session. Opaque: never printed, serialised or logged. */
export class JpaySessionKey {
  readonly #key: Buffer;

  constructor(key: Uint8Array) {
    if (key.length !== KEY_BYTES) {
      throw new JpayError('HANDSHAKE_INVALID', `session key must be ${KEY_BYTES} bytes`);
    }
    this.#key = Buffer.from(key);
  }

  /** [JPAY-9-BLOCK] Returns base64(tag ‖ iv ‖ ciphertext). `iv` is random unless given (tests). */
  encrypt(plaintext: Uint8Array, iv: Uint8Array = randomBytes(JPAY_CRYPTO_ASSUMPTIONS.ivBytes)): string {
    if (iv.length !== JPAY_CRYPTO_ASSUMPTIONS.ivBytes) {
      throw new JpayError('INVALID_ARGUMENT', `iv must be ${JPAY_CRYPTO_ASSUMPTIONS.ivBytes} bytes`, { field: 'iv' });
    }
    const cipher = createCipheriv('aes-256-gcm', this.#key, iv, { authTagLength: TAG_BYTES });
    const ciphertext = Buffer.concat([cipher.update(plaintext), cipher.final()]);
    return Buffer.concat([cipher.getAuthTag(), iv, ciphertext]).toString('base64');
  }

  /** [JPAY-9-BLOCK] Throws `DECRYPT_FAILED` on a short block or a failed authentication. */
  decrypt(block: string): Uint8Array {
    const bytes = Buffer.from(block.replace(/\s+/g, ''), 'base64');
    const headerBytes = TAG_BYTES + JPAY_CRYPTO_ASSUMPTIONS.ivBytes;
    if (bytes.length < headerBytes) {
      throw new JpayError('DECRYPT_FAILED', 'encrypted block shorter than tag + iv [JPAY-9-BLOCK]');
    }
    try {
      const decipher = createDecipheriv('aes-256-gcm', this.#key, bytes.subarray(TAG_BYTES, headerBytes), {
        authTagLength: TAG_BYTES,
      });
      decipher.setAuthTag(bytes.subarray(0, TAG_BYTES));
      return Buffer.concat([decipher.update(bytes.subarray(headerBytes)), decipher.final()]);
    } catch (cause) {
      throw new JpayError('DECRYPT_FAILED', 'encrypted block failed authentication [JPAY-9-BLOCK]', {}, { cause });
    }
  }

  toJSON(): string {
    return '[JpaySessionKey]';
  }

  [Symbol.for('nodejs.util.inspect.custom')](): string {
    return '[JpaySessionKey]';
  }
}

/** One side of the ECDHE exchange. */
export class JpayEcdhe {
  readonly #ecdh: ECDH;

  /** `privateKey` only for known-answer tests; otherwise a fresh key pair is generated. */
  constructor(privateKey?: Uint8Array) {
    this.#ecdh = createECDH(CURVE);
    if (privateKey) this.#ecdh.setPrivateKey(Buffer.from(privateKey));
    else this.#ecdh.generateKeys();
  }

  /** Uncompressed public point 04 ‖ X ‖ Y. */
  get publicPoint(): Buffer {
    return this.#ecdh.getPublicKey(null, 'uncompressed');
  }

  /** Derives the session key from the peer's point; rejects points not on P-256. */
  deriveKey(peerPoint: Uint8Array): JpaySessionKey {
    try {
      return new JpaySessionKey(this.#ecdh.computeSecret(Buffer.from(peerPoint)));
    } catch (cause) {
      if (cause instanceof JpayError) throw cause;
      throw new JpayError('HANDSHAKE_INVALID', 'peer point is not on secp256r1 [JPAY-9-SH]', {}, { cause });
    }
  }
}

function checkPoint(point: Buffer, what: string): Buffer {
  if (point.length !== POINT_BYTES || point[0] !== 0x04) {
    throw new JpayError('HANDSHAKE_INVALID', `${what} is not an uncompressed P-256 point`);
  }
  return point;
}

function fromBase64(value: string, what: string): Buffer {
  const trimmed = value.trim();
  if (!/^[A-Za-z0-9+/]+={0,2}$/.test(trimmed)) {
    throw new JpayError('HANDSHAKE_INVALID', `${what} is not base64`);
  }
  return Buffer.from(trimmed, 'base64');
}

/** [JPAY-9-CH] */
export function encodeClientHandshake(point: Uint8Array): string {
  return Buffer.concat([EC_PARAMS_PREFIX, checkPoint(Buffer.from(point), 'client point')]).toString('base64');
}

/** [JPAY-9-CH] Simulator side: the 69-byte form only (what the document specifies for the client). */
export function decodeClientHandshake(handshake: string): Buffer {
  const bytes = fromBase64(handshake, 'client-handshake');
  if (bytes.length !== EC_PARAMS_PREFIX.length + POINT_BYTES || !bytes.subarray(0, 4).equals(EC_PARAMS_PREFIX)) {
    throw new JpayError('HANDSHAKE_INVALID', 'client-handshake is not 03 0017 41 ‖ point [JPAY-9-CH]');
  }
  return checkPoint(bytes.subarray(4), 'client-handshake point');
}

/** [JPAY-9-SH] */
export function encodeServerHandshake(point: Uint8Array): string {
  return Buffer.concat([Buffer.from([0x41]), checkPoint(Buffer.from(point), 'server point')]).toString('base64');
}

/** [JPAY-9-SH] Liberal: 41 ‖ point, the bare point, or the 69-byte ECParameters form. */
export function decodeServerHandshake(handshake: string): Buffer {
  const bytes = fromBase64(handshake, 'server-handshake');
  if (bytes.length === POINT_BYTES + 1 && bytes[0] === 0x41) return checkPoint(bytes.subarray(1), 'server-handshake');
  if (bytes.length === POINT_BYTES) return checkPoint(bytes, 'server-handshake');
  if (bytes.length === POINT_BYTES + 4 && bytes.subarray(0, 4).equals(EC_PARAMS_PREFIX)) {
    return checkPoint(bytes.subarray(4), 'server-handshake');
  }
  throw new JpayError('HANDSHAKE_INVALID', 'server-handshake has an unknown layout [JPAY-9-SH]');
}
