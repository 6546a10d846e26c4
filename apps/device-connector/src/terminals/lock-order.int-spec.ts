import { randomUUID } from 'node:crypto';

import { Client } from 'pg';

import type { ConnectorConfig } from '@payorch/config';
import type { Database } from '@payorch/db';
import { createLogger, createMetricsRegistry } from '@payorch/logging';
import { waitFor } from '@payorch/testing';

import { ConnectorHarness } from '../testing/connector-harness.testing';
import { DatabaseSlots } from '../tunnel/database-slots';
import { type ClaimAgents, type SessionSetUp, type SessionSetUpInput, setUpSessions } from './session-setup';
import { type SessionRef, TerminalPresence } from './terminal-presence';

/**
 * The connector's two writers of Agent rows that share a transaction between tenants — the tunnels' set-ups
 * (session-setup.ts) and the presence batches (terminal-presence.ts) — lock those rows in one order: by tenant, then by
 * agent id, each tenant's agents all in its first statement. Before, each transaction took its tenants in the order its
 * calls arrived (and a presence batch its seen agents before the others), so a set-up and a presence batch of a
 * reconnect storm could each hold a row the other waited for: PostgreSQL found the deadlock after its
 * deadlock_timeout (1 s), aborted one, and its tenants' writes were made again one transaction each.
 */
describe('device-connector: set-ups and presence batches lock agents in one order', () => {
  const h = new ConnectorHarness({ poolSize: 6 });
  let presence: TerminalPresence;
  /** Rejections of the code's transactions (multi-tenant, and a lone tenant's), by SQLSTATE. */
  let aborted: string[];
  let holder: Client;

  beforeAll(async () => {
    await h.start();
    const slots = new DatabaseSlots({ CONNECTOR_DATABASE_POOL_SIZE: 4 } as ConnectorConfig);
    presence = new TerminalPresence(h.db, createLogger({ name: 'test', level: 'silent' }), 'c-1', createMetricsRegistry('test'), slots);
    const failed = (error: unknown): never => {
      aborted.push((error as { code?: string }).code ?? 'other');
      throw error;
    };
    const shared = h.db.withTenantsSql.bind(h.db);
    jest.spyOn(h.db, 'withTenantsSql').mockImplementation(((fn, options) => shared(fn, options).catch(failed)) as Database['withTenantsSql']);
    const alone = h.db.withTenantSql.bind(h.db);
    jest.spyOn(h.db, 'withTenantSql').mockImplementation(((tenantId, fn, options) => alone(tenantId, fn, options).catch(failed)) as Database['withTenantSql']);
    holder = new Client({ connectionString: h.testDb.adminUrl });
    await holder.connect();
  });

  beforeEach(() => (aborted = []));

  afterAll(async () => {
    await holder.end();
    await h.stop();
  });

  interface Till {
    tenantId: string;
    agentId: string;
    terminalId: string;
    prefix: string;
    session: string;
  }

  /** An enrolled agent with one terminal, its presence held by tunnel `session`; in a tenant of its own unless `at` is given. */
  async function till(at?: { tenantId: string; storeId: string }): Promise<Till> {
    const where = at ?? (await h.tenantWithStore());
    const prefix = `pfx-${randomUUID()}`;
    const session = randomUUID();
    const agentId = await h.agent(where, { credential: { hash: 'h', prefix }, presenceSession: session });
    const terminalId = await h.terminal(where, agentId, 'UNKNOWN');
    return { tenantId: where.tenantId, agentId, terminalId, prefix, session };
  }

  const input = (t: Till): SessionSetUpInput => ({
    agentId: t.agentId,
    tenantId: t.tenantId,
    credentialPrefix: t.prefix,
    version: '1.2.3',
    instanceId: 'c-1',
    sessionId: t.session,
  });
  const claimAll: ClaimAgents = async (inputs) => inputs.map(() => 'claimed' as const);
  const tunnel = (t: Till): SessionRef => ({ agentId: t.agentId, tenantId: t.tenantId, session: t.session });

  /** Backends of the application's pool waiting for a row lock. */
  const waitingForLocks = async () =>
    Number(
      (
        await h.admin.query<{ n: string }>(
          `SELECT count(*) AS n FROM pg_stat_activity WHERE datname = current_database() AND wait_event_type = 'Lock' AND pid <> pg_backend_pid()`,
        )
      ).rows[0]!.n,
    );

  /** Holds `agentId`'s row (as a revocation or a tunnel's offline would) until `release` commits. */
  async function hold(agentId: string): Promise<{ release: () => Promise<void> }> {
    await holder.query('BEGIN');
    await holder.query(`SELECT 1 FROM "Agent" WHERE id = $1 FOR NO KEY UPDATE`, [agentId]);
    return { release: async () => void (await holder.query('COMMIT')) };
  }

  /**
   * A writer of terminal rows by id without their agents (the admin `secrets rewrap`'s batches) holds `lo` while `start`
   * sends a presence batch that writes `lo` and `hi`; once the batch waits for `lo`, the writer goes on to `hi`. That is
   * free when the batch takes its terminals by id; before, the batch held `hi` and PostgreSQL aborted one of the two
   * (40P01) after its deadlock_timeout.
   */
  async function againstRewrapOrder(lo: string, hi: string, start: () => Promise<unknown>): Promise<void> {
    await holder.query('BEGIN');
    await holder.query(`SELECT 1 FROM "Terminal" WHERE id = $1 FOR NO KEY UPDATE`, [lo]);
    const batch = start();
    await waitFor(async () => (await waitingForLocks()) === 1, { what: 'the batch waiting for the lower terminal' });
    const next = holder.query(`UPDATE "Terminal" SET "updatedAt" = now() WHERE id = $1`, [hi]);
    let updated = false;
    void next.then(() => (updated = true));
    try {
      await waitFor(() => updated, { what: "the writer's next row, not held by the batch" });
    } finally {
      await next.catch(() => undefined);
      await holder.query('COMMIT').catch(() => undefined);
    }
    await batch;
  }

  const statusOf = async (terminalId: string) =>
    (await h.admin.query<{ status: string }>(`SELECT status::text FROM "Terminal" WHERE id = $1`, [terminalId])).rows[0]!.status;

  it('a presence batch of tenants A, B and a set-up batch of tenants B, A do not deadlock', async () => {
    const a = await till();
    const b = await till();
    const held = await hold(a.agentId);
    // The presence batch (A's terminal, then B's: one turn, one shared transaction) waits for A's agent.
    const online = Promise.all([presence.terminal(tunnel(a), a.terminalId, true), presence.terminal(tunnel(b), b.terminalId, true)]);
    await waitFor(async () => (await waitingForLocks()) === 1, { what: 'the presence batch waiting for A' });
    // The set-ups of B's agent, then A's: before, the transaction took B's row and waited for A's.
    const setUps = setUpSessions(h.db, [input(b), input(a)], claimAll);
    await waitFor(async () => (await waitingForLocks()) === 2, { what: 'the set-up batch waiting too' });
    await held.release();
    await online;
    const results = (await setUps) as SessionSetUp[];

    expect(aborted).toEqual([]);
    expect(results.map((r) => 'claimed' in r && r.claimed)).toEqual([true, true]);
    expect([await statusOf(a.terminalId), await statusOf(b.terminalId)]).toEqual(['ONLINE', 'ONLINE']);
  });

  it("a presence batch's seen agent and status agent are locked in id order, as a set-up locks them", async () => {
    const at = await h.tenantWithStore();
    const [lo, hi] = [await till(at), await till(at)].sort((x, y) => (x.agentId < y.agentId ? -1 : 1)) as [Till, Till];
    // Set-up writes each agent's presenceSession; the presence marks below are those tunnels'.
    const held = await hold(lo.agentId);
    // The set-up of both agents waits for the lower one first.
    const setUps = setUpSessions(h.db, [input(lo), input(hi)], claimAll);
    await waitFor(async () => (await waitingForLocks()) === 1, { what: 'the set-up batch waiting for the lower agent' });
    // A presence batch of the same tenant: the higher agent answered a ping (seen), the lower one's terminal came
    // online. Before, the seen agent's row was taken first, then the status agents' rows.
    const written = Promise.all([presence.agentSeen(tunnel(hi)), presence.terminal(tunnel(lo), lo.terminalId, true)]);
    await waitFor(async () => (await waitingForLocks()) === 2, { what: 'the presence batch waiting too' });
    await held.release();
    const results = (await setUps) as SessionSetUp[];
    await written;

    expect(aborted).toEqual([]);
    expect(results.map((r) => 'claimed' in r && r.claimed)).toEqual([true, true]);
    expect(await statusOf(lo.terminalId)).toBe('ONLINE');
  });

  it("an info write takes its agent's row first, as a tunnel's offline does", async () => {
    const t = await till();
    const held = await hold(t.agentId);
    // Before, the info UPDATE took the terminal's row and no agent row: with a tunnel's offline (the agent's row,
    // then its terminals) and two terminals of the agent, each could hold a row the other waited for.
    let written = false;
    const info = presence.terminalInfo(tunnel(t), t.terminalId, { model: 'T-1' }).then(() => (written = true));
    await waitFor(async () => (await waitingForLocks()) === 1, { what: "the info write waiting for its agent's row" });
    expect(written).toBe(false);
    await held.release();
    await info;
    const { rows } = await h.admin.query<{ info: unknown }>(`SELECT info FROM "Terminal" WHERE id = $1`, [t.terminalId]);
    expect(rows[0]!.info).toEqual({ model: 'T-1' });
  });

  it("a batch of several agents' infos takes every agent's row before any terminal's, whatever its plan", async () => {
    const at = await h.tenantWithStore();
    const [lo, hi] = [await till(at), await till(at)].sort((x, y) => (x.agentId < y.agentId ? -1 : 1)) as [Till, Till];
    const held = await hold(hi.agentId);
    const infos = Promise.all([
      presence.terminalInfo(tunnel(lo), lo.terminalId, { model: 'lo' }),
      presence.terminalInfo(tunnel(hi), hi.terminalId, { model: 'hi' }),
    ]);
    await waitFor(async () => (await waitingForLocks()) === 1, { what: "the batch waiting for the higher agent's row" });
    // Waiting for an agent, the batch holds no terminal: a writer that takes the lower terminal's row (a terminal moved
    // by the API, which holds the higher agent) is not waited for in a circle.
    const probe = new Client({ connectionString: h.testDb.adminUrl });
    await probe.connect();
    try {
      await probe.query('BEGIN');
      await expect(probe.query(`SELECT 1 FROM "Terminal" WHERE id = $1 FOR NO KEY UPDATE NOWAIT`, [lo.terminalId])).resolves.toMatchObject({ rowCount: 1 });
      await probe.query('ROLLBACK');
    } finally {
      await probe.end();
    }
    await held.release();
    await infos;
    expect(aborted).toEqual([]);
  });

  it('a presence batch takes its terminals by id, as the secrets rewrap does: they never wait for each other in a circle', async () => {
    const at = await h.tenantWithStore();
    const t = await till(at);
    const other = await h.terminal(at, t.agentId, 'UNKNOWN');
    const [lo, hi] = [t.terminalId, other].sort() as [string, string];
    // The batch's marks come higher terminal first (before, its rows were taken in that order: the higher one, then a
    // wait for the lower one).
    await againstRewrapOrder(lo, hi, () => Promise.all([presence.terminal(tunnel(t), hi, true), presence.terminal(tunnel(t), lo, true)]));
    expect(aborted).toEqual([]);
    expect([await statusOf(lo), await statusOf(hi)]).toEqual(['ONLINE', 'ONLINE']);
  });

  it("a batch of one terminal's status and another's info takes both terminals by id", async () => {
    const at = await h.tenantWithStore();
    const t = await till(at);
    const other = await h.terminal(at, t.agentId, 'UNKNOWN');
    const [lo, hi] = [t.terminalId, other].sort() as [string, string];
    // The higher terminal's status and the lower one's info: before, the status write took the higher one, then the
    // info write waited for the lower one.
    await againstRewrapOrder(lo, hi, () => Promise.all([presence.terminal(tunnel(t), hi, true), presence.terminalInfo(tunnel(t), lo, { model: 'lo' })]));
    expect(aborted).toEqual([]);
    expect(await statusOf(hi)).toBe('ONLINE');
  });

  it("a presence batch holding a terminal's row does not hold back an operation on it (its foreign-key check)", async () => {
    const at = await h.tenantWithStore();
    const t = await till(at);
    const other = await h.terminal(at, t.agentId, 'UNKNOWN');
    // The batch writes the first terminal's status, then waits for the second one's row (held here) for its info.
    await holder.query('BEGIN');
    await holder.query(`SELECT 1 FROM "Terminal" WHERE id = $1 FOR NO KEY UPDATE`, [other]);
    const batch = Promise.all([presence.terminal(tunnel(t), t.terminalId, true), presence.terminalInfo(tunnel(t), other, { model: 'T-2' })]);
    await waitFor(async () => (await waitingForLocks()) === 1, { what: 'the batch waiting for the second terminal' });
    // An operation created on the first terminal meanwhile: its foreign key's check takes the terminal's row FOR KEY
    // SHARE, which the batch's FOR UPDATE made wait for the batch (and so for whatever the batch waited for).
    const insert = h.admin.query(
      `INSERT INTO "TerminalOperation" (id, "tenantId", "storeId", "terminalId", type, state, amount, currency, "idempotencyKey", "requestHash", "updatedAt")
       VALUES (gen_random_uuid(), $1, $2, $3, 'PURCHASE', 'PENDING', 100, 'RUB', $4, 'h', now())`,
      [at.tenantId, at.storeId, t.terminalId, randomUUID()],
    );
    let inserted = false;
    void insert.then(() => (inserted = true));
    try {
      await waitFor(() => inserted, { what: 'the operation inserted while the batch waits' });
      expect(await waitingForLocks()).toBe(1);
    } finally {
      await holder.query('COMMIT');
    }
    await Promise.all([batch, insert]);
    expect(await statusOf(t.terminalId)).toBe('ONLINE');
  });
});
