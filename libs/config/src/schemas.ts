import { z } from 'zod';

import { bool, logLevel, masterKey, port, postgresUrl, previousMasterKeys, redisUrl } from './fields';

/**
 * One schema per app. Each entry's `.describe()` text feeds the README configuration table
 * (scripts/config-table.ts), so documentation cannot drift from the code.
 */

const common = {
  DATABASE_APP_URL: postgresUrl().describe(
    'PostgreSQL URL of the application role `payorch_app` (subject to row-level security).',
  ),
  LOG_LEVEL: logLevel().describe('pino log level.'),
  REDIS_KEY_PREFIX: z.string().default('payorch').describe('Prefix of every Redis key and BullMQ queue.'),
  REDIS_URL: redisUrl().describe('Redis URL (BullMQ, rate limits, command bus).'),
};

export const gatewayConfigSchema = z.object({
  ...common,
  GATEWAY_HOST: z.string().default('127.0.0.1').describe('Interface the REST API listens on.'),
  GATEWAY_PORT: port(3000).describe('Port of the REST API (`/v1`, `/docs`, `/health`, `/metrics`).'),
  PAYORCH_MASTER_KEY: masterKey().describe(
    'Active key-encryption key for secrets at rest: `<keyId>:<base64 32 bytes>`.',
  ),
  PAYORCH_PREVIOUS_MASTER_KEYS: previousMasterKeys().describe(
    'Comma-separated retired keys (`<keyId>:<base64>`) still accepted for decryption during rotation.',
  ),
  RATE_LIMIT_PER_MINUTE: z.coerce.number().int().min(1).default(600).describe('Requests per API key per minute.'),
  TRUST_PROXY: bool(false).describe('Trust X-Forwarded-* headers (behind a load balancer).'),
});
export type GatewayConfig = z.infer<typeof gatewayConfigSchema>;

export const connectorConfigSchema = z.object({
  ...common,
  CONNECTOR_HOST: z.string().default('127.0.0.1').describe('Interface the device connector listens on.'),
  CONNECTOR_INSTANCE_ID: z
    .string()
    .regex(/^[A-Za-z0-9_.-]{1,64}$/)
    .optional()
    .describe('Unique id of this connector instance (default: hostname-pid).'),
  CONNECTOR_PORT: port(3001).describe('Port of the agent WebSocket endpoint (`/agent`), `/health` and `/metrics`.'),
  PAYORCH_MASTER_KEY: masterKey().describe('Active key-encryption key (terminal credentials).'),
  PAYORCH_PREVIOUS_MASTER_KEYS: previousMasterKeys().describe('Retired keys still accepted for decryption.'),
  TUNNEL_MAX_PAYLOAD_BYTES: z.coerce
    .number()
    .int()
    .min(1024)
    .max(16 * 1024 * 1024)
    .default(1024 * 1024)
    .describe('Largest WebSocket message accepted from an agent.'),
});
export type ConnectorConfig = z.infer<typeof connectorConfigSchema>;

export const workerConfigSchema = z.object({
  ...common,
  WORKER_CONCURRENCY: z.coerce.number().int().min(1).max(256).default(8).describe('Jobs processed in parallel per worker.'),
  WORKER_HEALTH_HOST: z.string().default('127.0.0.1').describe('Interface of the worker health endpoint.'),
  WORKER_HEALTH_PORT: port(3002).describe('Port of the worker `/health` and `/metrics`.'),
});
export type WorkerConfig = z.infer<typeof workerConfigSchema>;

export const schemasByApp = {
  'api-gateway': gatewayConfigSchema,
  'device-connector': connectorConfigSchema,
  'settlement-worker': workerConfigSchema,
} as const;
