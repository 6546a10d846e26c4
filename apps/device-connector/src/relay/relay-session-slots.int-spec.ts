import { once } from 'node:events';
import { type AddressInfo, createServer, type Server, type Socket } from 'node:net';

import { Redis } from 'ioredis';

import { connectorConfigSchema, loadConfig } from '@payorch/config';
import type { RelayTarget } from '@payorch/joinproto';
import { createLogger, createMetricsRegistry, type Registry } from '@payorch/logging';
import { deleteRedisPrefix, OwnedRedis, testRedisPrefix, testRedisUrl, waitFor } from '@payorch/testing';

import { ConnectorHarness } from '../testing/connector-harness.testing';
import { DatabaseSlots } from '../tunnel/database-slots';
import { RelayPortFactory } from './relay-port.factory';
import { type SessionSlot, RelaySessionSlots, type SharedSessionsOptions } from './relay-session-slots';

/** A Redis connection as the connector's `command` one (offline queue, 3 retries). */
const connection = (url: string) => new Redis(url, { enableOfflineQueue: true, maxRetriesPerRequest: 3 });

/** The slot, failing the test when the take was refused. */
function held(slot: SessionSlot): () => void {
  if ('refused' in slot) throw new Error(`refused: ${slot.refused}`);
  return slot.release;
}

/**
 * RELAY_MAX_CONNECTIONS_PER_TENANT over every connector instance (security review: each instance counted the tenant's
 * sessions alone, so a tenant whose agents were spread over N instances held N × the cap, sockets and egress
 * connections included). Leases in Redis, renewed by their holder; a crashed instance's expire; Redis down or slow,
 * each instance's own count decides, and that is counted.
 */
describe('device-connector: relay sessions of a tenant over every connector instance', () => {
  const prefix = testRedisPrefix('relay-sessions');
  const probe = new Redis(testRedisUrl());
  const owned = new OwnedRedis();
  const opened: Array<{ slots: RelaySessionSlots; redis: Redis }> = [];

  /** One instance's RelaySessionSlots on its own connection, once it is up (`url`: the shared test Redis unless given). */
  async function instance(
    instanceId: string,
    options: { perTenant?: number; total?: number; leaseTtlMs?: number; url?: string; timeoutMs?: number } = {},
  ): Promise<{ slots: RelaySessionSlots; redis: Redis; unshared: Array<[string, boolean]>; refused: string[] }> {
    const redis = connection(options.url ?? testRedisUrl());
    redis.on('error', () => undefined);
    const unshared: Array<[string, boolean]> = [];
    const refused: string[] = [];
    const shared: SharedSessionsOptions = {
      redis,
      keyPrefix: prefix,
      instanceId,
      leaseTtlMs: options.leaseTtlMs ?? 15_000,
      timeoutMs: options.timeoutMs ?? 200,
      onUnshared: (error, first) => unshared.push([error.message, first]),
    };
    const slots = new RelaySessionSlots(options.perTenant ?? 3, options.total ?? 10, (reason) => refused.push(reason), shared);
    opened.push({ slots, redis });
    // As the connector takes its first requests once its connections settled (RedisConnections.settled).
    await waitFor(() => redis.status === 'ready', { what: `the connection of ${instanceId} up` });
    return { slots, redis, unshared, refused };
  }

  const keyOf = (tenantId: string) => `${prefix}:relay:sessions:{${tenantId}}`;
  const leases = (tenantId: string, redis: Redis = probe) => redis.zrange(keyOf(tenantId), '0', '-1');

  afterAll(async () => {
    for (const { slots, redis } of opened) {
      await slots.close();
      redis.disconnect();
    }
    await owned.stop();
    await deleteRedisPrefix(probe, prefix);
    await probe.quit();
  });

  it("refuses a tenant's session at the second instance once the first and it hold the cap; another tenant is unaffected", async () => {
    const a = await instance('a');
    const b = await instance('b');
    const fromA = [held(await a.slots.take('t1')), held(await a.slots.take('t1'))];
    const fromB = held(await b.slots.take('t1'));
    // Before: b counted only its own (1 of 3) and let this one through, and so did a (2 of 3).
    expect(await b.slots.take('t1')).toEqual({ refused: 'tenant_limit', limit: 3 });
    expect(await a.slots.take('t1')).toEqual({ refused: 'tenant_limit', limit: 3 });
    expect([...a.refused, ...b.refused]).toEqual(['tenant_limit', 'tenant_limit']);
    // A refused take held nothing, here or in Redis.
    expect([a.slots.of('t1'), b.slots.of('t1'), a.slots.held, b.slots.held]).toEqual([2, 1, 2, 1]);
    // Redis holds one lease per session, named by its instance, nothing about the session itself.
    expect((await leases('t1')).map((lease) => lease.split(':')[0]).sort()).toEqual(['a', 'a', 'b']);
    expect(await probe.pttl(keyOf('t1'))).toBeGreaterThan(0);
    // Another tenant has a cap of its own.
    const other = held(await b.slots.take('t2'));

    // A session of a ends, twice (its release is idempotent): one place comes back, at b too.
    fromA[0]!();
    fromA[0]!();
    await waitFor(async () => (await leases('t1')).length === 2, { what: "a's lease removed" });
    const again = held(await b.slots.take('t1'));
    expect(await b.slots.take('t1')).toEqual({ refused: 'tenant_limit', limit: 3 });
    expect(b.unshared).toEqual([]);

    for (const release of [fromA[1]!, fromB, again, other]) release();
    await waitFor(async () => (await leases('t1')).length + (await leases('t2')).length === 0, { what: 'every lease removed' });
    expect([a.slots.held, b.slots.held]).toEqual([0, 0]);
  });

  it("expires a crashed instance's leases after their TTL, while a living instance's are renewed", async () => {
    const ttl = 1_500;
    const living = await instance('living', { perTenant: 2, leaseTtlMs: ttl });
    const crashed = await instance('crashed', { perTenant: 2, leaseTtlMs: ttl });
    const other = await instance('other', { perTenant: 2, leaseTtlMs: ttl });
    held(await living.slots.take('t3'));
    held(await crashed.slots.take('t3'));
    expect(await other.slots.take('t3')).toEqual({ refused: 'tenant_limit', limit: 2 });
    const expiries = async () =>
      new Map((await probe.zrange(keyOf('t3'), '0', '-1', 'WITHSCORES')).flatMap((v, i, all) => (i % 2 ? [] : [[v, Number(all[i + 1])]])));
    const first = await expiries();
    const livingLease = [...first.keys()].find((lease) => lease.startsWith('living:'))!;

    // The crashed instance stops: no release, no renewal (its connection is gone).
    crashed.redis.disconnect();
    // Its lease expires (waiting for the condition, not a time): the other instance gets the place.
    const taken = await waitFor(
      async () => {
        const slot = await other.slots.take('t3');
        return 'release' in slot && slot;
      },
      { what: "the crashed instance's lease to expire", timeoutMs: 10_000, intervalMs: 100 },
    );
    // The living instance's lease outlived its first expiry: it was renewed.
    const now = async () => {
      const [seconds, micros] = await probe.time();
      return Number(seconds) * 1000 + Math.floor(Number(micros) / 1000);
    };
    expect(await now()).toBeGreaterThan(first.get(livingLease)!);
    expect((await expiries()).get(livingLease)).toBeGreaterThan(first.get(livingLease)!);
    expect((await leases('t3')).map((lease) => lease.split(':')[0]).sort()).toEqual(['living', 'other']);
    expect(await other.slots.take('t3')).toEqual({ refused: 'tenant_limit', limit: 2 });
    taken.release();
  });

  it("removes an instance's leases at shutdown, once: a release afterwards removes nothing of another's", async () => {
    const leaving = await instance('leaving');
    const staying = await instance('staying');
    const slots = [held(await leaving.slots.take('t4')), held(await leaving.slots.take('t4'))];
    const stays = held(await staying.slots.take('t4'));
    await leaving.slots.close();
    expect(await leases('t4')).toEqual([expect.stringMatching(/^staying:/)]);
    // Its sessions end afterwards (each once): their places come back here, nothing more is removed in Redis.
    for (const release of slots) release();
    expect(leaving.slots.of('t4')).toBe(0);
    expect(await leases('t4')).toEqual([expect.stringMatching(/^staying:/)]);
    stays();
  });

  it("decides with the instance's own count while Redis is down or slow, counts it, and re-asserts the leases once it is back", async () => {
    await owned.start();
    const alone = await instance('alone', { perTenant: 2, url: owned.url, leaseTtlMs: 1_500, timeoutMs: 100 });
    const ownedProbe = connection(owned.url);
    ownedProbe.on('error', () => undefined);
    try {
      const shared = held(await alone.slots.take('t5'));
      expect(alone.unshared).toEqual([]);

      // Redis does not answer (every client paused): the take waits at most timeoutMs, then this instance decides.
      await ownedProbe.client('PAUSE', 600, 'ALL');
      const slow = held(await alone.slots.take('t5'));
      expect(alone.unshared).toEqual([['shared relay sessions timed out after 100 ms', true]]);
      // Its script runs once Redis answers again; the release, sent after it, removes its lease.
      slow();
      await waitFor(async () => (await leases('t5', ownedProbe)).length === 1, { what: 'the slow lease removed' });

      // Redis gone: nothing is sent, this instance's cap of 2 for the tenant still applies.
      await owned.kill();
      await waitFor(() => alone.redis.status !== 'ready', { what: 'the connection to see Redis gone' });
      const alsoHeld = held(await alone.slots.take('t5'));
      expect(await alone.slots.take('t5')).toEqual({ refused: 'tenant_limit', limit: 2 });
      // Each take decided alone is counted (the refused one was refused here before Redis was asked); one warning per
      // outage (Redis has not answered since the slow take).
      expect(alone.unshared.map(([, first]) => first)).toEqual([true, false]);
      expect(alone.unshared[1]![0]).toMatch(/^Redis connection /);

      // Redis back, empty: the sessions still held (one taken while it was away) are counted again.
      shared();
      await owned.start();
      await waitFor(async () => (await leases('t5', ownedProbe).catch(() => [])).length === 1, { what: 'the held lease re-asserted', timeoutMs: 10_000 });
      expect(await leases('t5', ownedProbe)).toEqual([expect.stringMatching(/^alone:/)]);
      alsoHeld();
      await waitFor(async () => (await leases('t5', ownedProbe)).length === 0, { what: 'the last lease removed' });
    } finally {
      ownedProbe.disconnect();
    }
  });
});

/**
 * Two connectors' relay ports (RelayPortFactory, as the connector wires it) for one tenant sharing a Redis: a 91 at
 * the second instance past the tenant's cap is refused as the other caps are (`DENIED`, a `denied` row, the metric).
 */
describe('device-connector: relay ports of two instances, one tenant', () => {
  const h = new ConnectorHarness({ poolSize: 4 });
  const prefix = testRedisPrefix('relay-ports');
  const probe = new Redis(testRedisUrl());
  const silent = createLogger({ name: 'test', level: 'silent' });
  const instances: Array<{ factory: RelayPortFactory; registry: Registry; redis: Redis }> = [];
  let host: Server;
  const sockets = new Set<Socket>();
  let target: RelayTarget;

  beforeAll(async () => {
    await h.start();
    host = createServer((socket) => {
      sockets.add(socket);
      socket.on('error', () => undefined);
      socket.on('close', () => sockets.delete(socket));
    });
    host.listen(0, '127.0.0.1');
    await once(host, 'listening');
    const { port } = host.address() as AddressInfo;
    target = { protocol: 'tcp', host: '127.0.0.1', port, address: `127.0.0.1:${port}` };
  });

  afterAll(async () => {
    for (const { factory, redis } of instances) {
      await factory.onApplicationShutdown();
      redis.disconnect();
    }
    for (const socket of sockets) socket.destroy();
    host.close();
    await deleteRedisPrefix(probe, prefix);
    await probe.quit();
    await h.stop();
  });

  function connector(instanceId: string): { factory: RelayPortFactory; registry: Registry } {
    const config = loadConfig('device-connector', connectorConfigSchema, {
      DATABASE_APP_URL: h.testDb.appUrl,
      REDIS_KEY_PREFIX: prefix,
      PAYORCH_MASTER_KEY: `k1:${Buffer.alloc(32, 1).toString('base64')}`,
      CONNECTOR_INSTANCE_ID: instanceId,
      EGRESS_ALLOW_CIDRS: '127.0.0.0/8',
      RELAY_MAX_CONNECTIONS_PER_TENANT: '2',
    });
    const registry = createMetricsRegistry('test');
    const redis = connection(testRedisUrl());
    const factory = new RelayPortFactory(h.db, config, silent, registry, new DatabaseSlots(config), redis, instanceId);
    instances.push({ factory, registry, redis });
    return { factory, registry };
  }

  it("refuses the tenant's third session at the other instance, and gives the places back at each instance's shutdown", async () => {
    const shop = await h.tenantWithStore();
    const agentId = await h.agent(shop);
    const terminals = [await h.terminal(shop, agentId), await h.terminal(shop, agentId), await h.terminal(shop, agentId)];
    await h.admin.query(`INSERT INTO "EgressRule" (id, "tenantId", cidr, port) VALUES (gen_random_uuid(), $1, '127.0.0.1/32', $2)`, [
      shop.tenantId,
      target.port,
    ]);
    const a = connector('a');
    const b = connector('b');
    const port = (on: RelayPortFactory, i: number) => on.forTerminal({ tenantId: shop.tenantId, agentId, terminalId: terminals[i]! });
    await port(a.factory, 0).open(target);
    const atB = port(b.factory, 1);
    await atB.open(target);
    // Before: b counted the tenant's one session there and opened (each instance up to 2: 4 in all).
    await expect(port(b.factory, 2).open(target)).rejects.toMatchObject({
      code: 'DENIED',
      message: 'more than 2 relay sessions at once for the tenant',
      wireText: 'Address not allowed by till',
    });
    const refused = await b.registry.getSingleMetric('payorch_connector_relay_sessions_refused_total')!.get();
    expect(refused.values.find((v) => v.labels.reason === 'tenant_limit')?.value).toBe(1);
    const { rows } = await h.admin.query<{ outcome: string; reason: string | null }>(`SELECT outcome, reason FROM "RelaySession" WHERE "terminalId" = $1`, [
      terminals[2],
    ]);
    expect(rows).toEqual([{ outcome: 'denied', reason: 'more than 2 relay sessions at once for the tenant' }]);

    // Instance a shuts down: its session ends and its lease leaves Redis at once, so b opens the place.
    await instances[0]!.factory.onApplicationShutdown();
    expect(await probe.zrange(`${prefix}:relay:sessions:{${shop.tenantId}}`, '0', '-1')).toEqual([expect.stringMatching(/^b:/)]);
    await expect(port(b.factory, 2).open(target)).resolves.toEqual(expect.any(String));
    const unshared = await b.registry.getSingleMetric('payorch_connector_relay_sessions_unshared_total')!.get();
    expect(unshared.values.map((v) => v.value)).toEqual([0]);
  });
});
