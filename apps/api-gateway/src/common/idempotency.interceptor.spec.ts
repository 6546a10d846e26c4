import { describe, expect, it } from '@jest/globals';
import type { Reflector } from '@nestjs/core';

import type { GatewayConfig } from '@payorch/config';
import type { Database } from '@payorch/db';
import { SecretBox } from '@payorch/domain';
import type { Logger } from '@payorch/logging';

import { IdempotencyInterceptor } from './idempotency.interceptor';

const MASTER = `k1:${Buffer.alloc(32, 7).toString('base64')}`;

/**
 * The claim's statements against a fake transaction that plays a concurrent request: its claim makes this request's
 * insert skip, and is released (its handler failed) before this request reads it. `releasedClaims` such rounds, then
 * the key is free.
 */
function interceptorWithRacingClaims(releasedClaims: number) {
  let round = 0;
  const statements: string[] = [];
  const tx = {
    idempotencyRecord: {
      deleteMany: async () => ({ count: 0 }),
      createMany: async () => {
        statements.push('insert');
        return { count: round < releasedClaims ? 0 : 1 };
      },
      findUnique: async () => {
        statements.push('read');
        round += 1;
        return null;
      },
      findUniqueOrThrow: async () => {
        statements.push('read');
        round += 1;
        throw Object.assign(new Error('No record was found for a query.'), { code: 'P2025' });
      },
    },
  };
  const db = { withTenant: (_tenant: string, fn: (t: typeof tx) => Promise<unknown>) => fn(tx) } as unknown as Database;
  const config = { IDEMPOTENCY_CLAIM_LEASE_MS: 60_000 } as GatewayConfig;
  const interceptor = new IdempotencyInterceptor(db, {} as Logger, SecretBox.fromConfig(MASTER), {} as Reflector, config);
  const claim = (interceptor as unknown as { claim(...args: string[]): Promise<unknown> }).claim.bind(interceptor);
  return { claim: () => claim('tenant', 'key-12345678', 'POST', '/v1/stores', '{}'), statements };
}

describe(`${IdempotencyInterceptor.name}: a claim released between this request's insert and its read`, () => {
  it('claims the key anew instead of failing (a 500 until 2026-12-07)', async () => {
    const { claim, statements } = interceptorWithRacingClaims(1);
    await expect(claim()).resolves.toBeNull();
    expect(statements).toEqual(['insert', 'read', 'insert']);
  });

  it('answers IDEMPOTENCY_KEY_IN_PROGRESS (409, retry in 1 s) when the key keeps being claimed and released', async () => {
    const { claim } = interceptorWithRacingClaims(10);
    await expect(claim()).rejects.toMatchObject({ code: 'IDEMPOTENCY_KEY_IN_PROGRESS', details: { retryAfterSeconds: 1 } });
  });
});
