import type { ConnectorConfig } from '@payorch/config';
import type { Database } from '@payorch/db';
import { createLogger, createMetricsRegistry } from '@payorch/logging';

import { DatabaseSlots } from '../tunnel/database-slots';
import { RelayPortFactory } from './relay-port.factory';

/** A Database counting its tenant transactions (how many ran, how many at most at once) and the RelaySession rows written. */
function countingDb() {
  const rows: { terminalId: string; outcome: string; reason: string }[] = [];
  const transactions = { total: 0, running: 0, most: 0 };
  const tx = {
    egressRule: { findMany: async () => [{ cidr: null, host: 'processing.example.com', port: 4000 }] },
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
  EGRESS_ALLOW_CIDRS: [] as string[],
  RELAY_CONNECT_TIMEOUT_MS: 1_000,
  RELAY_MAX_BYTES: 1_024,
  RELAY_MAX_CONNECTIONS_PER_TERMINAL: 4,
  RELAY_MAX_DURATION_MS: 10_000,
  RELAY_OPENS_PER_TERMINAL_PER_MINUTE: 60,
  RELAY_RECORDED_REFUSALS_PER_MINUTE: 5,
} as ConnectorConfig;
const silent = createLogger({ name: 'test', level: 'silent' });

describe(RelayPortFactory.name, () => {
  let sut: RelayPortFactory;
  afterEach(() => sut.onApplicationShutdown());

  it('runs a flood of denied opens through the database slots and writes at most the budget per terminal, plus one summary each', async () => {
    const { db, rows, transactions } = countingDb();
    const registry = createMetricsRegistry('test');
    sut = new RelayPortFactory(db, config, silent, registry, new DatabaseSlots(config));
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
