/**
 * Request `Signature` (spec table, row Signature): the string
 * `Merchant_ID;OrderNumber;OrderAmount;OrderCurrency` is MD5-digested, the digest signed with the
 * merchant's private RSA key (the document says 1024 bits), and sent base64-encoded. That is
 * RSASSA-PKCS1-v1_5 with MD5. Newer Assist code uses Ed25519 (assist-notes.md), so the signer is
 * a plug-in: anything that turns the base string into the base64 signature.
 */
import { createPrivateKey, createPublicKey, sign, verify, type KeyObject } from 'node:crypto';

export type Signer = (baseString: string) => string | Promise<string>;

export interface SignatureFields {
  readonly merchantId: string;
  readonly orderNumber: string;
  readonly orderAmount: string;
  readonly orderCurrency: string;
}

/** `Merchant_ID;OrderNumber;OrderAmount;OrderCurrency`, values exactly as sent. */
export function signatureBaseString(f: SignatureFields): string {
  return [f.merchantId, f.orderNumber, f.orderAmount, f.orderCurrency].join(';');
}

/**
 * The document's signer: RSA PKCS#1 v1.5 over MD5 of the UTF-8 base string, base64.
 * @param privateKey PEM text or a KeyObject; must be an RSA private key.
 */
export function createRsaMd5Signer(privateKey: string | KeyObject): Signer {
  const key = typeof privateKey === 'string' ? createPrivateKey(privateKey) : privateKey;
  if (key.type !== 'private' || key.asymmetricKeyType !== 'rsa') {
    throw new TypeError('createRsaMd5Signer needs an RSA private key');
  }
  return (baseString) => sign('md5', Buffer.from(baseString, 'utf8'), key).toString('base64');
}

/**
 * Verifier of the answers' `signature` (response table: X signed by Assist's private key, base64), for
 * `answerVerifier`: RSA PKCS#1 v1.5 over MD5, the document's scheme for our requests, with Assist's public key.
 */
export function createRsaMd5Verifier(publicKey: string | KeyObject): (x: string, signatureBase64: string) => boolean {
  const key = typeof publicKey === 'string' ? createPublicKey(publicKey) : publicKey;
  if (key.asymmetricKeyType !== 'rsa') throw new TypeError('createRsaMd5Verifier needs an RSA public key');
  return (x, signatureBase64) => verify('md5', Buffer.from(x, 'utf8'), key, Buffer.from(signatureBase64, 'base64'));
}
