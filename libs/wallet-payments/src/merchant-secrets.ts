import type { SecretBox } from '@payorch/domain';

/** The Assist merchant's secrets, sealed together into `AssistMerchant.secretsEncrypted`. */
export interface AssistMerchantSecrets {
  readonly login: string;
  readonly password: string;
  /** The secret word Assist uses for checkvalue. */
  readonly salt: string;
  /** PKCS#8 or PKCS#1 PEM of the merchant's RSA key (signs requests); absent if the merchant does not sign. */
  readonly privateKeyPem: string | null;
  /** PEM of Assist's RSA public key: when set, every answer must carry a valid signature (never trusted otherwise). */
  readonly assistPublicKeyPem: string | null;
}

/** Binds the ciphertext to its tenant and row: copied to another row or tenant, it does not decrypt. */
export const assistMerchantAad = (tenantId: string, merchantRowId: string) => `assist-merchant:${tenantId}:${merchantRowId}:secrets`;

export function sealMerchantSecrets(box: SecretBox, tenantId: string, merchantRowId: string, secrets: AssistMerchantSecrets): string {
  const plain: AssistMerchantSecrets = {
    login: secrets.login,
    password: secrets.password,
    salt: secrets.salt,
    privateKeyPem: secrets.privateKeyPem,
    assistPublicKeyPem: secrets.assistPublicKeyPem,
  };
  return box.encrypt(JSON.stringify(plain), assistMerchantAad(tenantId, merchantRowId));
}

/** @throws SecretError when the envelope is not this row's (wrong tenant/row, tampered, unknown key). */
export function openMerchantSecrets(box: SecretBox, tenantId: string, merchantRowId: string, envelope: string): AssistMerchantSecrets {
  const value = JSON.parse(box.decrypt(envelope, assistMerchantAad(tenantId, merchantRowId))) as AssistMerchantSecrets;
  return {
    login: value.login,
    password: value.password,
    salt: value.salt,
    privateKeyPem: value.privateKeyPem ?? null,
    assistPublicKeyPem: value.assistPublicKeyPem ?? null,
  };
}
