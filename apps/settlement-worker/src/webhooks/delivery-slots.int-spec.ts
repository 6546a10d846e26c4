import { randomUUID } from 'node:crypto';

import { Redis } from 'ioredis';

import { deleteRedisPrefix, testRedisPrefix, testRedisUrl, waitFor } from '@payorch/testing';

import { DeliverySlots, SLOT_WAIT_MAX_MS, SLOT_WAIT_MIN_MS, type SlotKey } from './delivery-slots';

describe(DeliverySlots.name, () => {
  const prefix = testRedisPrefix('delivery-slots');
  let redis: Redis;
  /** Job ids woken, in order; those in `gone` are not delayed any more (the wake passes the turn on). */
  const woken: string[] = [];
  const gone = new Set<string>();
  const wake = async (jobId: string) => {
    woken.push(jobId);
    return !gone.has(jobId);
  };
  const slots = (limits: { endpoint: number; tenant: number; leaseMs?: number }) => new DeliverySlots(redis, prefix, { leaseMs: 60_000, ...limits }, wake);
  const key = (tenantId: string, endpointId = randomUUID()): SlotKey => ({ tenantId, endpointId });

  beforeAll(() => {
    redis = new Redis(testRedisUrl());
  });
  beforeEach(() => {
    woken.length = 0;
    gone.clear();
  });
  afterAll(async () => {
    await deleteRedisPrefix(redis, prefix);
    await redis.quit();
  });

  it("admits attempts up to the endpoint's limit and the tenant's, and says which one is full", async () => {
    const sut = slots({ endpoint: 1, tenant: 2 });
    const tenant = randomUUID();
    const [x, y, z] = [key(tenant), key(tenant), key(tenant)];
    expect(await sut.acquire(x, 'x1')).toEqual({ acquired: true });
    expect(await sut.acquire(x, 'x2')).toMatchObject({ acquired: false, scope: 'endpoint' });
    expect(await sut.acquire(y, 'y1')).toEqual({ acquired: true });
    expect(await sut.acquire(z, 'z1')).toMatchObject({ acquired: false, scope: 'tenant' });
    // Another tenant's endpoints are not counted.
    expect(await sut.acquire(key(randomUUID()), 'other')).toEqual({ acquired: true });
    expect(await sut.running(x)).toEqual({ tenant: 2, endpoint: 1 });
    // A holder whose job comes back (a stall) keeps its slot.
    expect(await sut.acquire(x, 'x1')).toEqual({ acquired: true });
  });

  it("a release wakes the longest-waiting job of the endpoint's and the tenant's waiting sets, once", async () => {
    const sut = slots({ endpoint: 1, tenant: 2 });
    const tenant = randomUUID();
    const [x, y, other] = [key(tenant), key(tenant), key(tenant)];
    await sut.acquire(x, 'x1');
    await sut.acquire(y, 'y1');
    const waitingSince = (scope: 'endpoint' | 'tenant', k: SlotKey, job: string, at: number) =>
      redis.zadd(`${prefix}:webhooks:waiting:{${tenant}}${scope === 'endpoint' ? `:${k.endpointId}` : ''}`, at, job);
    // o1 waits for the tenant's limit, since before y2 and y3 wait for y's.
    expect(await sut.acquire(other, 'o1')).toMatchObject({ scope: 'tenant' });
    await sut.wait(other, 'tenant', 'o1');
    await waitingSince('tenant', other, 'o1', Date.now() - 3_000);
    for (const [job, ago] of [
      ['y2', 2_000],
      ['y3', 1_000],
    ] as const) {
      expect(await sut.acquire(y, job)).toMatchObject({ scope: 'endpoint' });
      await sut.wait(y, 'endpoint', job);
      await waitingSince('endpoint', y, job, Date.now() - ago);
    }

    // y1 ends: of y's waiting set (y2 first) and the tenant's (o1), o1 has waited longer. y's slot is free now, so y2
    // waits for the tenant's limit instead (keeping its place).
    await sut.release(y, 'y1');
    expect(woken).toEqual(['o1']);
    expect(await sut.acquire(other, 'o1')).toEqual({ acquired: true });
    // x1 ends: x has no waiting job; the tenant's set has y2.
    await sut.release(x, 'x1');
    expect(woken).toEqual(['o1', 'y2']);
    expect(await sut.acquire(y, 'y2')).toEqual({ acquired: true });
    // o1 ends: nobody waits for the tenant's limit or o1's endpoint (y3 waits for y's slot, which y2 holds).
    await sut.release(other, 'o1');
    expect(woken).toEqual(['o1', 'y2']);
    await sut.release(y, 'y2');
    expect(woken).toEqual(['o1', 'y2', 'y3']);
  });

  it('a woken job that is not delayed any more passes the turn to the next one', async () => {
    const sut = slots({ endpoint: 1, tenant: 10 });
    const x = key(randomUUID());
    await sut.acquire(x, 'holder');
    for (const job of ['a', 'b']) {
      await sut.acquire(x, job);
      await sut.wait(x, 'endpoint', job);
    }
    gone.add('a');
    await sut.release(x, 'holder');
    expect(woken).toEqual(['a', 'b']);
  });

  it('a job admitted without being woken leaves the waiting sets; a holder that died frees its slot when its lease runs out', async () => {
    const x = key(randomUUID());
    expect(await slots({ endpoint: 1, tenant: 1, leaseMs: 300 }).acquire(x, 'dead')).toEqual({ acquired: true });
    const sut = slots({ endpoint: 1, tenant: 1 });
    expect(await sut.acquire(x, 'w')).toMatchObject({ acquired: false });
    await sut.wait(x, 'endpoint', 'w');
    await waitFor(async () => (await sut.running(x)).endpoint === 0, { what: "the dead holder's lease to run out" });
    expect(await sut.acquire(x, 'w')).toEqual({ acquired: true });
    await sut.release(x, 'w');
    expect(woken).toEqual([]);
  });

  it('a deferred job waits longer the longer it has waited (its own delay is only the fallback for a lost wake)', async () => {
    const sut = slots({ endpoint: 1, tenant: 1 });
    const x = key(randomUUID());
    await sut.acquire(x, 'holder');
    const first = await sut.acquire(x, 'w');
    expect(first).toMatchObject({ acquired: false });
    const firstDelay = (first as { delayMs: number }).delayMs;
    expect(firstDelay).toBeGreaterThanOrEqual(SLOT_WAIT_MIN_MS);
    expect(firstDelay).toBeLessThan(SLOT_WAIT_MIN_MS * 1.5);
    // It has been waiting for an hour (its entry in the waiting set says since when).
    await sut.wait(x, 'endpoint', 'w');
    await redis.zadd(`${prefix}:webhooks:waiting:{${x.tenantId}}:${x.endpointId}`, Date.now() - 3_600_000, 'w');
    const later = await sut.acquire(x, 'w');
    expect((later as { delayMs: number }).delayMs).toBeGreaterThanOrEqual(SLOT_WAIT_MAX_MS);
    expect((later as { delayMs: number }).delayMs).toBeLessThan(SLOT_WAIT_MAX_MS * 1.5);
  });
});
