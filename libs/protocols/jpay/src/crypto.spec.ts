import {
  decodeClientHandshake,
  decodeServerHandshake,
  encodeClientHandshake,
  encodeServerHandshake,
  JPAY_CRYPTO_ASSUMPTIONS,
  JpayEcdhe,
  JpaySessionKey,
} from './crypto';
import { openElement, sealElement } from './envelope';
import { CRYPTO_VECTOR } from './testing/spec-examples';
import { el, parseXml } from './xml';

const hex = (value: string): Buffer => Buffer.from(value, 'hex');
const client = (): JpayEcdhe => new JpayEcdhe(hex(CRYPTO_VECTOR.clientPrivateKey));
const server = (): JpayEcdhe => new JpayEcdhe(hex(CRYPTO_VECTOR.serverPrivateKey));
const vectorKey = (): JpaySessionKey => new JpaySessionKey(hex(CRYPTO_VECTOR.sharedSecret));

describe('§9 encryption, jpay-notes.md known-answer vector', () => {
  it('encodes the 69-byte client-handshake 03 0017 41 ‖ point', () => {
    const handshake = encodeClientHandshake(client().publicPoint);
    expect(handshake).toBe(CRYPTO_VECTOR.clientHandshake);
    expect(Buffer.from(handshake, 'base64').subarray(0, 5)).toEqual(Buffer.from([0x03, 0x00, 0x17, 0x41, 0x04]));
  });

  it('encodes the 66-byte server-handshake 41 ‖ point', () => {
    expect(encodeServerHandshake(server().publicPoint)).toBe(CRYPTO_VECTOR.serverHandshake);
  });

  it('derives the same 32-byte secret on both sides', () => {
    const clientKey = client().deriveKey(decodeServerHandshake(CRYPTO_VECTOR.serverHandshake));
    const serverKey = server().deriveKey(decodeClientHandshake(CRYPTO_VECTOR.clientHandshake));
    const plaintext = Buffer.from(CRYPTO_VECTOR.plaintext, 'utf8');
    const iv = hex(CRYPTO_VECTOR.iv);
    expect(clientKey.encrypt(plaintext, iv)).toBe(CRYPTO_VECTOR.encrypted);
    expect(serverKey.encrypt(plaintext, iv)).toBe(CRYPTO_VECTOR.encrypted);
  });

  it('encrypts to base64(tag ‖ 16-byte iv ‖ ciphertext) exactly as the vector', () => {
    const block = vectorKey().encrypt(Buffer.from(CRYPTO_VECTOR.plaintext, 'utf8'), hex(CRYPTO_VECTOR.iv));
    expect(block).toBe(CRYPTO_VECTOR.encrypted);
    expect(Buffer.from(block, 'base64').subarray(16, 32)).toEqual(hex(CRYPTO_VECTOR.iv));
    expect(JPAY_CRYPTO_ASSUMPTIONS.ivBytes).toBe(16);
  });

  it('decrypts the vector', () => {
    expect(Buffer.from(vectorKey().decrypt(CRYPTO_VECTOR.encrypted)).toString('utf8')).toBe(CRYPTO_VECTOR.plaintext);
  });

  it('rejects a tampered block with DECRYPT_FAILED', () => {
    const bytes = Buffer.from(CRYPTO_VECTOR.encrypted, 'base64');
    bytes[bytes.length - 1] ^= 0x01;
    expect(() => vectorKey().decrypt(bytes.toString('base64'))).toThrow(expect.objectContaining({ code: 'DECRYPT_FAILED' }));
    expect(() => vectorKey().decrypt('AAAA')).toThrow(expect.objectContaining({ code: 'DECRYPT_FAILED' }));
  });

  it('accepts the bare and the 69-byte server point forms, and rejects points off the curve', () => {
    const point = server().publicPoint;
    expect(decodeServerHandshake(point.toString('base64'))).toEqual(point);
    expect(decodeServerHandshake(encodeClientHandshake(point))).toEqual(point);
    const offCurve = Buffer.from(point);
    offCurve[40] ^= 0x01;
    expect(() => client().deriveKey(decodeServerHandshake(Buffer.concat([Buffer.of(0x41), offCurve]).toString('base64')))).toThrow(
      expect.objectContaining({ code: 'HANDSHAKE_INVALID' }),
    );
    expect(() => decodeServerHandshake('QQ==')).toThrow(expect.objectContaining({ code: 'HANDSHAKE_INVALID' }));
    expect(() => decodeClientHandshake(CRYPTO_VECTOR.serverHandshake)).toThrow(expect.objectContaining({ code: 'HANDSHAKE_INVALID' }));
  });

  it('seals an element keeping the root name and attributes, and opens it back', () => {
    const command = el('transaction', [el('type', 'purchase'), el('amount', '000000012300')], {
      'force-sbp': 'true',
    });
    const sealed = sealElement(command, vectorKey());
    expect(sealed.children.map((c) => c.name)).toEqual(['encrypted']);
    expect(sealed.attrs).toEqual({ 'force-sbp': 'true' });
    expect(openElement(sealed, vectorKey())).toEqual(command);
  });

  it('opens the vector block as <encrypted-data> and refuses a sealed packet without a key', () => {
    const sealed = parseXml(`<login><encrypted>${CRYPTO_VECTOR.encrypted}</encrypted></login>`);
    expect(openElement(sealed, vectorKey()).children.map((c) => [c.name, c.text])).toEqual([
      ['status', 'ok'],
      ['token', '392480923040932923'],
    ]);
    expect(() => openElement(sealed, undefined)).toThrow(expect.objectContaining({ code: 'ENCRYPTION_MISMATCH' }));
  });

  it('refuses a clear element where a sealed one is required: the answer to an encrypted command [JPAY-9-MIRROR]', () => {
    const clear = parseXml('<transaction><status>ok</status></transaction>');
    expect(openElement(clear, vectorKey())).toBe(clear);
    expect(() => openElement(clear, vectorKey(), { requireSealed: true })).toThrow(
      expect.objectContaining({ code: 'ENCRYPTION_MISMATCH', reaction: 'close-connection', details: { field: 'transaction' } }),
    );
  });

  it('never prints the key', () => {
    expect(JSON.stringify({ key: vectorKey() })).not.toContain('ccfc');
  });
});
