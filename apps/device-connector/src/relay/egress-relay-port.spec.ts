import { once } from 'node:events';
import { type AddressInfo, createServer, type Server } from 'node:net';

import type { Database } from '@payorch/db';
import { EgressPolicy } from '@payorch/egress-guard';
import { createLogger } from '@payorch/logging';

import { EgressRelayPort, RelaySessionClock, writeRefusalSummary } from './egress-relay-port';
import { RelayOpens } from './relay-opens';
import { RelayRefusals } from './relay-refusals';

/** A Database whose tenant transaction records the RelaySession writes in order. */
function recordingDb(rules: { cidr: string | null; host: string | null; port: number }[]) {
  const writes: { op: 'create' | 'update'; data: Record<string, unknown> }[] = [];
  /** The values of every raw statement (the `relay.denied` DomainEvent's INSERT among them). */
  const statements: string[] = [];
  const tx = {
    egressRule: { findMany: async () => rules },
    egressGrant: { findMany: async () => [] },
    relaySession: {
      create: async ({ data }: { data: Record<string, unknown> }) => {
        writes.push({ op: 'create', data });
        return { id: `row-${writes.length}` };
      },
      update: async ({ data }: { data: Record<string, unknown> }) => {
        writes.push({ op: 'update', data });
        return {};
      },
    },
    outboxEvent: { create: async () => ({}) },
    $executeRaw: async (query: { values?: unknown[] }) => {
      statements.push(JSON.stringify(query.values ?? query));
      return 0;
    },
  };
  /** Tenant transactions run so far, and how many at most ran at once. */
  const transactions = { total: 0, running: 0, most: 0, failNext: false };
  const db = {
    withTenant: async (_tenant: unknown, work: (t: typeof tx) => Promise<unknown>) => {
      transactions.total += 1;
      transactions.running += 1;
      transactions.most = Math.max(transactions.most, transactions.running);
      try {
        if (transactions.failNext) {
          transactions.failNext = false;
          throw new Error('connection pool timeout');
        }
        // A transaction spans turns of the event loop, as a real one does.
        await new Promise((resolve) => setImmediate(resolve));
        return await work(tx);
      } finally {
        transactions.running -= 1;
      }
    },
  } as unknown as Database;
  return { db, writes, statements, transactions };
}

/** A resolver that answers 127.0.0.1 only when let go; counts its lookups. */
function gatedResolver() {
  let letGo: () => void = () => undefined;
  const gate = new Promise<void>((resolve) => (letGo = resolve));
  const lookups: string[] = [];
  const waiters: { count: number; resolve: () => void }[] = [];
  const resolver = async (host: string) => {
    lookups.push(host);
    for (const waiter of waiters.filter((w) => lookups.length >= w.count)) waiter.resolve();
    await gate;
    return [{ address: '127.0.0.1', family: 4 }];
  };
  /** Resolves once the resolver was asked `count` times. */
  const asked = (count: number) => new Promise<void>((resolve) => (lookups.length >= count ? resolve() : waiters.push({ count, resolve })));
  return { resolver, lookups, letGo, asked };
}

/** A port nothing listens on (bound once, then released). */
async function closedPort(): Promise<number> {
  const probe = createServer().listen(0, '127.0.0.1');
  await once(probe, 'listening');
  const { port } = probe.address() as AddressInfo;
  probe.close();
  await once(probe, 'close');
  return port;
}

const limits = {
  connectTimeoutMs: 1_000,
  maxBytes: 1_024,
  maxDurationMs: 10_000,
  maxConnectionsPerTerminal: 2,
  maxBufferedBytes: 1_024,
  receiveTimeoutMs: 1_000,
};
const owner = { tenantId: 't', agentId: 'a', terminalId: 'term' };
const silent = createLogger({ name: 'test', level: 'silent' });

describe(RelaySessionClock.name, () => {
  it('ends a session no earlier than it started, even when the wall clock steps back', () => {
    let wall = 1_000_000;
    let mono = 50.2;
    const clock = new RelaySessionClock(
      () => wall,
      () => mono,
    );
    wall -= 5_000; // NTP step backwards: ignored, the end follows the monotonic clock
    mono += 0.3;
    expect(clock.startedAt.getTime()).toBe(1_000_000);
    expect(clock.endedAt().getTime()).toBe(1_000_001);
    expect(clock.endedAt().getTime()).toBeGreaterThanOrEqual(clock.startedAt.getTime());
  });
});

describe(EgressRelayPort.name, () => {
  let server: Server;
  let port: number;

  /** Connections the loopback host accepted, and who waits for a count of them. */
  let accepted = 0;
  const acceptWaiters: { count: number; resolve: () => void }[] = [];
  const acceptedCount = (count: number) => new Promise<void>((resolve) => (accepted >= count ? resolve() : acceptWaiters.push({ count, resolve })));

  beforeAll(async () => {
    server = createServer((socket) => {
      socket.on('error', () => undefined);
      accepted += 1;
      for (const waiter of acceptWaiters.filter((w) => accepted >= w.count)) waiter.resolve();
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    port = (server.address() as { port: number }).port;
  });
  afterAll(() => new Promise<void>((resolve) => server.close(() => resolve())));

  it('records a denied attempt with its start (the 91) and end from one clock, start first', async () => {
    const { db, writes } = recordingDb([]);
    const relay = new EgressRelayPort(owner, db, limits, silent, EgressPolicy.strict());
    await expect(relay.open({ protocol: 'tcp', host: 'processing.example.com', port: 4000, address: 'processing.example.com:4000' })).rejects.toMatchObject({
      code: 'DENIED',
    });
    expect(writes).toHaveLength(1);
    const { startedAt, endedAt } = writes[0]!.data as { startedAt: Date; endedAt: Date };
    expect(startedAt).toBeInstanceOf(Date);
    expect(endedAt.getTime()).toBeGreaterThanOrEqual(startedAt.getTime());
  });

  it("never shows the tenant what the platform's DNS answered for a name it refuses, nor whether it answered", async () => {
    // A rule for some public CIDR on the port lets any name through the precheck; the platform then resolves it.
    const rules = [{ cidr: '8.8.8.0/24', host: null, port: 5432 }];
    const internal = 'postgres.payorch.svc.cluster.local';
    const resolver = async (host: string) => {
      if (host === internal) return [{ address: '10.3.4.5', family: 4 }];
      throw Object.assign(new Error(`getaddrinfo ENOTFOUND ${host}`), { code: 'ENOTFOUND' });
    };
    const seen: string[] = [];
    for (const host of [internal, 'nothing-here.payorch.svc.cluster.local']) {
      const { db, writes, statements } = recordingDb(rules);
      const relay = new EgressRelayPort(owner, db, limits, silent, EgressPolicy.strict(), resolver);
      const refused = await relay.open({ protocol: 'tcp', host, port: 5432, address: `${host}:5432` }).catch((error: Error & { code?: string }) => error);
      expect(refused).toMatchObject({ code: 'DENIED' });
      const shown = JSON.stringify([writes, statements, (refused as Error).message]);
      // Before: resolvedAddress 10.3.4.5 and "… → 10.3.4.5 is private address space …"; "unresolved" with the resolver's text.
      expect(shown).not.toContain('10.3.4.5');
      expect(shown).not.toMatch(/ENOTFOUND|private|getaddrinfo/);
      expect(writes).toEqual([{ op: 'create', data: expect.objectContaining({ outcome: 'denied', resolvedAddress: null }) }]);
      seen.push(String(writes[0]!.data.reason).replace(host, '<host>'));
    }
    // The two read alike: an existing internal name cannot be told from a missing one.
    expect(seen[0]).toBe(seen[1]);
  });

  it('writes the start row (open) before the end, and the end is never before the start', async () => {
    const { db, writes } = recordingDb([{ cidr: '127.0.0.1/32', host: null, port }]);
    // A connector clock behind the database's: the start it writes is still the row's start.
    let mono = 0;
    const relay = new EgressRelayPort(owner, db, limits, silent, EgressPolicy.fromList('127.0.0.1/32'), undefined, () => {
      mono = 0;
      return new RelaySessionClock(
        () => Date.UTC(2026, 0, 1, 10, 0, 0),
        () => mono,
      );
    });
    const id = await relay.open({ protocol: 'tcp', host: '127.0.0.1', port, address: `127.0.0.1:${port}` });
    mono = 1_234.4;
    await relay.close(id);
    expect(writes.map((w) => [w.op, w.data.outcome])).toEqual([
      ['create', 'open'],
      ['update', 'closed'],
    ]);
    expect(writes[0]!.data.startedAt).toEqual(new Date(Date.UTC(2026, 0, 1, 10, 0, 0)));
    expect(writes[0]!.data.endedAt).toBeUndefined();
    expect(writes[1]!.data.endedAt).toEqual(new Date(Date.UTC(2026, 0, 1, 10, 0, 1, 235)));
  });

  it('refuses opens beyond the per-terminal limit while the first ones are still connecting', async () => {
    const { db, writes } = recordingDb([{ cidr: '127.0.0.1/32', host: null, port }]);
    const dns = gatedResolver();
    const relay = new EgressRelayPort(owner, db, limits, silent, EgressPolicy.fromList('127.0.0.1/32'), dns.resolver);
    const before = accepted;
    const target = { protocol: 'tcp' as const, host: 'processing.test', port, address: `processing.test:${port}` };
    // 20 91s at once (TillSession serves them concurrently), with a limit of 2: none has connected yet.
    const opens = Array.from({ length: 20 }, () => relay.open(target));
    const refused = Promise.allSettled(opens.slice(2));
    // Before, every open passed the check (no connection was established yet) and went on to DNS and connect.
    const first = await Promise.race([refused.then(() => 'refused' as const), dns.asked(3).then(() => 'a third lookup' as const)]);
    expect(first).toBe('refused');
    expect((await refused).map((r) => (r.status === 'rejected' ? (r.reason as { code: string }).code : r.status))).toEqual(Array(18).fill('DENIED'));
    // The two that got places go on to their lookups (after their tenant slot: an await of its own), and only they.
    await dns.asked(2);
    expect(dns.lookups).toHaveLength(2);
    dns.letGo();
    const ids = await Promise.all(opens.slice(0, 2));
    await acceptedCount(before + 2);
    expect(relay.openConnections).toBe(2);
    expect(relay.pendingOpens).toBe(0);
    expect(writes.filter((w) => w.data.outcome === 'open')).toHaveLength(2);
    expect(writes.filter((w) => w.data.outcome === 'denied').map((w) => w.data.reason)).toEqual(Array(18).fill('more than 2 relay sessions at once'));
    await Promise.all(ids.map((id) => relay.close(id)));
    expect(accepted - before).toBe(2);
  });

  it("gives an open's place back on every path: denied, failed to connect, database error, closed", async () => {
    const refusedPort = await closedPort();
    const rules = [
      { cidr: '127.0.0.1/32', host: null, port },
      { cidr: '127.0.0.1/32', host: null, port: refusedPort },
    ];
    const { db, transactions } = recordingDb(rules);
    const relay = new EgressRelayPort(owner, db, { ...limits, maxConnectionsPerTerminal: 1 }, silent, EgressPolicy.fromList('127.0.0.1/32'));
    const to = (p: number) => ({ protocol: 'tcp' as const, host: '127.0.0.1', port: p, address: `127.0.0.1:${p}` });
    await expect(relay.open(to(7))).rejects.toMatchObject({ code: 'DENIED' });
    await expect(relay.open(to(refusedPort))).rejects.toMatchObject({ code: 'REFUSED' });
    transactions.failNext = true;
    await expect(relay.open(to(port))).rejects.toThrow('connection pool timeout');
    expect(relay.pendingOpens).toBe(0);
    const id = await relay.open(to(port));
    await expect(relay.open(to(port))).rejects.toMatchObject({ code: 'DENIED' });
    await relay.close(id);
    await relay.close(await relay.open(to(port)));
    expect(relay.pendingOpens + relay.openConnections).toBe(0);
  });

  it("records a terminal's refused opens one by one only within its budget, then refuses at once and records one summary", async () => {
    const { db, writes, statements, transactions } = recordingDb([{ cidr: null, host: 'processing.example.com', port: 4000 }]);
    let now = 0;
    const refusals = new RelayRefusals(3, (summary) => writeRefusalSummary(owner, db, (work) => work(), silent, summary), { now: () => now });
    const relay = new EgressRelayPort(owner, db, limits, silent, EgressPolicy.strict(), undefined, undefined, { refusals });
    const target = (host: string) => ({ protocol: 'tcp' as const, host, port: 4000, address: `${host}:4000` });
    // 50 91s at once for a host no rule allows.
    const outcomes = await Promise.allSettled(Array.from({ length: 50 }, (_, i) => relay.open(target(`h${i}.example.net`))));
    expect(outcomes.every((o) => o.status === 'rejected' && (o.reason as { code: string }).code === 'DENIED')).toBe(true);
    // The budget (3) one by one; the two opens that got a place read the rules; nothing else touched the database.
    expect(writes).toHaveLength(3);
    expect(transactions.total).toBe(3 + 2);
    // Later ones are refused before any database work while the budget is empty.
    await expect(relay.open(target('processing.example.com'))).rejects.toMatchObject({ code: 'DENIED' });
    expect(transactions.total).toBe(5);
    // The rest is not lost: one summarising row (and its relay.denied) when the terminal's relay closes.
    await relay.closeAll();
    expect(writes).toHaveLength(4);
    expect(writes[3]!.data).toMatchObject({
      outcome: 'denied',
      resolvedAddress: null,
      reason: expect.stringMatching(/^48 more relay opens refused and not recorded one by one/),
    });
    expect(statements.join(' ')).toContain('48 more relay opens refused');
    expect((writes[3]!.data.endedAt as Date).getTime()).toBeGreaterThanOrEqual((writes[3]!.data.startedAt as Date).getTime());
    // A minute on, the budget is full again: the next refusal is checked and recorded one by one.
    now += 60_000;
    const again = new EgressRelayPort(owner, db, limits, silent, EgressPolicy.strict(), undefined, undefined, { refusals });
    await expect(again.open(target('h.example.net'))).rejects.toMatchObject({ code: 'DENIED' });
    expect(writes).toHaveLength(5);
    expect(writes[4]!.data).toMatchObject({ outcome: 'denied', host: 'h.example.net', reason: 'h.example.net:4000 matches no egress rule' });
  });
});

describe(RelayRefusals.name, () => {
  it('refills the budget over time and writes the summary when its window ends', async () => {
    let now = 0;
    const summaries: number[] = [];
    const windowEnded = new Promise<void>((resolve) => {
      const refusals = new RelayRefusals(
        2,
        async (summary) => {
          summaries.push(summary.count);
          resolve();
        },
        { now: () => now, windowMs: 1 },
      );
      const refused = { host: 'h', port: 1, outcome: 'denied' as const, reason: 'r', startedAt: new Date(0), endedAt: new Date(0) };
      expect([refusals.take(), refusals.take(), refusals.take()]).toEqual([true, true, false]);
      refusals.unrecorded(refused);
      refusals.unrecorded(refused);
      now += 30_000; // half a minute: one token back
      expect([refusals.take(), refusals.take()]).toEqual([true, false]);
      refusals.unrecorded(refused);
      now += 60_000;
      expect(refusals.idle).toBe(false); // full again, but a summary is pending
    });
    await windowEnded;
    expect(summaries).toEqual([3]);
  });
});

describe(RelayOpens.name, () => {
  it('allows its budget at once, refills it over time and counts every open over it', () => {
    let now = 0;
    let over = 0;
    const opens = new RelayOpens(2, { now: () => now, onOverBudget: () => (over += 1) });
    expect([opens.take(), opens.take(), opens.take(), opens.take()]).toEqual([true, true, false, false]);
    expect(over).toBe(2);
    now += 30_000; // half a minute: one token back
    expect([opens.take(), opens.take()]).toEqual([true, false]);
    expect(opens.idle).toBe(false);
    now += 60_000;
    expect(opens.idle).toBe(true);
  });
});
