import type { OpenAPIObject } from '@nestjs/swagger';
import type { z } from 'zod';

import { openApi } from './zod';

export const IDEMPOTENCY_HEADER = {
  name: 'Idempotency-Key',
  required: true,
  description:
    'Client-chosen key (8–128 chars of A-Z a-z 0-9 . _ : -). Same key + same request → the stored answer (`Idempotent-Replayed: true`; one-time secrets in it are null, `secretWithheld: true`); same key + different request → 409.',
};

export function pageSchema(item: z.ZodType): Record<string, unknown> {
  return {
    type: 'object',
    required: ['data', 'nextCursor'],
    properties: { data: { type: 'array', items: openApi(item) }, nextCursor: { type: 'string', nullable: true } },
  };
}

/** The one error body (ErrorFilter, and the raw-socket answers of common/raw-error.ts). */
export const ERROR_SCHEMA = {
  type: 'object',
  required: ['error'],
  properties: {
    error: {
      type: 'object',
      required: ['code', 'message', 'details', 'requestId'],
      properties: {
        code: { type: 'string', example: 'VALIDATION_FAILED' },
        message: { type: 'string' },
        details: {
          nullable: true,
          description: 'Validation errors: `{issues: [{field, message}]}` (`field` is the dotted path, `(body)` for the whole body).',
        },
        requestId: { type: 'string', description: 'Also in the `X-Request-Id` response header.' },
      },
    },
  },
};

const ERROR_RESPONSES: { status: string; description: string; when: (op: { security?: unknown[]; requestBody?: unknown }, path: string) => boolean }[] = [
  {
    status: '400',
    description:
      'VALIDATION_FAILED: malformed JSON, a field breaking its schema, a body nested deeper than 32 levels, NUL or a lone surrogate in any string, key, query parameter or path segment.',
    when: () => true,
  },
  { status: '401', description: 'UNAUTHENTICATED: missing, invalid, revoked or expired API key.', when: (op) => !!op.security?.length },
  { status: '404', description: "NOT_FOUND (also for another tenant's ids).", when: (_op, path) => path.includes('{') },
  { status: '413', description: 'Body over 256 KB.', when: (op) => !!op.requestBody },
  { status: '415', description: 'A body that is not `application/json`.', when: (op) => !!op.requestBody },
  {
    status: '429',
    description: 'RATE_LIMITED: per-key request budget, or too many failed authentications from the address (`Retry-After`).',
    when: (op) => !!op.security?.length,
  },
];

/** Declares the error envelope once (`components.schemas.Error`) and the errors every operation can answer. */
export function withErrorResponses(document: OpenAPIObject): OpenAPIObject {
  document.components = { ...document.components, schemas: { ...document.components?.schemas, Error: ERROR_SCHEMA } };
  const ref = { 'application/json': { schema: { $ref: '#/components/schemas/Error' } } };
  for (const [path, item] of Object.entries(document.paths)) {
    for (const op of [item.get, item.put, item.post, item.delete, item.patch]) {
      if (!op) continue;
      for (const error of ERROR_RESPONSES) {
        if (error.when(op, path) && !op.responses[error.status]) op.responses[error.status] = { description: error.description, content: ref };
      }
      op.responses.default ??= { description: 'Any other error, in the same envelope.', content: ref };
    }
  }
  return document;
}
