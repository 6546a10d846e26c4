import { applyDecorators, Query } from '@nestjs/common';
import { ApiExtension, ApiQuery, type OpenAPIObject } from '@nestjs/swagger';
import { z } from 'zod';

import type { ApiErrorCode } from '@payorch/domain';

import { statusOf } from './error.filter';
import { NAMED, openApi } from './openapi-schema';
import { isWireCase } from './wire-enum';
import { ZodPipe } from './zod';

export { openApi };

/**
 * The API contract (docs/architecture.md, "API contract"). Controllers declare what is particular to a
 * route; `finalizeDocument` adds everything common, so a new controller gets the same treatment:
 *
 *   @RequireScopes('stores:write')        security `apiKey` + `x-scopes` (auth.guard.ts)
 *   @ApiBody({ schema: openApi(dto) })    a named request body (zod `.meta({ id })`, or `<OperationId>Request`)
 *   @ApiResponse({ status, schema: openApi(dto) | pageSchema(dto) })
 *   @ApiErrors('TERMINAL_DISABLED', …)    route-specific error codes (status from the error filter's map)
 *   @ValidQuery(schema)                   validates the query and documents each parameter
 *
 * and, for every operation: `Idempotency-Key` once on mutating calls, the one error envelope with the
 * codes each status can carry, `Retry-After` where the gateway sends it, named component schemas only.
 */

/** Every ApiErrorCode, at runtime (a Record so a new code fails the typecheck until it is listed). */
const ERROR_CODES: Record<ApiErrorCode, true> = {
  AGENT_REVOKED: true,
  AMOUNT_EXCEEDS_ORIGINAL: true,
  ASSIST_MERCHANT_DUPLICATE: true,
  CONFLICT: true,
  EGRESS_DENIED: true,
  FORBIDDEN: true,
  IDEMPOTENCY_KEY_IN_PROGRESS: true,
  IDEMPOTENCY_KEY_REQUIRED: true,
  IDEMPOTENCY_KEY_REUSED: true,
  INTERNAL: true,
  NOT_FOUND: true,
  ORIGINAL_ALREADY_CLOSED: true,
  RATE_LIMITED: true,
  RESOURCE_IN_USE: true,
  SERVICE_UNAVAILABLE: true,
  TERMINAL_DISABLED: true,
  TERMINAL_RECOVERING: true,
  TOO_MANY_STREAMS: true,
  UNAUTHENTICATED: true,
  UNPROCESSABLE: true,
  VALIDATION_FAILED: true,
  WALLET_AMOUNT_EXCEEDS_AUTHORIZED: true,
  WALLET_AMOUNT_EXCEEDS_CAPTURED: true,
  WALLET_OPERATION_IN_PROGRESS: true,
  WALLET_OPERATION_NOT_UNKNOWN: true,
  WALLET_PAYMENT_ALREADY_CANCELED: true,
  WALLET_PAYMENT_NOT_CANCELABLE: true,
  WALLET_PAYMENT_NOT_CAPTURABLE: true,
  WALLET_PAYMENT_NOT_UNKNOWN: true,
  WALLET_PAYMENT_ONE_STAGE: true,
  WALLET_RESOLUTION_STATE_MISMATCH: true,
};
export const API_ERROR_CODES = Object.keys(ERROR_CODES).sort() as ApiErrorCode[];

/** Codes that tell the client when to come back (`Retry-After`). */
const RETRY_AFTER_CODES = new Set<ApiErrorCode>([
  'IDEMPOTENCY_KEY_IN_PROGRESS',
  'RATE_LIMITED',
  'SERVICE_UNAVAILABLE',
  'TERMINAL_RECOVERING',
  'TOO_MANY_STREAMS',
]);

const ERROR_CODES_KEY = 'x-error-codes';
const SCOPES_KEY = 'x-scopes';
const PUBLIC_KEY = 'x-public';
export const SECURITY_SCHEME = 'apiKey';
const MUTATING = ['post', 'put', 'patch', 'delete'] as const;
const METHODS = ['get', ...MUTATING] as const;

/** Route-specific error codes (the status comes from error.filter.ts `statusOf`). */
export const ApiErrors = (...codes: ApiErrorCode[]) => ApiExtension(ERROR_CODES_KEY, { codes });
/** Documents the scopes a route needs (applied by RequireScopes). */
export const ApiScopes = (scopes: readonly string[]) => ApiExtension(SCOPES_KEY, { scopes: [...scopes] });
/** A route without an API key (applied by Public). */
export const ApiPublic = () => ApiExtension(PUBLIC_KEY, { public: true });

/** Validates the query string against `schema` (ZodPipe) and documents each of its fields as a query parameter. */
export function ValidQuery(schema: z.ZodObject): ParameterDecorator {
  return (target, key, index) => {
    Query(new ZodPipe(schema))(target, key, index);
    const descriptor = Object.getOwnPropertyDescriptor(target, key!)!;
    applyDecorators(...queryParameters(schema).map((p) => ApiQuery(p)))(target, key!, descriptor);
  };
}

function queryParameters(schema: z.ZodObject) {
  const json = openApi(schema) as { properties?: Record<string, Record<string, unknown>>; required?: string[] };
  return Object.entries(json.properties ?? {}).map(([name, property]) => {
    const { description, ...rest } = property;
    return { name, required: (json.required ?? []).includes(name), description: description as string | undefined, schema: rest };
  });
}

/** `{data: T[], nextCursor}`; named `<T>Page` when T is named. */
export function pageSchema(item: z.ZodType): Record<string, unknown> {
  const items = openApi(item);
  const page = {
    type: 'object',
    required: ['data', 'nextCursor'],
    properties: {
      data: { type: 'array', items },
      nextCursor: { type: 'string', nullable: true, description: 'Pass as `cursor` for the next page; null on the last page.' },
    },
  };
  const ref = typeof items.$ref === 'string' ? items.$ref.split('/').pop()! : null;
  if (!ref) return page;
  NAMED.set(`${ref}Page`, { json: JSON.stringify(page), schema: page });
  return { $ref: `#/components/schemas/${ref}Page` };
}

/** The one error body (ErrorFilter, and the raw-socket answers of common/raw-error.ts). */
const ERROR_SCHEMA = {
  type: 'object',
  required: ['error'],
  properties: {
    error: {
      type: 'object',
      required: ['code', 'message', 'details', 'requestId'],
      properties: {
        code: { $ref: '#/components/schemas/ErrorCode' },
        message: { type: 'string', description: 'For people; never parse it (use `code` and `details`).' },
        details: {
          type: 'object',
          nullable: true,
          additionalProperties: true,
          description:
            'Validation errors: `{issues: [{field, message}]}` (`field` is the dotted path, `(body)` for the whole body); other codes name their ids here.',
        },
        requestId: { type: 'string', description: 'Also in the `X-Request-Id` response header.' },
      },
    },
  },
};

/** Kept for controllers that still declare it with @ApiHeader: finalizeDocument replaces it with the shared parameter. */
export const IDEMPOTENCY_HEADER = { name: 'Idempotency-Key', required: true, description: 'See components.parameters.IdempotencyKey.' };

const IDEMPOTENCY_KEY = {
  name: 'Idempotency-Key',
  in: 'header',
  required: true,
  description:
    'Client-chosen key (8–128 chars of A-Z a-z 0-9 . _ : -). Same key + same request → the stored answer (`Idempotent-Replayed: true`; one-time secrets in it are null, `secretWithheld: true`); same key + different request → 409 IDEMPOTENCY_KEY_REUSED.',
  schema: { type: 'string', pattern: '^[A-Za-z0-9._:-]{8,128}$' },
};

const RETRY_AFTER = { description: 'Seconds to wait before retrying (same Idempotency-Key on mutating calls).', schema: { type: 'integer', minimum: 1 } };

const CODE_NOTES: Partial<Record<ApiErrorCode, string>> = {
  VALIDATION_FAILED:
    'malformed JSON, a field breaking its schema, a body nested deeper than 32 levels, NUL or a lone surrogate in any string, key, query parameter or path segment; also a body over 256 KB (413) or not `application/json` (415)',
  IDEMPOTENCY_KEY_REQUIRED: 'no `Idempotency-Key` header',
  IDEMPOTENCY_KEY_REUSED: 'the key was used with a different request',
  IDEMPOTENCY_KEY_IN_PROGRESS: 'the first request with this key is still running (`Retry-After`)',
  UNAUTHENTICATED: 'missing, invalid, revoked or expired API key',
  FORBIDDEN: 'the API key lacks a scope of `x-scopes`',
  NOT_FOUND: "no such resource (also for another tenant's ids)",
  RATE_LIMITED:
    'request budget of the API key or of the tenant (`details.scope`: `key` or `tenant`), or too many failed authentications from the address (`Retry-After`)',
  SERVICE_UNAVAILABLE: 'PostgreSQL or Redis unavailable; nothing was done (`Retry-After`)',
  INTERNAL: 'a bug; report the requestId',
  TERMINAL_DISABLED: 'the terminal is disabled',
  AGENT_REVOKED: "the terminal's agent is revoked",
  TERMINAL_RECOVERING: 'an operation of the terminal is still unknown (`Retry-After`)',
  TOO_MANY_STREAMS:
    'the tenant already holds its most live event streams on this gateway (`details.limit`); a slot frees when one of them closes (`Retry-After`: a hint)',
  RESOURCE_IN_USE: 'other resources still reference it',
  ASSIST_MERCHANT_DUPLICATE:
    'the tenant already has settings for this Assist merchant account (same server origin and Merchant_ID; `details.existingId`), or these settings are a duplicate kept only for their old payments',
  EGRESS_DENIED: 'the destination is refused by the egress policy',
  WALLET_PAYMENT_NOT_UNKNOWN: 'only an `unknown` wallet payment is resolved by hand (`details.state`: what it is now)',
  WALLET_OPERATION_NOT_UNKNOWN: 'only an `unknown` wallet payment operation is resolved by hand (`details.state`: what it is now)',
  WALLET_RESOLUTION_STATE_MISMATCH: 'a paid wallet payment resolves to `approved` when one-stage, `authorized` when two-stage (`details.twoStage`)',
};

interface Operation {
  operationId?: string;
  summary?: string;
  tags?: string[];
  parameters?: ({ name?: string; in?: string; $ref?: string } & Record<string, unknown>)[];
  requestBody?: { content?: Record<string, { schema?: Record<string, unknown> }> } & Record<string, unknown>;
  responses: Record<string, { description?: string; content?: Record<string, { schema?: Record<string, unknown> }>; headers?: Record<string, unknown> }>;
  security?: Record<string, string[]>[];
  [extension: `x-${string}`]: unknown;
}

/** The error codes an operation can answer: the common ones for its shape, plus its declared `x-error-codes`. */
export function errorCodesOf(op: Operation, method: string, path: string): ApiErrorCode[] {
  const codes = new Set<ApiErrorCode>(['VALIDATION_FAILED', 'INTERNAL', 'SERVICE_UNAVAILABLE']);
  if (!op[PUBLIC_KEY]) ['UNAUTHENTICATED', 'FORBIDDEN', 'RATE_LIMITED'].forEach((c) => codes.add(c as ApiErrorCode));
  if (path.includes('{')) codes.add('NOT_FOUND');
  if ((MUTATING as readonly string[]).includes(method) && !op[PUBLIC_KEY]) {
    ['IDEMPOTENCY_KEY_REQUIRED', 'IDEMPOTENCY_KEY_REUSED', 'IDEMPOTENCY_KEY_IN_PROGRESS'].forEach((c) => codes.add(c as ApiErrorCode));
  }
  for (const code of (op[ERROR_CODES_KEY] as { codes?: ApiErrorCode[] } | undefined)?.codes ?? []) codes.add(code);
  // Codes a controller names in its own error responses (`@ApiResponse({ status: 409, description: '`TERMINAL_DISABLED` …' })`).
  for (const [status, response] of Object.entries(op.responses)) {
    if (Number(status) < 400) continue;
    for (const [, name] of (response.description ?? '').matchAll(/`([A-Z][A-Z_]+)`/g)) if (name! in ERROR_CODES) codes.add(name as ApiErrorCode);
  }
  return [...codes].sort();
}

const pascal = (s: string) => s.replace(/(^|[^A-Za-z0-9])([A-Za-z0-9])/g, (_m, _s, c: string) => c.toUpperCase());

/** `StoresController.create` → `storesCreate` (unique, URL-safe; the generated client's method names). */
export function operationIdOf(controllerKey: string, methodKey: string): string {
  const base = controllerKey.replace(/Controller$/, '');
  return `${base.charAt(0).toLowerCase()}${base.slice(1)}${pascal(methodKey)}`;
}

/**
 * Completes the document Nest builds from the decorators: security scheme, scopes, Idempotency-Key,
 * error responses with their codes, Retry-After, and every body as a named component schema.
 */
export function finalizeDocument(document: OpenAPIObject): OpenAPIObject {
  const schemas: Record<string, unknown> = { ...(document.components?.schemas ?? {}) };
  for (const [id, { schema }] of NAMED) schemas[id] = schema;
  schemas.ErrorCode = {
    type: 'string',
    enum: API_ERROR_CODES,
    description: [
      'Every code the API answers (`error.code`). Each operation lists, per HTTP status, the codes it can return (`x-error-codes` on the response).',
      ...API_ERROR_CODES.map((c) => `- \`${c}\` (${statusOf(c)})${CODE_NOTES[c] ? `: ${CODE_NOTES[c]}` : ''}`),
    ].join('\n'),
  };
  schemas.Error = ERROR_SCHEMA;
  document.components = {
    ...document.components,
    schemas: schemas as never,
    securitySchemes: {
      [SECURITY_SCHEME]: {
        type: 'http',
        scheme: 'bearer',
        bearerFormat: 'API key (pok_…)',
        description:
          '`Authorization: Bearer <API key>`. Keys carry scopes; each operation lists the scopes it needs in `x-scopes` (403 FORBIDDEN when one is missing).',
      },
    },
    parameters: { IdempotencyKey: IDEMPOTENCY_KEY as never },
    headers: { RetryAfter: RETRY_AFTER as never },
  };
  document.security = [];
  const errorRef = { 'application/json': { schema: { $ref: '#/components/schemas/Error' } } };
  for (const [path, item] of Object.entries(document.paths)) {
    for (const method of METHODS) {
      const op = (item as Record<string, Operation | undefined>)[method];
      if (!op) continue;
      const isPublic = !!op[PUBLIC_KEY];
      const scopes = (op[SCOPES_KEY] as { scopes?: string[] } | undefined)?.scopes ?? [];
      op.security = isPublic ? [] : [{ [SECURITY_SCHEME]: [] }];
      if (!isPublic) op[SCOPES_KEY] = scopes;
      else delete op[SCOPES_KEY];
      if (!op.summary) op.summary = `${method.toUpperCase()} ${path}`;
      // Headers once: Idempotency-Key as a shared parameter on every mutating call, no duplicates.
      const seen = new Set<string>();
      op.parameters = (op.parameters ?? []).filter((p) => {
        const key = p.$ref ?? `${p.in}:${(p.name ?? '').toLowerCase()}`;
        if (key === 'header:idempotency-key' || seen.has(key)) return false;
        seen.add(key);
        return true;
      });
      if ((MUTATING as readonly string[]).includes(method) && !isPublic) op.parameters.push({ $ref: '#/components/parameters/IdempotencyKey' });
      if (op.parameters.length === 0) delete op.parameters;
      // Named bodies only.
      const name = pascal(op.operationId ?? `${method} ${path}`);
      for (const media of Object.values(op.requestBody?.content ?? {})) media.schema = hoist(schemas, media.schema, `${name}Request`);
      for (const [status, response] of Object.entries(op.responses)) {
        for (const media of Object.values(response.content ?? {}))
          media.schema = hoist(schemas, media.schema, `${name}${status === '200' || status === '201' || status === '202' ? '' : status}Response`);
      }
      // Error responses: one per status, listing its codes.
      const codes = errorCodesOf(op, method, path);
      delete op[ERROR_CODES_KEY];
      const byStatus = new Map<string, ApiErrorCode[]>();
      for (const code of codes) byStatus.set(String(statusOf(code)), [...(byStatus.get(String(statusOf(code))) ?? []), code]);
      for (const [status, list] of byStatus) {
        const own = op.responses[status]?.description;
        op.responses[status] = {
          description: [own, list.map((c) => `\`${c}\``).join(', ')].filter(Boolean).join('\n\n'),
          content: errorRef,
          ...(list.some((c) => RETRY_AFTER_CODES.has(c)) ? { headers: { 'Retry-After': { $ref: '#/components/headers/RetryAfter' } } } : {}),
          [ERROR_CODES_KEY]: list,
        } as never;
      }
      op.responses.default ??= { description: 'Any other error, in the same envelope.', content: errorRef };
      if (codes.includes('VALIDATION_FAILED') && op.requestBody) {
        op.responses['413'] = {
          description: '`VALIDATION_FAILED`: the body is over 256 KB.',
          content: errorRef,
          [ERROR_CODES_KEY]: ['VALIDATION_FAILED'],
        } as never;
        op.responses['415'] = {
          description: '`VALIDATION_FAILED`: the body is not `application/json`.',
          content: errorRef,
          [ERROR_CODES_KEY]: ['VALIDATION_FAILED'],
        } as never;
      }
    }
  }
  const used = new Set(
    Object.values(document.paths).flatMap((item) =>
      METHODS.flatMap((m) => ((item as Record<string, Operation | undefined>)[m]?.tags as string[] | undefined) ?? []),
    ),
  );
  document.tags = [...used].sort().map((name) => ({ name, description: TAG_DESCRIPTIONS[name] ?? `The ${name} resources.` }));
  return document;
}

const TAG_DESCRIPTIONS: Record<string, string> = {
  agents: 'The on-site bridges between tills and terminals: create, enroll (one-time token), revoke.',
  'assist-merchants': 'Assist merchant accounts that wallet payments are made through.',
  'api-keys': "The tenant's API keys: create (the key is shown once), list, revoke.",
  'audit-log': 'Every change made through the API, filterable.',
  'egress-rules': 'Where Joinproto relay traffic may go.',
  events: 'The live event stream (Server-Sent Events), resumable with Last-Event-ID.',
  operations: 'Terminal operations (purchase, refund, void, …), their outcomes and receipts.',
  'relay-sessions': 'The Joinproto relay audit.',
  settlements: 'Close-days, reconciliation and discrepancy reports; schedules; wallet summaries.',
  stores: 'Stores (one time zone each) that agents and terminals belong to.',
  terminals: 'Card terminals, their protocol and connection.',
  'wallet-payments': 'Apple Pay / Google Pay / Samsung Pay payments through Assist.',
  webhooks: 'Webhook endpoints and their deliveries (signed, retried).',
};

/** Moves an inline schema into components.schemas (reusing an identical one) and returns its `$ref`. */
function hoist(schemas: Record<string, unknown>, schema: Record<string, unknown> | undefined, name: string): Record<string, unknown> | undefined {
  if (!schema || schema.$ref) return schema;
  if (schema.type === 'string' && Object.keys(schema).length <= 2) return schema; // text/csv, text/event-stream bodies
  const json = JSON.stringify(schema);
  const same = Object.entries(schemas).find(([, s]) => JSON.stringify(s) === json);
  if (same) return { $ref: `#/components/schemas/${same[0]}` };
  let unique = name;
  for (let i = 2; schemas[unique]; i++) unique = `${name}${i}`;
  schemas[unique] = schema;
  return { $ref: `#/components/schemas/${unique}` };
}

/** Enums of error codes, SCREAMING_CASE like the envelope's: the envelope's own and a wallet payment's `error.code`. */
const ERROR_CODE_ENUMS = ['ErrorCode', 'WalletErrorCode'];

/**
 * Enum values of the document that are not lower snake_case. Namespaced names (`wallet_payment.created`,
 * `stores:write`) are checked per segment; error codes are excepted (ERROR_CODE_ENUMS).
 */
export function nonWireCaseEnums(document: unknown): string[] {
  const found: string[] = [];
  const walk = (value: unknown, where: string) => {
    if (Array.isArray(value)) return value.forEach((v, i) => walk(v, `${where}/${i}`));
    if (value === null || typeof value !== 'object') return;
    for (const [k, v] of Object.entries(value)) {
      if (k === 'enum' && Array.isArray(v) && !ERROR_CODE_ENUMS.some((name) => where.endsWith(`/${name}`)) && !where.includes('x-error-codes')) {
        for (const e of v) if (typeof e === 'string' && e !== '*' && !e.split(/[.:]/).every(isWireCase)) found.push(`${where}: ${e}`);
      } else walk(v, `${where}/${k}`);
    }
  };
  walk(document, '#');
  return found;
}
