import { randomBytes } from 'node:crypto';

import { gatewayConfigSchema, loadConfig } from '@payorch/config';
import { createLogger } from '@payorch/logging';

import { buildOpenApiDocument, createGatewayApp } from './bootstrap';

/**
 * The OpenAPI document as the gateway serves it at /docs/openapi.json, without listening or touching
 * PostgreSQL (pools connect lazily) — for `npm run docs:openapi` (writes docs/openapi.json), which passes the
 * environment's DATABASE_APP_URL / REDIS_URL (the services read the environment only through libs/config).
 */
export async function openApiDocumentJson(env: { DATABASE_APP_URL?: string; REDIS_URL?: string } = {}): Promise<string> {
  const config = loadConfig('api-gateway', gatewayConfigSchema, {
    DATABASE_APP_URL: env.DATABASE_APP_URL ?? 'postgresql://payorch_app@127.0.0.1:5432/payorch',
    REDIS_URL: env.REDIS_URL ?? 'redis://127.0.0.1:6379',
    REDIS_KEY_PREFIX: `openapi-${randomBytes(4).toString('hex')}`,
    PAYORCH_MASTER_KEY: `k1:${randomBytes(32).toString('base64')}`,
    LOG_LEVEL: 'silent',
  });
  const app = await createGatewayApp(config, { logger: createLogger({ name: 'openapi', level: 'silent' }) });
  try {
    return serializeDocument(buildOpenApiDocument(app));
  } finally {
    await app.close();
  }
}

/** Stable text of a document: what docs/openapi.json holds (2-space JSON, trailing newline). */
export function serializeDocument(document: unknown): string {
  return `${JSON.stringify(document, null, 2)}\n`;
}
