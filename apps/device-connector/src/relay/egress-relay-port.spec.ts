import { createServer, type Server } from 'node:net';

import type { Database } from '@payorch/db';
import { EgressPolicy } from '@payorch/egress-guard';
import { createLogger } from '@payorch/logging';

import { EgressRelayPort, RelaySessionClock } from './egress-relay-port';

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
  const db = { withTenant: async (_tenant: unknown, work: (t: typeof tx) => Promise<unknown>) => work(tx) } as unknown as Database;
  return { db, writes, statements };
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

  beforeAll(async () => {
    server = createServer((socket) => socket.on('error', () => undefined));
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
});
