import type { ExecutionContext } from '@nestjs/common';
import type { Reflector } from '@nestjs/core';

import type { ApiKeyLookup, Database } from '@payorch/db';
import { issueToken, TOKEN_KINDS } from '@payorch/domain';

import type { ApiKeyLookups } from './api-key-lookups';
import { ApiKeyGuard } from './auth.guard';
import type { AuthThrottle } from './auth-throttle';

const TENANT = '7b0c1d1e-3f9a-4c55-9a42-6f1a2b3c4d5e';

/** ApiKeyGuard over fakes: every issued key authenticates; `touches` lists the keys whose lastUsedAt was written. */
function guardWithKeys() {
  const rows = new Map<string, ApiKeyLookup>();
  const touches: string[] = [];
  const db = {
    withTenant: async (_tenant: string, work: (tx: unknown) => Promise<unknown>) =>
      work({ apiKey: { update: async ({ where }: { where: { id: string } }) => touches.push(where.id) } }),
  } as unknown as Database;
  const throttle = { addressOf: () => '127.0.0.1', retryAfter: async () => 0, failed: async () => undefined } as unknown as AuthThrottle;
  const keys = { find: async (prefix: string) => rows.get(prefix) ?? null } as unknown as ApiKeyLookups;
  const reflector = { getAllAndOverride: () => undefined } as unknown as Reflector;
  const sut = new ApiKeyGuard(reflector, db, throttle, keys);
  let n = 0;
  const newKey = () => {
    const issued = issueToken(TOKEN_KINDS.apiKey);
    rows.set(issued.prefix, { id: `key-${n++}`, tenantId: TENANT, hash: issued.hash, scopes: ['admin'], revokedAt: null, expiresAt: null });
    return issued.token;
  };
  const call = (token: string) => {
    const req = { requestId: 'r', header: (name: string) => (name === 'authorization' ? `Bearer ${token}` : undefined) };
    const context = {
      getHandler: () => call,
      getClass: () => ApiKeyGuard,
      switchToHttp: () => ({ getRequest: () => req, getResponse: () => ({ setHeader: () => undefined }) }),
    } as unknown as ExecutionContext;
    return sut.canActivate(context);
  };
  return { sut, newKey, call, touches };
}

describe(ApiKeyGuard.name, () => {
  beforeEach(() => jest.useFakeTimers({ now: new Date('2026-01-05T10:00:00Z'), doNotFake: ['nextTick', 'setImmediate'] }));
  afterEach(() => jest.useRealTimers());

  it("writes a key's lastUsedAt at most once a minute", async () => {
    const { newKey, call, touches } = guardWithKeys();
    const token = newKey();
    await call(token);
    jest.advanceTimersByTime(59_000);
    await call(token);
    expect(touches).toEqual(['key-0']);
    jest.advanceTimersByTime(1_000);
    await call(token);
    expect(touches).toEqual(['key-0', 'key-0']);
  });

  it('remembers only the keys used within the last minute, however many keys were ever used (a tenant churning keys cannot grow it)', async () => {
    const { sut, newKey, call, touches } = guardWithKeys();
    const remembered = () => (sut as unknown as { lastTouched: Map<string, number> }).lastTouched.size;
    for (let i = 0; i < 500; i++) await call(newKey());
    expect(remembered()).toBe(500);
    jest.advanceTimersByTime(30_000);
    const recent = newKey();
    await call(recent);
    jest.advanceTimersByTime(31_000);
    // A minute after the 500, the next request forgets them (they would be written again on their next use anyway).
    await call(newKey());
    expect(remembered()).toBe(2);
    // The key used 31 s ago is still within its minute: not written again.
    await call(recent);
    expect(touches).toHaveLength(502);
  });
});
