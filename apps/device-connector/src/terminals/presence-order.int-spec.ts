import { randomUUID } from 'node:crypto';

import { Client } from 'pg';

import type { ConnectorConfig } from '@payorch/config';
import { Database } from '@payorch/db';
import { createLogger, createMetricsRegistry } from '@payorch/logging';
import { waitFor } from '@payorch/testing';

import { ConnectorHarness } from '../testing/connector-harness.testing';
import { DatabaseSlots } from '../tunnel/database-slots';
import { type SessionRef, TerminalPresence } from './terminal-presence';

/**
 * Presence writes in order (review of issue 19's storm machinery): a terminal's status and the agent's offline are
 * written by whichever tunnel holds the agent's presence (Agent.presenceSession, set by its set-up), never by an older
 * one. Before, a late ONLINE batch of a tunnel that had closed left the terminal ONLINE with no tunnel, and another
 * instance's late offline turned a terminal OFFLINE while the agent was up elsewhere.
 */
describe('TerminalPresence: writes of an older tunnel never overwrite a newer state', () => {
  const h = new ConnectorHarness({ poolSize: 4 });
  let slots: DatabaseSlots;
  let presence: TerminalPresence;

  beforeAll(async () => {
    await h.start();
    // One slot, so a test can hold the presence batches back (as a storm's busy slots do).
    slots = new DatabaseSlots({ CONNECTOR_DATABASE_POOL_SIZE: 1 } as ConnectorConfig);
    presence = new TerminalPresence(h.db, createLogger({ name: 'test', level: 'silent' }), 'c-1', createMetricsRegistry('test'), slots);
  });

  afterAll(() => h.stop());

  /** An agent with one terminal, its presence held by tunnel `session` (as its set-up leaves it), the terminal in `status`. */
  async function agentWithTerminal(session: string, status: 'UNKNOWN' | 'ONLINE') {
    const at = await h.tenantWithStore();
    const agentId = await h.agent(at, { presenceSession: session });
    const terminalId = await h.terminal(at, agentId, status);
    return { tenantId: at.tenantId, agentId, terminalId };
  }

  const statusOf = async (terminalId: string) =>
    (await h.admin.query<{ status: string }>(`SELECT status::text FROM "Terminal" WHERE id = $1`, [terminalId])).rows[0]!.status;
  const eventsOf = async (tenantId: string) =>
    (await h.admin.query<{ type: string }>(`SELECT type FROM "DomainEvent" WHERE "tenantId" = $1 ORDER BY "createdAt", id`, [tenantId])).rows.map(
      (r) => r.type,
    );

  /** Holds the one database slot until released: presence batches wait behind it. */
  function holdSlot() {
    let release!: () => void;
    const held = new Promise<void>((resolve) => (release = resolve));
    let holding = false;
    void slots.run(async () => {
      holding = true;
      await held;
    });
    return { release, holding: () => holding };
  }

  /**
   * Issue 19: a presence batch's events were an INSERT of their own after the statuses' UPDATE (~0.6 statements per
   * agent in a reconnect storm); the UPDATE now inserts the events of the rows it moved in the same statement.
   */
  it("writes a batch's statuses and the events of the terminals that changed in one statement; a status already held makes no event", async () => {
    const session = randomUUID();
    const { tenantId, agentId, terminalId } = await agentWithTerminal(session, 'UNKNOWN');
    const storeId = (await h.admin.query<{ storeId: string }>(`SELECT "storeId" FROM "Agent" WHERE id = $1`, [agentId])).rows[0]!.storeId;
    const other = await h.terminal({ tenantId, storeId }, agentId, 'ONLINE');
    const tunnel: SessionRef = { agentId, tenantId, session };
    // A Database whose committed events the test sees (the connector PUBLISHes them to the live streams).
    const published: string[] = [];
    const db = Database.connect(h.testDb.appUrl, 2, { onCommitted: (events) => published.push(...events.map((e) => `${e.type} ${e.subjectId}`)) });
    const own = new TerminalPresence(db, createLogger({ name: 'test', level: 'silent' }), 'c-1', createMetricsRegistry('test'), slots);
    const query = jest.spyOn(Client.prototype, 'query');
    let texts: string[];
    try {
      await Promise.all([own.terminal(tunnel, terminalId, true), own.terminal(tunnel, other, true, 'link up')]);
      await db.eventsSettled();
    } finally {
      texts = query.mock.calls.map(([q]) => (typeof q === 'string' ? q : ((q as { text?: string }).text ?? '')));
      query.mockRestore();
      await db.close();
    }
    const statements = texts.filter((text) => !/^(BEGIN|COMMIT|SELECT set_config|SELECT \* FROM payorch_sequence_events)/.test(text.trim()));
    // The agents' shared lock, then the statuses with their events.
    expect(statements).toHaveLength(2);
    expect(texts.filter((text) => text.includes('INSERT INTO "DomainEvent"'))).toHaveLength(1);
    expect(await statusOf(terminalId)).toBe('ONLINE');
    const rows = await h.admin.query<{ type: string; subjectId: string; data: unknown }>(
      `SELECT type, "subjectId", data FROM "DomainEvent" WHERE "tenantId" = $1 AND seq IS NOT NULL ORDER BY seq`,
      [tenantId],
    );
    // Only the terminal whose status moved (UNKNOWN → ONLINE) has an event; the one already ONLINE has none.
    expect(rows.rows).toEqual([{ type: 'terminal.online', subjectId: terminalId, data: { terminalId, agentId } }]);
    expect(published).toEqual([`terminal.online ${terminalId}`]);
  });

  it("does not write a closed tunnel's ONLINE that was still waiting when the tunnel's offline was written", async () => {
    const session = randomUUID();
    const { tenantId, agentId, terminalId } = await agentWithTerminal(session, 'UNKNOWN');
    const tunnel: SessionRef = { agentId, tenantId, session };
    const slot = holdSlot();
    await waitFor(slot.holding, { what: 'the slot held' });
    // The set-up's link probe opened the link: its ONLINE waits for a slot (a storm).
    const online = presence.terminal(tunnel, terminalId, true);
    // The tunnel drops; its offline is written first.
    await presence.agentOffline(tunnel, 'closed');
    slot.release();
    await online;
    expect(await statusOf(terminalId)).not.toBe('ONLINE');
    expect(await eventsOf(tenantId)).toEqual(['agent.offline']);
  });

  it("retries a tunnel's offline that failed, instead of leaving its terminals ONLINE for an agent that may never come back", async () => {
    const session = randomUUID();
    const { tenantId, agentId, terminalId } = await agentWithTerminal(session, 'ONLINE');
    const once = jest.spyOn(h.db, 'withTenant').mockRejectedValueOnce(new Error('Connection terminated unexpectedly'));
    try {
      await presence.agentOffline({ agentId, tenantId, session }, 'closed');
    } finally {
      once.mockRestore();
    }
    expect(await statusOf(terminalId)).toBe('OFFLINE');
    expect(await eventsOf(tenantId)).toEqual(['agent.offline', 'terminal.offline']);
  });

  it("does not write an older tunnel's offline or status once the agent's presence is a newer tunnel's (it reconnected elsewhere)", async () => {
    const older = randomUUID();
    const newer = randomUUID();
    // The agent reconnected to another instance: its set-up holds the presence now and its probe wrote ONLINE.
    const { tenantId, agentId, terminalId } = await agentWithTerminal(newer, 'ONLINE');
    const stale: SessionRef = { agentId, tenantId, session: older };
    // The older tunnel's instance writes late: a link failure of its own, then the tunnel's close.
    await presence.terminal(stale, terminalId, false, 'link lost');
    await presence.agentOffline(stale, 'closed');
    expect(await statusOf(terminalId)).toBe('ONLINE');
    expect(await eventsOf(tenantId)).toEqual([]);
    // The newer tunnel's own writes stand.
    const current: SessionRef = { agentId, tenantId, session: newer };
    await presence.terminal(current, terminalId, false, 'link lost');
    expect(await statusOf(terminalId)).toBe('OFFLINE');
    await presence.agentOffline(current, 'closed');
    expect(await eventsOf(tenantId)).toEqual(['terminal.offline', 'agent.offline']);
    expect((await h.admin.query(`SELECT "presenceSession" FROM "Agent" WHERE id = $1`, [agentId])).rows[0].presenceSession).toBeNull();
  });
});
