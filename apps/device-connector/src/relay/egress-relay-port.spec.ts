import { createServer, type Server } from 'node:net';

import type { Database } from '@payorch/db';
import { EgressPolicy } from '@payorch/egress-guard';
import { createLogger } from '@payorch/logging';

import { EgressRelayPort, RelaySessionClock } from './egress-relay-port';

/** A Database whose tenant transaction records the RelaySession writes in order. */
function recordingDb(rules: { cidr: string | null; host: string | null; port: number }[]) {
  const writes: { op: 'create' | 'update'; data: Record<string, unknown> }[] = [];
  const tx = {
    egressRule: { findMany: async () => rules },
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
    $executeRaw: async () => 0,
  };
  const db = { withTenant: async (_tenant: unknown, work: (t: typeof tx) => Promise<unknown>) => work(tx) } as unknown as Database;
  return { db, writes };
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
