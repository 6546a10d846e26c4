import { z } from 'zod';

import { ALL_SCOPES, type KeyScope, ROLE_SCOPES } from '@payorch/domain';

import { withOneTimeSecrets } from '../../common/one-time-secret';
import { nameSchemas } from '../../common/openapi-schema';
import { canonicalUuid } from '../../common/zod';

export const keyScopeField = z
  .enum([...ROLE_SCOPES, ...ALL_SCOPES])
  .describe('A role scope (`read`, `operate`, `admin`) or a fine scope (`stores:write`…); docs/security.md "Scopes".');

export const createApiKeySchema = z.strictObject({
  expiresInDays: z.number().int().min(1).max(3650).optional().describe('The key stops working after this many days; without it, it works until revoked.'),
  name: z.string().trim().min(1).max(100).describe('What the key is for (shown in the list and the audit log).'),
  scopes: z
    .array(keyScopeField)
    .min(1)
    .max(ROLE_SCOPES.length + ALL_SCOPES.length)
    .transform((scopes) => [...new Set(scopes)])
    .describe('What the key may do. A key never grants a scope it does not hold itself.'),
});
export type CreateApiKeyDto = z.infer<typeof createApiKeySchema>;

export const apiKeyResponseSchema = z.object({
  createdAt: z.string(),
  expiresAt: z.string().nullable(),
  id: canonicalUuid(),
  lastUsedAt: z.string().nullable().describe('Last successful authentication, recorded at most once a minute per key.'),
  name: z.string(),
  prefix: z.string().describe('The public part of the key (`pok_<prefix>_…`): find a key you hold in this list.'),
  revokedAt: z.string().nullable(),
  scopes: z.array(keyScopeField),
});
export type ApiKeyResponse = z.infer<typeof apiKeyResponseSchema>;

/** Only on create: the key itself, shown once (never stored, never in a replay). */
export const apiKeyWithSecretSchema = withOneTimeSecrets(apiKeyResponseSchema, {
  apiKey: z.string().describe('The API key `pok_…`; shown only now. Send it as `Authorization: Bearer <apiKey>`.'),
});
/** What the service returns; the IdempotencyInterceptor adds `secretWithheld` (route: @ReturnsOneTimeSecrets('apiKey')). */
export type ApiKeyWithSecret = ApiKeyResponse & { apiKey: string };

export function toApiKeyResponse(row: {
  createdAt: Date;
  expiresAt: Date | null;
  id: string;
  lastUsedAt: Date | null;
  name: string;
  prefix: string;
  revokedAt: Date | null;
  scopes: string[];
}): ApiKeyResponse {
  return {
    createdAt: row.createdAt.toISOString(),
    expiresAt: row.expiresAt?.toISOString() ?? null,
    id: row.id,
    lastUsedAt: row.lastUsedAt?.toISOString() ?? null,
    name: row.name,
    prefix: row.prefix,
    revokedAt: row.revokedAt?.toISOString() ?? null,
    scopes: row.scopes as KeyScope[],
  };
}

nameSchemas({ ApiKey: apiKeyResponseSchema, ApiKeyWithSecret: apiKeyWithSecretSchema, CreateApiKeyRequest: createApiKeySchema, KeyScope: keyScopeField });
