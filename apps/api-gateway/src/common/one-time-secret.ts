import { applyDecorators, SetMetadata } from '@nestjs/common';
import { ApiExtension } from '@nestjs/swagger';
import { z } from 'zod';

/** Route metadata read by the IdempotencyInterceptor: top-level answer fields that are one-time secrets. */
export const ONE_TIME_SECRETS_KEY = 'payorch:one-time-secrets';

/** Marker on every answer of a route that declares one-time secrets. */
export const SECRET_WITHHELD = 'secretWithheld';

/**
 * Response field names that look like a secret. The replay cache never keeps a non-empty string under
 * such a key, declared or not: an undeclared one is withheld as well (and logged), and the OpenAPI check
 * in test/security/secrets-at-rest.security-spec.ts fails for a mutating route that documents one
 * without `@ReturnsOneTimeSecrets`.
 */
export const SECRET_LIKE_KEY = /(secret|token|api_?key|password|credentials?|private_?key(_?pem)?|salt)$/i;

/**
 * The route's answer carries these top-level fields as secrets shown once (webhook signing secret,
 * enrollment token, …). The IdempotencyInterceptor stores the answer with them set to null and
 * `secretWithheld: true`, so a replay returns the resource and says the secret was already shown;
 * the first answer carries the secret and `secretWithheld: false`. Also listed in OpenAPI as
 * `x-one-time-secrets`.
 */
export const ReturnsOneTimeSecrets = (...fields: [string, ...string[]]) =>
  applyDecorators(SetMetadata(ONE_TIME_SECRETS_KEY, fields), ApiExtension('x-one-time-secrets', fields));

/**
 * Wire schema (OpenAPI) of an answer with one-time secrets: each secret field is nullable (null on a
 * replay) and `secretWithheld` says which case it is.
 */
export function withOneTimeSecrets<T extends z.ZodRawShape, S extends Record<string, z.ZodString>>(base: z.ZodObject<T>, secrets: S) {
  const fields = Object.fromEntries(
    Object.entries(secrets).map(([name, schema]) => [
      name,
      schema.nullable().describe(`${schema.description ?? ''} Shown once: null on an Idempotent-Replayed answer (\`${SECRET_WITHHELD}: true\`).`.trim()),
    ]),
  ) as { [K in keyof S]: z.ZodNullable<S[K]> };
  return base.extend({
    ...fields,
    [SECRET_WITHHELD]: z
      .boolean()
      .describe(
        'false: this answer carries the secret (store it now). true: a replay of the same Idempotency-Key; the secret fields are null because a secret is shown once and never stored in clear. Rotate it if it was lost.',
      ),
  });
}

/** Nulls every non-empty string under a secret-like key, in place (iterative: no depth limit); returns their paths. */
function withholdSecretLike(root: unknown): string[] {
  const withheld: string[] = [];
  const stack: { value: unknown; path: string }[] = [{ value: root, path: '' }];
  while (stack.length > 0) {
    const { value, path } = stack.pop()!;
    if (value === null || typeof value !== 'object') continue;
    for (const [key, child] of Object.entries(value)) {
      const childPath = Array.isArray(value) ? `${path}[${key}]` : path ? `${path}.${key}` : key;
      if (!Array.isArray(value) && typeof child === 'string' && child.length > 0 && SECRET_LIKE_KEY.test(key)) {
        (value as Record<string, unknown>)[key] = null;
        withheld.push(childPath);
      } else {
        stack.push({ value: child, path: childPath });
      }
    }
  }
  return withheld;
}

export interface SplitAnswer {
  /** The answer as sent now (with the secrets). */
  sent: unknown;
  /** The answer the replay cache may keep: no secret in it. */
  stored: unknown;
  /** Secret-like fields the route did not declare, withheld anyway (a bug to fix: declare them). */
  undeclared: string[];
}

/**
 * Splits a handler's answer into what is sent now and what the replay cache may keep. Declared
 * fields: sent as they are, with `secretWithheld: false`; stored as null with `secretWithheld: true`.
 * Any other non-empty string under a secret-like key is stored as null too (and `secretWithheld: true`).
 */
export function splitOneTimeSecrets(body: unknown, declared: readonly string[]): SplitAnswer {
  if (body === null || typeof body !== 'object') return { sent: body, stored: body ?? null, undeclared: [] };
  // The stored copy is what PostgreSQL's Json column would hold anyway.
  const stored = JSON.parse(JSON.stringify(body)) as Record<string, unknown>;
  let sent = body;
  if (declared.length > 0 && !Array.isArray(body)) {
    for (const field of declared) stored[field] = null;
    stored[SECRET_WITHHELD] = true;
    sent = { ...body, [SECRET_WITHHELD]: false };
  }
  const undeclared = withholdSecretLike(stored);
  if (undeclared.length > 0 && !Array.isArray(stored)) stored[SECRET_WITHHELD] = true;
  return { sent, stored, undeclared };
}
