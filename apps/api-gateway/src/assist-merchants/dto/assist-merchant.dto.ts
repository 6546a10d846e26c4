import { createPrivateKey, createPublicKey } from 'node:crypto';

import { z } from 'zod';
import { nameSchemas } from '../../common/openapi-schema';
import { canonicalUuid } from '../../common/zod';

const LOOPBACK_HOSTS = new Set(['127.0.0.1', 'localhost', '[::1]']);

/** `https://…`; plain http only for a loopback sandbox (the same rule the Assist client enforces). */
function isAllowedServerUrl(value: string): boolean {
  try {
    const url = new URL(value);
    if (url.username || url.password || url.search || url.hash) return false;
    return url.protocol === 'https:' || (url.protocol === 'http:' && LOOPBACK_HOSTS.has(url.hostname));
  } catch {
    return false;
  }
}

/**
 * The URL as WHATWG URL spells it (scheme and host lower-cased, IDN hosts in punycode, IPv4 canonical, default port
 * dropped), without trailing slashes: one Assist server has one spelling, so one account one row (the database's
 * `payorch_assist_account` compares origins).
 */
function canonicalServerUrl(value: string): string {
  const url = new URL(value);
  return `${url.origin}${url.pathname}`.replace(/\/+$/, '');
}

/** An unencrypted RSA private key in PEM (PKCS#8 or PKCS#1). The value is never echoed in errors. */
function isRsaPrivateKeyPem(value: string): boolean {
  if (!value.includes('-----BEGIN')) return false;
  try {
    return createPrivateKey({ key: value, format: 'pem' }).asymmetricKeyType === 'rsa';
  } catch {
    return false;
  }
}

/** An RSA public key in PEM (SPKI or PKCS#1). */
function isRsaPublicKeyPem(value: string): boolean {
  if (!value.includes('-----BEGIN') || value.includes('PRIVATE KEY')) return false;
  try {
    return createPublicKey({ key: value, format: 'pem' }).asymmetricKeyType === 'rsa';
  } catch {
    return false;
  }
}

const fields = {
  assistPublicKeyPem: z
    .string()
    .max(16_384)
    .refine(isRsaPublicKeyPem, { message: 'must be an RSA public key in PEM (SPKI or PKCS#1)' })
    .nullable()
    .describe(
      "Assist's RSA public key (PEM) from Assist support: when set, every answer must carry a valid signature; null: answers are checked by checkvalue only.",
    ),
  login: z
    .string()
    .regex(/^[A-Za-z0-9_]{8,20}$/, { message: 'must be 8–20 Latin letters, digits or _ (Assist Login rule)' })
    .describe('Assist Login (sealed with the other secrets).'),
  merchantId: z
    .string()
    .regex(/^\d{1,20}$/, { message: 'must be the digits of Assist Merchant_ID' })
    .describe("Assist's Merchant_ID."),
  name: z.string().trim().min(1).max(200).describe('A label for this merchant account.'),
  password: z
    .string()
    .regex(/^[A-Za-z0-9]{8,20}$/, { message: 'must be 8–20 Latin letters or digits (Assist Password rule)' })
    .describe('Assist Password (write-only).'),
  privateKeyPem: z
    .string()
    .max(16_384)
    .refine(isRsaPrivateKeyPem, { message: 'must be an unencrypted RSA private key in PEM (PKCS#8 or PKCS#1)' })
    .nullable()
    .describe("The merchant's RSA private key that signs requests (write-only); null when the account does not require signatures."),
  salt: z.string().min(1).max(256).describe('The secret word (SALT) Assist uses for checkvalue (write-only).'),
  serverUrl: z
    .string()
    .trim()
    .max(500)
    .refine(isAllowedServerUrl, { message: 'must be an https:// URL (plain http only for 127.0.0.1/localhost)' })
    .transform(canonicalServerUrl)
    .describe('`https://<SERVER_NAME>` from Assist support (or the sandbox on loopback).'),
};

export const createAssistMerchantSchema = z.strictObject({
  ...fields,
  privateKeyPem: fields.privateKeyPem.optional(),
  assistPublicKeyPem: fields.assistPublicKeyPem.optional(),
});
export type CreateAssistMerchantDto = z.infer<typeof createAssistMerchantSchema>;

export const updateAssistMerchantSchema = z
  .strictObject(fields)
  .partial()
  .refine((v) => Object.keys(v).length > 0, { message: 'give at least one field to change' });
export type UpdateAssistMerchantDto = z.infer<typeof updateAssistMerchantSchema>;

/** Fields sealed in the merchant's encrypted envelope (the public key too: it decides what answers are trusted). */
export const SECRET_FIELDS = ['assistPublicKeyPem', 'login', 'password', 'privateKeyPem', 'salt'] as const;

export const assistMerchantResponseSchema = z.object({
  createdAt: z.string(),
  hasAssistPublicKey: z.boolean().describe("Answers' signatures are verified with Assist's public key."),
  hasPassword: z.boolean(),
  hasPrivateKey: z.boolean(),
  hasSalt: z.boolean(),
  id: canonicalUuid(),
  login: z.string(),
  merchantId: z.string(),
  name: z.string(),
  serverUrl: z.string(),
  updatedAt: z.string(),
});
export type AssistMerchantResponse = z.infer<typeof assistMerchantResponseSchema>;

nameSchemas({
  CreateAssistMerchantRequest: createAssistMerchantSchema,
  UpdateAssistMerchantRequest: updateAssistMerchantSchema,
  AssistMerchant: assistMerchantResponseSchema,
});
