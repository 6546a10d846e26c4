import { randomUUID } from 'node:crypto';

import type { PrismaClient } from '@payorch/db';
import { SecretBox } from '@payorch/domain';
import { type AssistMerchantSecrets, sealMerchantSecrets } from '@payorch/wallet-payments';

import { SANDBOX_MERCHANT } from './server';
import { TEST_MERCHANT_PRIVATE_KEY_PEM } from './test-merchant-key';

/**
 * The sandbox account's secrets as a merchant's settings hold them: requests are signed with the test-only merchant
 * key, Assist's public key is not configured (the sandbox does not sign its answers).
 */
export const SANDBOX_MERCHANT_SECRETS: AssistMerchantSecrets = {
  login: SANDBOX_MERCHANT.login,
  password: SANDBOX_MERCHANT.password,
  salt: SANDBOX_MERCHANT.salt,
  privateKeyPem: TEST_MERCHANT_PRIVATE_KEY_PEM,
  assistPublicKeyPem: null,
};

/** A wallet token of Apple Pay's shape (its content is dummy: the sandbox charges any JSON object). */
export const SANDBOX_APPLE_PAY_TOKEN = { version: 'EC_v1', data: 'ZGF0YQ==', signature: 'c2ln', header: { transactionId: 't' } };

export interface SandboxMerchantRow {
  tenantId: string;
  /** Where the apps reach the sandbox (`sandbox.url`, or another spelling of it). */
  serverUrl: string;
  name: string;
  /** Set when the row is a marked duplicate of another settings row of the account. */
  duplicateOfId?: string;
}

/**
 * TEST TOOL: a tenant's Assist merchant settings for the sandbox's account, stored as they are (no API checks) with the
 * owner role's client, their secrets sealed under `masterKey` as the apps that unseal them have it
 * (`PAYORCH_MASTER_KEY`). Returns the row's id.
 */
export async function createSandboxMerchant(
  owner: PrismaClient,
  masterKey: string,
  { tenantId, serverUrl, name, duplicateOfId }: SandboxMerchantRow,
): Promise<string> {
  const id = randomUUID();
  await owner.assistMerchant.create({
    data: {
      id,
      tenantId,
      name,
      merchantId: SANDBOX_MERCHANT.merchantId,
      serverUrl,
      ...(duplicateOfId === undefined ? {} : { duplicateOfId }),
      secretsEncrypted: sealMerchantSecrets(SecretBox.fromConfig(masterKey), tenantId, id, SANDBOX_MERCHANT_SECRETS),
    },
  });
  return id;
}
