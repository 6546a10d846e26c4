import { randomBytes } from 'node:crypto';

import { DEFAULT_MAX_FRAME_BYTES } from '@payorch/tunnel';

import { ConfigError, connectorConfigSchema, gatewayConfigSchema, loadConfig, workerConfigSchema } from './index';

const key = `k1:${randomBytes(32).toString('base64')}`;

describe(loadConfig.name, () => {
  it('parses a valid environment with defaults', () => {
    const config = loadConfig('api-gateway', gatewayConfigSchema, {
      DATABASE_APP_URL: 'postgresql://payorch_app@127.0.0.1/payorch',
      PAYORCH_MASTER_KEY: key,
      PAYORCH_PREVIOUS_MASTER_KEYS: '',
    });
    expect(config).toMatchObject({
      GATEWAY_PORT: 3000,
      GATEWAY_HOST: '127.0.0.1',
      REDIS_URL: 'redis://127.0.0.1:6379',
      RATE_LIMIT_PER_MINUTE: 600,
      TRUST_PROXY: false,
      PAYORCH_PREVIOUS_MASTER_KEYS: [],
    });
  });

  it("defaults the connector's tunnel frame bound to the tunnel library's (the agent announces that one)", () => {
    const config = loadConfig('device-connector', connectorConfigSchema, {
      DATABASE_APP_URL: 'postgresql://payorch_app@127.0.0.1/payorch',
      PAYORCH_MASTER_KEY: key,
    });
    expect(config.TUNNEL_MAX_FRAME_BYTES).toBe(DEFAULT_MAX_FRAME_BYTES);
  });

  it('lists every bad variable in one error', () => {
    let error: unknown;
    try {
      loadConfig('api-gateway', gatewayConfigSchema, {
        DATABASE_APP_URL: 'mysql://x',
        GATEWAY_PORT: '99999',
        PAYORCH_MASTER_KEY: 'short',
        TRUST_PROXY: 'maybe',
      });
    } catch (e) {
      error = e;
    }
    expect(error).toBeInstanceOf(ConfigError);
    const names = (error as ConfigError).issues.map((i) => i.split(':')[0]).sort();
    expect(names).toEqual(['DATABASE_APP_URL', 'GATEWAY_PORT', 'PAYORCH_MASTER_KEY', 'TRUST_PROXY']);
    expect((error as Error).message).toContain('Invalid configuration for api-gateway:');
    expect((error as Error).message).not.toContain('short');
  });

  it('treats empty strings as unset and parses booleans strictly', () => {
    const config = loadConfig('settlement-worker', workerConfigSchema, {
      DATABASE_APP_URL: 'postgres://a@b/c',
      PAYORCH_MASTER_KEY: key,
      WORKER_CONCURRENCY: '',
      LOG_LEVEL: 'debug',
    });
    expect(config.WORKER_CONCURRENCY).toBe(8);
    expect(config.LOG_LEVEL).toBe('debug');
  });

  it('parses previous master keys for rotation', () => {
    const old = `old:${randomBytes(32).toString('base64')}`;
    const config = loadConfig('api-gateway', gatewayConfigSchema, {
      DATABASE_APP_URL: 'postgres://a@b/c',
      PAYORCH_MASTER_KEY: key,
      PAYORCH_PREVIOUS_MASTER_KEYS: ` ${old} , `,
    });
    expect(config.PAYORCH_PREVIOUS_MASTER_KEYS).toEqual([old]);
  });

  it('accepts a Redis Cluster as REDIS_URL and refuses a key prefix with hash-tag braces', () => {
    const env = { DATABASE_APP_URL: 'postgres://a@b/c', PAYORCH_MASTER_KEY: key };
    const cluster = 'redis-cluster://:secret@10.0.0.1:6379,10.0.0.2:6379';
    expect(loadConfig('api-gateway', gatewayConfigSchema, { ...env, REDIS_URL: cluster }).REDIS_URL).toBe(cluster);
    expect(loadConfig('api-gateway', gatewayConfigSchema, { ...env, REDIS_URL: 'rediss-cluster://r1.internal:6380' }).REDIS_URL).toBe(
      'rediss-cluster://r1.internal:6380',
    );
    let error: unknown;
    try {
      loadConfig('api-gateway', gatewayConfigSchema, { ...env, REDIS_URL: 'redis-cluster://10.0.0.1', REDIS_KEY_PREFIX: '{payorch}' });
    } catch (e) {
      error = e;
    }
    expect((error as ConfigError).issues.map((i) => i.split(':')[0]).sort()).toEqual(['REDIS_KEY_PREFIX', 'REDIS_URL']);
  });
});
