import {
  AssistTokenPayClient,
  createRsaMd5Signer,
  createRsaMd5Verifier,
  type AssistIntegrityError,
  type FetchLike,
  type IntegrityContext,
} from '@payorch/assist-tokenpay';

import type { AssistMerchantSecrets } from './merchant-secrets';

export interface AssistMerchantRow {
  readonly serverUrl: string;
  /** Assist's Merchant_ID (not our row id). */
  readonly merchantId: string;
}

export interface AssistClientSettings {
  /** Payment request deadline (gateway's ASSIST_TIMEOUT_MS). */
  readonly timeoutMs?: number;
  readonly orderStateTimeoutMs?: number;
  readonly orderStateAttempts?: number;
  readonly retryDelayMs?: number;
  /** Alert hook for answers that fail checkvalue or describe another order. Must not throw. */
  readonly onIntegrityFailure?: (error: AssistIntegrityError, context: IntegrityContext) => void;
  /** The HTTP client: the apps pass the egress guard's `guardedFetch` so the merchant's server URL obeys the platform egress policy. */
  readonly fetch?: FetchLike;
}

/** One client per call: the credentials live only as long as the request that needs them. */
export function createAssistClient(merchant: AssistMerchantRow, secrets: AssistMerchantSecrets, settings: AssistClientSettings = {}): AssistTokenPayClient {
  return new AssistTokenPayClient({
    baseUrl: merchant.serverUrl,
    merchantId: merchant.merchantId,
    login: secrets.login,
    password: secrets.password,
    salt: secrets.salt,
    signer: secrets.privateKeyPem ? createRsaMd5Signer(secrets.privateKeyPem) : undefined,
    // With Assist's public key configured, an answer without a valid signature is never trusted (SIGNATURE_MISSING / _MISMATCH).
    answerVerifier: secrets.assistPublicKeyPem ? createRsaMd5Verifier(secrets.assistPublicKeyPem) : undefined,
    ...withoutUndefined(settings),
  });
}

function withoutUndefined<T extends object>(value: T): Partial<T> {
  return Object.fromEntries(Object.entries(value).filter(([, v]) => v !== undefined)) as Partial<T>;
}
