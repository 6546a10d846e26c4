import { createPublicKey, generateKeyPairSync, verify } from 'node:crypto';
// Relative path because jest.preset.js maps `@payorch/testing/*` to `(\.*)` (dots only); see docs.
import { TEST_MERCHANT_PRIVATE_KEY_PEM, TEST_MERCHANT_PUBLIC_KEY_PEM } from '@payorch/testing/assist-sandbox/test-merchant-key';
import { createRsaMd5Signer, signatureBaseString } from './signature';

/**
 * Known answers computed once with OpenSSL, independently of node:crypto's call here:
 *   printf '%s' '<base>' | openssl dgst -md5 -sign key.pem | base64 -w0
 * with the committed TEST-ONLY key (libs/testing/src/assist-sandbox/test-merchant-key.ts).
 */
const KNOWN_ANSWERS = [
  {
    fields: { merchantId: '679471', orderNumber: '26012015_4', orderAmount: '24.00', orderCurrency: 'KZT' },
    base: '679471;26012015_4;24.00;KZT',
    signature:
      'jnSrjGs41TFulrRidKiYPwveh2+CsdCrPyVyv8NWy7iko7Qoj3CUCI65UcGlSK98HbGLyPmswyAm7TwWJDTaqYfe6d/sqL/k7M29DTWgXsq+vG6DL39SaGEiw8MS540+uMJY9WLv1ra+VmMp2SBsAJHV4y8S81mrDYBQGZNa2FA=',
  },
  {
    fields: { merchantId: '679471', orderNumber: 'заказ-1', orderAmount: '10,50', orderCurrency: 'RUB' },
    base: '679471;заказ-1;10,50;RUB',
    signature:
      'GjI5cdXgSHcjp7SRNNQobEUexz6P0Bt74HrOj0y2w54QIw+fNLc4jgdJYd4mMXkxzJciTDj+63GCrRBFUV60CzGIudHnNOFMrPEu/ailwqYMmac5vW0FnEN0tJNECLbKYtgb30y/T7CtqiOZlApEaCETUPh9OhS2B4i7S0id/ZM=',
  },
] as const;

describe('Signature', () => {
  it.each(KNOWN_ANSWERS)('base string is Merchant_ID;OrderNumber;OrderAmount;OrderCurrency ($base)', ({ fields, base }) => {
    expect(signatureBaseString(fields)).toBe(base);
  });

  it.each(KNOWN_ANSWERS)('RSA PKCS#1 v1.5 / MD5 matches the OpenSSL known answer for $base', async ({ base, signature }) => {
    const sign = createRsaMd5Signer(TEST_MERCHANT_PRIVATE_KEY_PEM);
    expect(await sign(base)).toBe(signature);
  });

  it('verifies with the public key and fails for another base string', async () => {
    const sign = createRsaMd5Signer(TEST_MERCHANT_PRIVATE_KEY_PEM);
    const signature = Buffer.from(await sign('679471;A;1.00;RUB'), 'base64');
    const key = createPublicKey(TEST_MERCHANT_PUBLIC_KEY_PEM);
    expect(signature).toHaveLength(128); // RSA-1024
    expect(verify('md5', Buffer.from('679471;A;1.00;RUB'), key, signature)).toBe(true);
    expect(verify('md5', Buffer.from('679471;A;1.01;RUB'), key, signature)).toBe(false);
  });

  it('refuses a key that is not an RSA private key', () => {
    const { privateKey } = generateKeyPairSync('ed25519');
    expect(() => createRsaMd5Signer(privateKey)).toThrow(TypeError);
    expect(() => createRsaMd5Signer(createPublicKey(TEST_MERCHANT_PUBLIC_KEY_PEM))).toThrow(TypeError);
  });
});
