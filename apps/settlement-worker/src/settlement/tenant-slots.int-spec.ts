import { randomUUID } from 'node:crypto';

import { Redis } from 'ioredis';

import { deleteRedisPrefix, testRedisPrefix, testRedisUrl, waitFor } from '@payorch/testing';

import { TenantSlots } from './tenant-slots';

describe(TenantSlots.name, () => {
  const prefix = testRedisPrefix('tenant-slots');
  let redis: Redis;

  beforeAll(() => {
    redis = new Redis(testRedisUrl());
  });

  afterAll(async () => {
    await deleteRedisPrefix(redis, prefix);
    await redis.quit();
  });

  it('a waiting job that gets its slot without being woken leaves the waiting set: a later release does not wake it again', async () => {
    const tenantId = randomUUID();
    const sut = new TenantSlots(redis, prefix, 1);
    // The slot's holder took it with a short lease, and its worker died: the slot frees without a release.
    expect(await new TenantSlots(redis, prefix, 1, 300).acquire(tenantId, 'holder')).toBe(true);
    expect(await sut.acquire(tenantId, 'x')).toBe(false);
    await sut.wait(tenantId, 'x');
    await waitFor(async () => (await sut.running(tenantId)) === 0, { what: "the holder's lease to run out" });
    // x's own fallback delay brings it back before anyone wakes it; it takes the free slot.
    expect(await sut.acquire(tenantId, 'x')).toBe(true);
    expect(await sut.release(tenantId, 'x')).toBeNull();
  });

  it('a release wakes the oldest waiting job once', async () => {
    const tenantId = randomUUID();
    const sut = new TenantSlots(redis, prefix, 1);
    expect(await sut.acquire(tenantId, 'holder')).toBe(true);
    for (const job of ['x', 'y']) {
      expect(await sut.acquire(tenantId, job)).toBe(false);
      await sut.wait(tenantId, job);
    }
    expect(await sut.release(tenantId, 'holder')).toBe('x');
    expect(await sut.acquire(tenantId, 'x')).toBe(true);
    expect(await sut.release(tenantId, 'x')).toBe('y');
    expect(await sut.acquire(tenantId, 'y')).toBe(true);
    expect(await sut.release(tenantId, 'y')).toBeNull();
  });
});
