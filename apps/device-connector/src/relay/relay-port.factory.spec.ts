import { once } from 'node:events';
import { type AddressInfo, createServer, type Server, type Socket } from 'node:net';

import type { ConnectorConfig } from '@payorch/config';
import type { Database } from '@payorch/db';
import type { RelayTarget } from '@payorch/joinproto';
import { createLogger, createMetricsRegistry, type Registry } from '@payorch/logging';
import type { RedisClient } from '@payorch/redis';
import { waitFor } from '@payorch/testing';

import { DatabaseSlots } from '../tunnel/database-slots';
import { RelayPortFactory } from './relay-port.factory';

/** A Database counting its tenant transactions (how many ran, how many at most at once) and the RelaySession rows written. */
function countingDb(rules: { cidr: string | null; host: string | null; port: number }[] = [{ cidr: null, host: 'processing.example.com', port: 4000 }]) {
  const rows: { terminalId: string; outcome: string; reason: string }[] = [];
  const transactions = { total: 0, running: 0, most: 0 };
  const tx = {
    egressRule: { findMany: async () => rules },
    egressGrant: { findMany: async () => [] },
    relaySession: {
      create: async ({ data }: { data: { terminalId: string; outcome: string; reason: string } }) => {
        rows.push(data);
        return { id: `row-${rows.length}` };
      },
      update: async () => ({}),
    },
    $executeRaw: async () => 0,
  };
  const db = {
    withTenant: async (_tenant: unknown, work: (t: typeof tx) => Promise<unknown>) => {
      transactions.total += 1;
      transactions.running += 1;
      transactions.most = Math.max(transactions.most, transactions.running);
      try {
        // A transaction holds its pooled connection across turns of the event loop.
        await new Promise((resolve) => setImmediate(resolve));
        return await work(tx);
      } finally {
        transactions.running -= 1;
      }
    },
  } as unknown as Database;
  return { db, rows, transactions };
}

const config = {
  CONNECTOR_DATABASE_POOL_SIZE: 2,
  CONNECTOR_OWNERSHIP_TTL_MS: 15_000,
  EGRESS_ALLOW_CIDRS: [] as string[],
  RELAY_CONNECT_TIMEOUT_MS: 1_000,
  RELAY_MAX_BYTES: 1_024,
  RELAY_MAX_CONNECTIONS_PER_TERMINAL: 4,
  RELAY_MAX_DURATION_MS: 10_000,
  RELAY_OPENS_PER_TERMINAL_PER_MINUTE: 60,
  RELAY_RECORDED_REFUSALS_PER_MINUTE: 5,
  REDIS_KEY_PREFIX: 'unused',
} as ConnectorConfig;
const silent = createLogger({ name: 'test', level: 'silent' });
/** A Redis connection that is never up: each tenant's cap is counted on this instance alone (a shared Redis: relay-session-slots.int-spec.ts). */
const redisDown = { status: 'reconnecting', on: () => undefined, off: () => undefined, zrem: async () => 0 } as unknown as RedisClient;

describe(RelayPortFactory.name, () => {
  let sut: RelayPortFactory;
  afterEach(() => sut.onApplicationShutdown());

  it('runs a flood of denied opens through the database slots and writes at most the budget per terminal, plus one summary each', async () => {
    const { db, rows, transactions } = countingDb();
    const registry = createMetricsRegistry('test');
    sut = new RelayPortFactory(db, config, silent, registry, new DatabaseSlots(config), redisDown, 'c1');
    const terminals = Array.from({ length: 10 }, (_, i) => ({ tenantId: 't', agentId: `a${i}`, terminalId: `term-${i}` }));
    const ports = terminals.map((owner) => sut.forTerminal(owner));
    // 10 terminals × 30 91s at once, for a host no rule allows.
    const opens = ports.flatMap((port) =>
      Array.from({ length: 30 }, (_, i) => port.open({ protocol: 'tcp', host: `h${i}.example.net`, port: 4000, address: `h${i}.example.net:4000` })),
    );
    const outcomes = await Promise.allSettled(opens);
    expect(outcomes.every((o) => o.status === 'rejected' && (o.reason as { code: string }).code === 'DENIED')).toBe(true);
    // Before: 300 transactions at once (each denial a transaction of its own, none waiting for a slot), 300 rows.
    expect(transactions.most).toBeLessThanOrEqual(config.CONNECTOR_DATABASE_POOL_SIZE);
    expect(rows).toHaveLength(10 * 5);
    for (const { terminalId } of terminals) expect(rows.filter((row) => row.terminalId === terminalId)).toHaveLength(5);
    const unrecorded = await registry.getSingleMetric('payorch_connector_relay_refusals_unrecorded_total')!.get();
    expect(unrecorded.values[0]!.value).toBe(10 * 25);

    // The driver of term-0 closes: the summary of its refusals so far is written.
    const summary = (row: { reason: string }) => row.reason.includes('more relay opens refused and not recorded one by one');
    await ports[0]!.closeAll('tunnel_closed');
    expect(rows.filter((row) => row.terminalId === 'term-0' && summary(row))).toHaveLength(1);
    // Its next driver (the agent reconnected) does not get a fresh budget: refused at once, not recorded one by one.
    const again = sut.forTerminal(terminals[0]!);
    await expect(again.open({ protocol: 'tcp', host: 'x.example.net', port: 4000, address: 'x.example.net:4000' })).rejects.toMatchObject({ code: 'DENIED' });
    expect(rows.filter((row) => row.terminalId === 'term-0' && !summary(row))).toHaveLength(5);

    // Nothing is lost from the audit: one summarising row per terminal and window (written at the latest on shutdown).
    await sut.onApplicationShutdown();
    expect(
      rows
        .filter(summary)
        .map((row) => row.terminalId)
        .sort(),
    ).toEqual(['term-0', ...terminals.map((t) => t.terminalId)].sort());
    expect(rows).toHaveLength(10 * 5 + 11);
    expect(transactions.most).toBeLessThanOrEqual(config.CONNECTOR_DATABASE_POOL_SIZE);
  });
});

/** A loopback processing host: `onConnect` decides what it does with each connection; `sockets` are those still open. */
async function loopbackHost(onConnect: (socket: Socket) => void = () => undefined) {
  const sockets = new Set<Socket>();
  const server: Server = createServer((socket) => {
    sockets.add(socket);
    socket.on('error', () => undefined);
    socket.on('close', () => sockets.delete(socket));
    onConnect(socket);
  });
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  const { port } = server.address() as AddressInfo;
  const target: RelayTarget = { protocol: 'tcp', host: '127.0.0.1', port, address: `127.0.0.1:${port}` };
  const close = async () => {
    for (const socket of sockets) socket.destroy();
    server.close();
    await once(server, 'close');
  };
  return { port, target, sockets, close };
}

/** The value of a metric (with these labels), 0 when it has none yet. */
async function metric(registry: Registry, name: string, labels: Record<string, string> = {}): Promise<number> {
  const { values } = await registry.getSingleMetric(name)!.get();
  return values.find((v) => Object.entries(labels).every(([k, l]) => v.labels[k] === l))?.value ?? 0;
}

/**
 * The connector's caps of relay sessions per tenant (RELAY_MAX_CONNECTIONS_PER_TENANT) and in all
 * (RELAY_MAX_CONNECTIONS). Before, only RELAY_MAX_CONNECTIONS_PER_TERMINAL bounded them: a tenant with T terminals
 * held 4·T sessions (sockets, up to 1 MiB of unread host bytes each) in the memory every tenant shares.
 */
describe('RelayPortFactory: relay sessions per tenant and per connector', () => {
  const caps = {
    ...config,
    EGRESS_ALLOW_CIDRS: ['127.0.0.1/32'],
    RELAY_MAX_CONNECTIONS_PER_TERMINAL: 2,
    RELAY_MAX_CONNECTIONS_PER_TENANT: 3,
    RELAY_MAX_CONNECTIONS: 5,
    RELAY_OPENS_PER_TERMINAL_PER_MINUTE: 6000,
    RELAY_RECORDED_REFUSALS_PER_MINUTE: 600,
  } as ConnectorConfig;
  const hosts: Array<{ close: () => Promise<void> }> = [];
  let sut: RelayPortFactory | undefined;
  let registry: Registry;

  /** A factory with `overrides`, whose rules allow every loopback port; its RelaySession rows. */
  function factory(overrides: Partial<ConnectorConfig> = {}) {
    const { db, rows } = countingDb(allowedPorts.map((port) => ({ cidr: '127.0.0.1/32', host: null, port })));
    const settings = { ...caps, ...overrides } as ConnectorConfig;
    registry = createMetricsRegistry('test');
    sut = new RelayPortFactory(db, settings, silent, registry, new DatabaseSlots(settings), redisDown, 'c1');
    return rows;
  }
  const allowedPorts: number[] = [];
  async function host(onConnect?: (socket: Socket) => void) {
    const h = await loopbackHost(onConnect);
    hosts.push(h);
    allowedPorts.push(h.port);
    return h;
  }
  const terminal = (tenantId: string, n: number) => sut!.forTerminal({ tenantId, agentId: `${tenantId}-agent`, terminalId: `${tenantId}-term-${n}` });
  const held = () => metric(registry, 'payorch_connector_relay_sessions');
  const refusedFor = (reason: string) => metric(registry, 'payorch_connector_relay_sessions_refused_total', { reason });
  const codeOf = (outcome: PromiseSettledResult<string>) => (outcome.status === 'fulfilled' ? 'open' : (outcome.reason as { code: string }).code);

  afterEach(async () => {
    await sut?.onApplicationShutdown();
    sut = undefined;
    for (const h of hosts.splice(0)) await h.close();
    allowedPorts.length = 0;
  });

  it("refuses a tenant's opens past its cap, on any of its terminals, while another tenant's still open", async () => {
    const { target } = await host();
    const rows = factory();
    // Tenant A: six terminals, one 91 each, all at once (each terminal is far below its own limit of 2).
    const a = Array.from({ length: 6 }, (_, i) => terminal('tenant-a', i));
    const opened = await Promise.allSettled(a.map((port) => port.open(target)));
    // Before: all six opened.
    expect(opened.map(codeOf).sort()).toEqual(['DENIED', 'DENIED', 'DENIED', 'open', 'open', 'open']);
    expect(rows.filter((row) => row.outcome === 'denied').map((row) => row.reason)).toEqual(Array(3).fill('more than 3 relay sessions at once for the tenant'));
    expect(await refusedFor('tenant_limit')).toBe(3);
    // Tenant B is not affected: its terminals open.
    const b = [terminal('tenant-b', 0), terminal('tenant-b', 1)];
    await expect(Promise.all(b.map((port) => port.open(target)))).resolves.toHaveLength(2);
    expect(await held()).toBe(5);
    expect(sut!.sessions.of('tenant-a')).toBe(3);
    // A refused 91 gave back nothing it did not take: A still holds exactly its 3, and one of them closing frees one place.
    const [first] = opened.map((o, i) => ({ o, port: a[i]! })).filter(({ o }) => o.status === 'fulfilled');
    await first!.port.close((first!.o as PromiseFulfilledResult<string>).value);
    expect(sut!.sessions.of('tenant-a')).toBe(2);
  });

  it('refuses any tenant once the connector holds its total, and opens again when a session ends', async () => {
    const { target } = await host();
    factory();
    const a = [terminal('tenant-a', 0), terminal('tenant-a', 1)];
    const b = [terminal('tenant-b', 0), terminal('tenant-b', 1)];
    const aIds = await Promise.all([a[0]!.open(target), a[0]!.open(target), a[1]!.open(target)]);
    const bIds = await Promise.all([b[0]!.open(target), b[0]!.open(target)]);
    expect(await held()).toBe(5);
    // Tenant C holds nothing, tenant B is below its own cap: both refused, the connector is full. Before: both opened.
    const c = terminal('tenant-c', 0);
    // Answered as the other relay refusals are: XX 'Address not allowed by till'.
    await expect(c.open(target)).rejects.toMatchObject({
      code: 'DENIED',
      message: 'relay at capacity: more than 5 sessions at once on this connector',
      wireText: 'Address not allowed by till',
    });
    await expect(b[1]!.open(target)).rejects.toMatchObject({ code: 'DENIED' });
    await expect(a[1]!.open(target)).rejects.toMatchObject({ code: 'DENIED', message: 'more than 3 relay sessions at once for the tenant' });
    expect(await refusedFor('connector_limit')).toBe(2);
    expect(await refusedFor('tenant_limit')).toBe(1);
    // The terminal's own limit is counted in the same metric.
    await expect(a[0]!.open(target)).rejects.toMatchObject({ code: 'DENIED', message: 'too many relay connections' });
    expect(await refusedFor('terminal_limit')).toBe(1);
    expect(await held()).toBe(5);
    // One of B's sessions ends (94): C gets its place.
    await b[0]!.close(bIds[0]!);
    await expect(c.open(target)).resolves.toEqual(expect.any(String));
    expect(await held()).toBe(5);
    await Promise.all(aIds.map((id, i) => a[i === 2 ? 1 : 0]!.close(id)));
    expect(await held()).toBe(2);
  });

  it('gives every slot back exactly once however the session ends: 94, host close, time limit, byte limit, refused, tunnel gone, shutdown', async () => {
    // Host behaviours: quiet (the terminal closes), answers and closes, sends and never closes, floods past RELAY_MAX_BYTES.
    const quiet = await host();
    const closes = await host((socket) => socket.end('bye'));
    const keeps = await host((socket) => socket.write('unread'));
    const floods = await host((socket) => socket.write(Buffer.alloc(4_096)));
    const refusing = await host();
    await refusing.close();
    factory({ RELAY_MAX_CONNECTIONS_PER_TENANT: 4 } as Partial<ConnectorConfig>);
    // A session of the same tenant, on another agent, open throughout: a slot given back twice would free its place too.
    const bystander = sut!.forTerminal({ tenantId: 'tenant-a', agentId: 'other-agent', terminalId: 'tenant-a-bystander' });
    await bystander.open(quiet.target);
    let ports = Array.from({ length: 3 }, (_, i) => terminal('tenant-a', i));
    const openAll = (target: RelayTarget) => Promise.all(ports.map((port) => port.open(target)));
    const closeAll = (ids: string[]) => Promise.all(ids.map((id, i) => ports[i]!.close(id)));
    /** Only the bystander's slot is held (waits for the sockets' close, not for a time). */
    const backToOne = (what: string) =>
      waitFor(async () => (await held()) === 1 && sut!.sessions.of('tenant-a') === 1, {
        what: `only the bystander's relay session held after ${what}`,
        timeoutMs: 3_000,
      });

    for (let round = 0; round < 5; round++) {
      // 94.
      const ids = await openAll(quiet.target);
      expect(await held()).toBe(4);
      await closeAll(ids);
      expect(await held()).toBe(1);

      // The host answers and closes; the terminal reads it all: given back before its 94, not again at the 94.
      const fromClosing = await openAll(closes.target);
      for (const [i, id] of fromClosing.entries()) {
        let read = '';
        for (let chunk = await ports[i]!.receive(id, 64); chunk.length > 0; chunk = await ports[i]!.receive(id, 64)) read += Buffer.from(chunk).toString();
        expect(read).toBe('bye');
      }
      await backToOne('the host closed and the terminal read everything');
      await closeAll(fromClosing);
      expect(await held()).toBe(1);

      // The host sends more than RELAY_MAX_BYTES: cut, given back; the 94 afterwards gives back nothing more.
      const flooded = await openAll(floods.target);
      await backToOne('the byte limit');
      await closeAll(flooded);
      expect(await held()).toBe(1);

      // Refused by the host (connect failed): the slot taken for the open is given back.
      await expect(ports[0]!.open(refusing.target)).rejects.toMatchObject({ code: 'REFUSED' });
      expect(await held()).toBe(1);

      // The agent's tunnel closes (its drivers gone): its ports' sessions end.
      await openAll(quiet.target);
      expect(sut!.closeAgent('tenant-a-agent')).toBe(3);
      await backToOne('the tunnel closed');
      ports = Array.from({ length: 3 }, (_, i) => terminal('tenant-a', i));
    }
    // Slots came back: the tenant opens up to its cap again (3 + the bystander), then the connector shuts down.
    await openAll(quiet.target);
    await expect(terminal('tenant-a', 9).open(quiet.target)).rejects.toMatchObject({ code: 'DENIED' });
    expect(await refusedFor('tenant_limit')).toBe(1);
    await sut!.onApplicationShutdown();
    expect(await held()).toBe(0);
    expect(sut!.sessions.of('tenant-a')).toBe(0);

    // The host keeps the session open and its bytes are never read, no 94: cut at RELAY_MAX_DURATION_MS (short here;
    // the wait is for the gauge, not for a time).
    factory({ RELAY_MAX_DURATION_MS: 300 } as Partial<ConnectorConfig>);
    ports = Array.from({ length: 3 }, (_, i) => terminal('tenant-a', i));
    for (let round = 0; round < 3; round++) {
      const kept = await openAll(keeps.target);
      expect(await held()).toBe(3);
      await waitFor(async () => (await held()) === 0, { what: 'no relay session held after the time limit', timeoutMs: 3_000 });
      await expect(ports[0]!.receive(kept[0]!, 64)).rejects.toMatchObject({ code: 'CLOSED' });
      await closeAll(kept);
    }
    expect(sut!.sessions.of('tenant-a')).toBe(0);
  }, 30_000);
});
