import { Redis } from 'ioredis';

import type { GatewayConfig } from '@payorch/config';
import type { ApiKeyLookup, Database } from '@payorch/db';
import type { Logger } from '@payorch/logging';
import { apiKeysChangedChannel } from '@payorch/operations';
import { deleteRedisPrefix, testRedisPrefix, testRedisUrl, waitFor } from '@payorch/testing';

import { API_KEY_CACHE_ENTRIES, ApiKeyLookups } from './api-key-lookups';

const tenantA = '00000000-0000-4000-8000-00000000000a';
const tenantB = '00000000-0000-4000-8000-00000000000b';
const keyOf = (prefix: string, tenantId: string): ApiKeyLookup => ({
  id: `id-${prefix}`,
  tenantId,
  hash: 'h',
  scopes: ['read'],
  revokedAt: null,
  expiresAt: null,
});

/** A stand-in for Database.findApiKeyByPrefix that counts the lookups reaching PostgreSQL. */
function fakeDb(rows: Map<string, ApiKeyLookup>) {
  const calls: string[] = [];
  let hold: Promise<void> | undefined;
  const db = {
    findApiKeyByPrefix: async (prefix: string) => {
      calls.push(prefix);
      // The row as the statement saw it; its answer may be held back (holdNext).
      const row = rows.get(prefix) ?? null;
      if (hold) await hold;
      return row;
    },
  } as unknown as Database;
  return {
    db,
    calls,
    holdNext(): () => void {
      let release!: () => void;
      hold = new Promise<void>((resolve) => (release = resolve));
      return () => {
        hold = undefined;
        release();
      };
    },
  };
}

const silent = { warn: () => undefined, info: () => undefined, error: () => undefined } as unknown as Logger;

/**
 * Issue 19: an authenticated request looked its API key up in PostgreSQL every time (8 % of PostgreSQL's time per
 * operation). The lookups are kept for API_KEY_CACHE_MS, forgotten at once by every gateway when a tenant's keys or
 * status change, and only kept while the change announcements can reach the process.
 */
describe(ApiKeyLookups.name, () => {
  const prefix = testRedisPrefix('apikeys');
  const admin = new Redis(testRedisUrl());
  const started: { lookups: ApiKeyLookups; subscriber: Redis; publisher: Redis }[] = [];

  async function gateway(db: Database, cacheMs = 60_000): Promise<{ lookups: ApiKeyLookups; subscriber: Redis }> {
    const subscriber = new Redis(testRedisUrl());
    const publisher = new Redis(testRedisUrl());
    const config = { REDIS_KEY_PREFIX: prefix, API_KEY_CACHE_MS: cacheMs } as GatewayConfig;
    const lookups = new ApiKeyLookups(db, config, silent, publisher, subscriber);
    lookups.onModuleInit();
    started.push({ lookups, subscriber, publisher });
    if (cacheMs > 0) await waitFor(() => lookups.keeping, { what: 'subscribed to the announcements' });
    return { lookups, subscriber };
  }

  afterEach(() => {
    for (const { lookups, subscriber, publisher } of started.splice(0)) {
      lookups.onApplicationShutdown();
      subscriber.disconnect();
      publisher.disconnect();
    }
  });

  afterAll(async () => {
    await deleteRedisPrefix(admin, prefix);
    await admin.quit();
  });

  it('keeps a found key: a second request makes no lookup; a prefix naming no key is looked up every time', async () => {
    const fake = fakeDb(new Map([['pok_a', keyOf('pok_a', tenantA)]]));
    const { lookups } = await gateway(fake.db);
    expect(await lookups.find('pok_a')).toMatchObject({ tenantId: tenantA });
    expect(await lookups.find('pok_a')).toMatchObject({ tenantId: tenantA });
    expect(fake.calls).toEqual(['pok_a']);
    expect(await lookups.find('pok_none')).toBeNull();
    expect(await lookups.find('pok_none')).toBeNull();
    expect(fake.calls).toEqual(['pok_a', 'pok_none', 'pok_none']);
  });

  it("forgets a tenant's keys at once where the change was made, and on every other gateway when it is announced", async () => {
    const fake = fakeDb(
      new Map([
        ['pok_a', keyOf('pok_a', tenantA)],
        ['pok_b', keyOf('pok_b', tenantB)],
      ]),
    );
    const here = await gateway(fake.db);
    const there = await gateway(fake.db);
    for (const g of [here, there]) {
      await g.lookups.find('pok_a');
      await g.lookups.find('pok_b');
    }
    expect(fake.calls).toHaveLength(4);
    await here.lookups.changed(tenantA);
    // Here: at once, before the announcement went anywhere.
    await here.lookups.find('pok_a');
    expect(fake.calls).toHaveLength(5);
    // There: once the announcement arrived; the other tenant's key stays kept.
    await waitFor(
      async () => {
        const before = fake.calls.length;
        await there.lookups.find('pok_a');
        return fake.calls.length > before;
      },
      { what: 'the other gateway forgot the changed tenant' },
    );
    const before = fake.calls.length;
    await there.lookups.find('pok_b');
    await here.lookups.find('pok_b');
    expect(fake.calls.length).toBe(before);
  });

  it('does not keep a lookup that was on its way while a change was announced', async () => {
    const fake = fakeDb(new Map([['pok_a', keyOf('pok_a', tenantA)]]));
    const { lookups } = await gateway(fake.db);
    const release = fake.holdNext();
    const reading = lookups.find('pok_a');
    await waitFor(() => fake.calls.length === 1, { what: 'lookup sent' });
    await lookups.changed(tenantA);
    release();
    expect(await reading).toMatchObject({ tenantId: tenantA });
    await lookups.find('pok_a');
    expect(fake.calls).toHaveLength(2);
  });

  it('sends one lookup for concurrent requests of one prefix, never one that started before a change', async () => {
    const fake = fakeDb(new Map([['pok_a', keyOf('pok_a', tenantA)]]));
    const { lookups } = await gateway(fake.db);
    // After a change of the tenant's keys, its 50 open streams and waits (KeyWatch) check the same key at once.
    await lookups.changed(tenantA);
    const release = fake.holdNext();
    const first = Array.from({ length: 50 }, () => lookups.find('pok_a'));
    await waitFor(() => fake.calls.length === 1, { what: 'lookup sent' });
    // A change while that lookup is on its way: a request after it must not take the older answer.
    await lookups.changed(tenantA);
    const after = lookups.find('pok_a');
    release();
    expect(await Promise.all([...first, after])).toEqual(Array.from({ length: 51 }, () => expect.objectContaining({ tenantId: tenantA })));
    expect(fake.calls).toEqual(['pok_a', 'pok_a']);
    // Neither is left behind: a later request is answered by the kept lookup (the second one, read after the change).
    await lookups.find('pok_a');
    expect(fake.calls).toHaveLength(2);
  });

  it('keeps nothing while the announcements cannot reach it, and again once they can', async () => {
    const fake = fakeDb(new Map([['pok_a', keyOf('pok_a', tenantA)]]));
    const { lookups, subscriber } = await gateway(fake.db);
    await lookups.find('pok_a');
    expect(fake.calls).toHaveLength(1);
    // The pub/sub connection drops (Redis restarted, network): what was kept is forgotten and nothing is kept.
    subscriber.disconnect(true);
    await waitFor(() => !lookups.keeping, { what: 'announcements lost' });
    await lookups.find('pok_a');
    expect(fake.calls.length).toBeGreaterThanOrEqual(2);
    // Reconnected and subscribed again: kept again.
    await waitFor(() => lookups.keeping, { what: 'announcements back' });
    await lookups.find('pok_a');
    const after = fake.calls.length;
    await lookups.find('pok_a');
    expect(fake.calls.length).toBe(after);
  });

  it('does not keep a lookup read while the subscription was lost, even when it comes back after the subscription does', async () => {
    // An announcement made while the pub/sub connection was down is missed: a lookup read meanwhile may hold a row
    // revoked since. Before the fix it was kept once the subscription was confirmed again, for API_KEY_CACHE_MS.
    const rows = new Map([['pok_a', keyOf('pok_a', tenantA)]]);
    const fake = fakeDb(rows);
    const { lookups, subscriber } = await gateway(fake.db);
    subscriber.disconnect(true);
    await waitFor(() => !lookups.keeping, { what: 'announcements lost' });
    const release = fake.holdNext();
    const reading = lookups.find('pok_a');
    await waitFor(() => fake.calls.length === 1, { what: 'lookup sent' });
    // Revoked while this gateway was not subscribed: its announcement never reached it.
    rows.set('pok_a', { ...keyOf('pok_a', tenantA), revokedAt: new Date() });
    await waitFor(() => lookups.keeping, { what: 'subscribed again' });
    release();
    expect(await reading).toMatchObject({ revokedAt: null });
    expect(await lookups.find('pok_a')).toMatchObject({ revokedAt: expect.any(Date) });
    expect(fake.calls).toHaveLength(2);
  });

  it('keeps nothing over a Redis Cluster, whose moved subscription it could not see', async () => {
    const fake = fakeDb(new Map([['pok_a', keyOf('pok_a', tenantA)]]));
    // ioredis's Cluster re-subscribes through another node without an event of its own (ClusterSubscriber).
    const cluster = { isCluster: true, on: () => cluster, off: () => cluster, subscribe: async () => 1 } as unknown as Redis;
    const publisher = new Redis(testRedisUrl());
    try {
      const config = { REDIS_KEY_PREFIX: prefix, API_KEY_CACHE_MS: 60_000 } as GatewayConfig;
      const lookups = new ApiKeyLookups(fake.db, config, silent, publisher, cluster);
      lookups.onModuleInit();
      await lookups.find('pok_a');
      await lookups.find('pok_a');
      expect(lookups.keeping).toBe(false);
      expect(fake.calls).toHaveLength(2);
    } finally {
      publisher.disconnect();
    }
  });

  it('keeps nothing with API_KEY_CACHE_MS=0, and a kept key only for API_KEY_CACHE_MS', async () => {
    const fake = fakeDb(new Map([['pok_a', keyOf('pok_a', tenantA)]]));
    const { lookups } = await gateway(fake.db, 0);
    await lookups.find('pok_a');
    await lookups.find('pok_a');
    expect(fake.calls).toHaveLength(2);
    // Nor shares a lookup on its way: each request reads PostgreSQL itself.
    await Promise.all([lookups.find('pok_a'), lookups.find('pok_a')]);
    expect(fake.calls).toHaveLength(4);

    const short = await gateway(fake.db, 1);
    await short.lookups.find('pok_a');
    const at = Date.now();
    await waitFor(() => Date.now() > at + 1, { what: 'one millisecond passed' });
    await short.lookups.find('pok_a');
    expect(fake.calls).toHaveLength(6);
  });

  it('keeps at most API_KEY_CACHE_ENTRIES lookups, forgetting the oldest first', async () => {
    const rows = new Map<string, ApiKeyLookup>();
    for (let i = 0; i <= API_KEY_CACHE_ENTRIES; i += 1) rows.set(`pok_${i}`, keyOf(`pok_${i}`, tenantA));
    const fake = fakeDb(rows);
    const { lookups } = await gateway(fake.db);
    for (let i = 0; i <= API_KEY_CACHE_ENTRIES; i += 1) await lookups.find(`pok_${i}`);
    const before = fake.calls.length;
    await lookups.find(`pok_${API_KEY_CACHE_ENTRIES}`);
    await lookups.find('pok_1');
    expect(fake.calls.length).toBe(before);
    await lookups.find('pok_0');
    expect(fake.calls.length).toBe(before + 1);
  });

  it.each([
    ['a gateway that keeps lookups', 60_000],
    ['a gateway that keeps none (API_KEY_CACHE_MS=0): the others may', 0],
  ])('announces on the channel every gateway listens to: %s', async (_what, cacheMs) => {
    const fake = fakeDb(new Map());
    const { lookups } = await gateway(fake.db, cacheMs);
    const listener = new Redis(testRedisUrl());
    try {
      const heard: string[] = [];
      listener.on('message', (_channel: string, message: string) => heard.push(message));
      await listener.subscribe(apiKeysChangedChannel(prefix));
      await lookups.changed(tenantB);
      await waitFor(() => heard.length === 1, { what: 'announcement heard' });
      expect(heard).toEqual([tenantB]);
    } finally {
      listener.disconnect();
    }
  });
});
