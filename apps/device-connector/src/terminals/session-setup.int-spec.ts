import { Client } from 'pg';

import { recordPreparedStatements, waitFor, widePlans } from '@payorch/testing';

import { ConnectorHarness } from '../testing/connector-harness.testing';
import { type ClaimAgents, type SessionSetUp, type SessionSetUpInput, SessionSetups, setUpSessions } from './session-setup';

/**
 * A reconnect storm's set-ups share a transaction whatever their tenants (issue 19): each agent gets its own result
 * (its terminals, which of them have non-final operations, or why it was revoked), a revoked agent in the batch gets
 * nothing written, each tenant's statement runs under its own scope, and a batch is formed when it gets its slot.
 */
describe('device-connector: batched tunnel set-ups', () => {
  const h = new ConnectorHarness({ poolSize: 4 });
  let tenantId: string;
  let storeId: string;

  beforeAll(async () => {
    await h.start();
    ({ tenantId, storeId } = await h.tenantWithStore());
  });

  afterAll(() => h.stop());

  async function agent(
    prefix: string,
    status: 'ACTIVE' | 'REVOKED',
    terminals: number,
    at: { tenantId: string; storeId: string } = { tenantId, storeId },
  ): Promise<{ agentId: string; terminalIds: string[]; tenantId: string }> {
    const agentId = await h.agent(at, { status, credential: { hash: 'h', prefix } });
    const terminalIds: string[] = [];
    for (let i = 0; i < terminals; i += 1) {
      const { rows } = await h.admin.query<{ id: string }>(
        `INSERT INTO "Terminal" (id, "tenantId", "storeId", "agentId", name, protocol, connection, "createdAt", "updatedAt")
         VALUES (gen_random_uuid(), $1, $2, $3, $4, 'JOINPROTO', $5, now() + make_interval(secs => $6), now()) RETURNING id`,
        [at.tenantId, at.storeId, agentId, `T${i}`, { kind: 'tcp', host: '127.0.0.1', port: 7001 + i }, i],
      );
      terminalIds.push(rows[0]!.id);
    }
    return { agentId, terminalIds, tenantId: at.tenantId };
  }

  /** The tunnel of each agent's set-up (AgentSession.id): one per agent here. */
  const sessionOf = (agentId: string) => `00000000-0000-4000-8000-${agentId.slice(-12)}`;
  const input = (agentId: string, credentialPrefix: string, ofTenant = tenantId): SessionSetUpInput => ({
    agentId,
    tenantId: ofTenant,
    credentialPrefix,
    version: '1.2.3',
    instanceId: 'c-1',
    sessionId: sessionOf(agentId),
  });

  /** The hub's claim as when every tunnel is still open and Redis answers. */
  const claimAll: ClaimAgents = async (inputs) => inputs.map(() => 'claimed' as const);
  type Claimed = Extract<SessionSetUp, { claimed: true }>;

  it('sets up several agents of a tenant in one transaction, each with its own terminals; a revoked one gets nothing written', async () => {
    const a = await agent('pfx-a', 'ACTIVE', 2);
    const b = await agent('pfx-b', 'ACTIVE', 1);
    const revoked = await agent('pfx-r', 'REVOKED', 1);
    // An unfinished operation on b's terminal: b's set-up must recover it.
    await h.admin.query(
      `INSERT INTO "TerminalOperation" (id, "tenantId", "storeId", "terminalId", type, state, amount, currency, "idempotencyKey", "requestHash", "updatedAt")
       VALUES (gen_random_uuid(), $1, $3, $2, 'PURCHASE', 'UNKNOWN', 100, 'RUB', 'k-1', 'h', now())`,
      [tenantId, b.terminalIds[0], storeId],
    );
    const events = async () => Number((await h.admin.query(`SELECT count(*) FROM "DomainEvent" WHERE type = 'agent.online'`)).rows[0].count);
    const before = await events();

    const query = jest.spyOn(Client.prototype, 'query');
    const results = (await setUpSessions(
      h.db,
      [input(a.agentId, 'pfx-a'), input(revoked.agentId, 'pfx-r'), input(b.agentId, 'pfx-b'), input(b.agentId, 'stale-prefix')],
      claimAll,
    )) as SessionSetUp[];
    const texts = query.mock.calls.map(([q]) => (typeof q === 'string' ? q : ((q as { text?: string }).text ?? '')));
    query.mockRestore();
    // The live agents' agent.online events: one INSERT for the batch, not one per agent.
    expect(texts.filter((text) => text.includes('INSERT INTO "DomainEvent"'))).toHaveLength(1);
    // The set-up's own statements: the access check of the batch, then (issue 19) one statement for the tenant's agents'
    // rows, their events, and their terminals with which of them have non-final operations (it was four, then three).
    const own = texts.filter((text) => !/^(BEGIN|COMMIT|SELECT set_config|SELECT \* FROM payorch_sequence_events)/.test(text.trim()));
    expect(own).toHaveLength(2);
    expect(own[0]).toContain('payorch_check_agent_access');

    expect(results[0]).toMatchObject({ revoked: null, unfinished: new Set() });
    expect((results[0] as Claimed).rows.map((r) => r.id)).toEqual(a.terminalIds);
    expect(results[1]!.revoked).not.toBeNull();
    expect(results[2]).toMatchObject({ revoked: null, unfinished: new Set(b.terminalIds) });
    expect((results[2] as Claimed).rows.map((r) => r.id)).toEqual(b.terminalIds);
    // A credential that is no longer the agent's active one is refused, even in a batch where the agent is live.
    expect(results[3]!.revoked).not.toBeNull();
    const seen = await h.admin.query<{ id: string; version: string | null; lastSeenAt: Date | null; presenceSession: string | null }>(
      `SELECT id, version, "lastSeenAt", "presenceSession" FROM "Agent" WHERE id = ANY($1::uuid[])`,
      [[a.agentId, b.agentId, revoked.agentId]],
    );
    const byId = new Map(seen.rows.map((row) => [row.id, row]));
    // Each live agent's presence is its set-up's tunnel's from now on (TerminalPresence writes only that one's statuses).
    expect(byId.get(a.agentId)).toMatchObject({ version: '1.2.3', lastSeenAt: expect.any(Date), presenceSession: sessionOf(a.agentId) });
    expect(byId.get(b.agentId)).toMatchObject({ version: '1.2.3', lastSeenAt: expect.any(Date), presenceSession: sessionOf(b.agentId) });
    expect(byId.get(revoked.agentId)).toMatchObject({ version: null, lastSeenAt: null, presenceSession: null });
    expect((await events()) - before).toBe(2);
  });

  it('claims only the agents the access check let in, after the check and before their rows; an agent not claimed gets nothing written', async () => {
    const claimed = await agent('pfx-c1', 'ACTIVE', 1);
    const gone = await agent('pfx-c2', 'ACTIVE', 1);
    const failed = await agent('pfx-c3', 'ACTIVE', 1);
    const refused = await agent('pfx-c4', 'REVOKED', 1);
    const query = jest.spyOn(Client.prototype, 'query');
    const texts = () => query.mock.calls.map(([q]) => (typeof q === 'string' ? q : ((q as { text?: string }).text ?? '')));
    const asked: string[] = [];
    let sentBeforeClaim: string[] = [];
    const claim: ClaimAgents = async (inputs) => {
      sentBeforeClaim = texts();
      asked.push(...inputs.map((i) => i.agentId));
      return inputs.map((i) => (i.agentId === claimed.agentId ? 'claimed' : i.agentId === gone.agentId ? 'gone' : new Error('redis down')));
    };
    let results: SessionSetUp[];
    try {
      results = (await setUpSessions(
        h.db,
        [input(refused.agentId, 'pfx-c4'), input(claimed.agentId, 'pfx-c1'), input(gone.agentId, 'pfx-c2'), input(failed.agentId, 'pfx-c3')],
        claim,
      )) as SessionSetUp[];
    } finally {
      query.mockRestore();
    }
    // The refused agent is never claimed: the check's decision comes first (its statement was sent), the writes and the
    // terminals' read after the claim.
    expect(asked).toEqual([claimed.agentId, gone.agentId, failed.agentId]);
    expect(sentBeforeClaim.some((text) => text.includes('payorch_check_agent_access'))).toBe(true);
    expect(sentBeforeClaim.some((text) => /UPDATE "Agent"|FROM "Terminal" t|INSERT INTO "DomainEvent"/.test(text))).toBe(false);
    expect(results![0]!.revoked).toBe('revoked');
    expect((results![1] as Claimed).rows.map((r) => r.id)).toEqual(claimed.terminalIds);
    expect(results![2]).toEqual({ revoked: null, claimed: false, error: null });
    expect(results![3]).toMatchObject({ revoked: null, claimed: false, error: new Error('redis down') });
    const rows = await h.admin.query<{ id: string; presenceSession: string | null }>(`SELECT id, "presenceSession" FROM "Agent" WHERE id = ANY($1::uuid[])`, [
      [claimed.agentId, gone.agentId, failed.agentId, refused.agentId],
    ]);
    const presence = new Map(rows.rows.map((row) => [row.id, row.presenceSession]));
    expect(presence).toEqual(
      new Map([
        [claimed.agentId, sessionOf(claimed.agentId)],
        [gone.agentId, null],
        [failed.agentId, null],
        [refused.agentId, null],
      ]),
    );
    const online = await h.admin.query<{ subjectId: string }>(
      `SELECT "subjectId" FROM "DomainEvent" WHERE type = 'agent.online' AND "subjectId" = ANY($1::text[])`,
      [[claimed.agentId, gone.agentId, failed.agentId, refused.agentId]],
    );
    expect(online.rows.map((row) => row.subjectId)).toEqual([claimed.agentId]);
  });

  /** The hub's work for a batch (terminal-hub.ts). */
  const transact =
    (claim: ClaimAgents = claimAll) =>
    (inputs: SessionSetUpInput[]) =>
      setUpSessions(h.db, inputs, claim);

  it('forms a batch when the slot is free: set-ups arriving meanwhile share the next transaction', async () => {
    const agents = await Promise.all(['pfx-1', 'pfx-2', 'pfx-3', 'pfx-4'].map((prefix) => agent(prefix, 'ACTIVE', 1).then((a) => ({ ...a, prefix }))));
    const batches: number[] = [];
    let release!: () => void;
    const held = new Promise<void>((resolve) => (release = resolve));
    let first = true;
    const sut = new SessionSetups(
      async (fn) => {
        // The first batch waits for its slot until the other three set-ups have arrived.
        if (first) {
          first = false;
          await held;
        }
        return fn();
      },
      (inputs) => {
        batches.push(inputs.length);
        return transact()(inputs);
      },
    );
    const results = agents.map((a) => sut.setUp(input(a.agentId, a.prefix)));
    release();
    const done = await Promise.all(results);
    expect(batches).toEqual([4]);
    expect(done.map((r) => r.revoked)).toEqual([null, null, null, null]);

    // A failed batch rejects each of its set-ups; the next one runs again.
    const failing = new SessionSetups(
      (fn) => fn(),
      () => Promise.reject(new Error('connection lost')),
    );
    await expect(Promise.all([failing.setUp(input(agents[0]!.agentId, 'pfx-1')), failing.setUp(input(agents[1]!.agentId, 'pfx-2'))])).rejects.toThrow(
      'connection lost',
    );
  });

  /**
   * Issue 19: after a connector's kill -9 the agents come back spread out by their backoff, so a tenant's batch held one
   * or two agents: ~4 statements and a commit per agent (a transaction per tenant). The set-ups of every tenant waiting
   * now share one transaction, each tenant's statements under its own scope.
   */
  it("sets up several tenants' agents in one transaction, each under its own tenant's scope", async () => {
    const other = await h.tenantWithStore();
    const third = await h.tenantWithStore();
    const a = await agent('pfx-mt-a', 'ACTIVE', 2);
    const b = await agent('pfx-mt-b', 'ACTIVE', 1, other);
    const c = await agent('pfx-mt-c', 'ACTIVE', 1, third);
    const batches: string[][] = [];
    const sut = new SessionSetups(
      (fn) => fn(),
      (inputs) => {
        batches.push(inputs.map((i) => i.tenantId));
        return transact()(inputs);
      },
    );
    const query = jest.spyOn(Client.prototype, 'query');
    let done: SessionSetUp[];
    let texts: string[];
    try {
      done = await Promise.all([
        sut.setUp(input(a.agentId, 'pfx-mt-a')),
        sut.setUp(input(b.agentId, 'pfx-mt-b', other.tenantId)),
        sut.setUp(input(c.agentId, 'pfx-mt-c', third.tenantId)),
      ]);
    } finally {
      texts = query.mock.calls.map(([q]) => (typeof q === 'string' ? q : ((q as { text?: string }).text ?? '')));
      query.mockRestore();
    }
    expect(batches).toEqual([[tenantId, other.tenantId, third.tenantId]]);
    expect(texts.filter((text) => text.trim() === 'BEGIN')).toHaveLength(1);
    // Each tenant's terminals: read under its own scope (another scope would show none of them).
    expect(done.map((r) => (r as Claimed).rows.map((row) => row.id))).toEqual([a.terminalIds, b.terminalIds, c.terminalIds]);
    const online = await h.admin.query<{ tenantId: string; subjectId: string }>(
      `SELECT "tenantId", "subjectId" FROM "DomainEvent" WHERE type = 'agent.online' AND "subjectId" = ANY($1::text[]) ORDER BY "subjectId"`,
      [[a.agentId, b.agentId, c.agentId]],
    );
    expect(new Map(online.rows.map((row) => [row.subjectId, row.tenantId]))).toEqual(
      new Map([
        [a.agentId, tenantId],
        [b.agentId, other.tenantId],
        [c.agentId, third.tenantId],
      ]),
    );
    const seen = await h.admin.query<{ id: string; presenceSession: string | null }>(`SELECT id, "presenceSession" FROM "Agent" WHERE id = ANY($1::uuid[])`, [
      [a.agentId, b.agentId, c.agentId],
    ]);
    expect(new Map(seen.rows.map((row) => [row.id, row.presenceSession]))).toEqual(
      new Map([a, b, c].map((x) => [x.agentId, sessionOf(x.agentId)] as [string, string])),
    );
  });

  it('runs at most two batches at once; set-ups arriving meanwhile wait for the next, whatever their tenant', async () => {
    const other = await h.tenantWithStore();
    const a1 = await agent('pfx-two-1', 'ACTIVE', 1);
    const a2 = await agent('pfx-two-2', 'ACTIVE', 1);
    const b = await agent('pfx-two-b', 'ACTIVE', 1, other);
    const batches: number[] = [];
    let release!: () => void;
    const held = new Promise<void>((resolve) => (release = resolve));
    let claims = 0;
    // The first two batches' claims wait until the test has queued a third set-up.
    const claim: ClaimAgents = async (inputs) => {
      claims += 1;
      if (claims <= 2) await held;
      return claimAll(inputs);
    };
    const sut = new SessionSetups(
      (fn) => fn(),
      (inputs) => {
        batches.push(inputs.length);
        return transact(claim)(inputs);
      },
    );
    const first = sut.setUp(input(a1.agentId, 'pfx-two-1'));
    await waitFor(async () => claims === 1, { what: 'the first batch at its claim' });
    const second = sut.setUp(input(a2.agentId, 'pfx-two-2'));
    await waitFor(async () => claims === 2, { what: 'a second batch beside the first' });
    const third = sut.setUp(input(b.agentId, 'pfx-two-b', other.tenantId));
    await new Promise((resolve) => setImmediate(resolve));
    expect(batches).toEqual([1, 1]);
    release();
    const done = await Promise.all([first, second, third]);
    expect(batches).toEqual([1, 1, 1]);
    expect(done.map((r) => r.revoked)).toEqual([null, null, null]);
  });

  it("makes each tenant's set-ups again on their own when one tenant's statement is refused: only that tenant's fail", async () => {
    const other = await h.tenantWithStore();
    const good = await agent('pfx-split-good', 'ACTIVE', 1);
    const bad = await agent('pfx-split-bad', 'ACTIVE', 1, other);
    // A value PostgreSQL refuses in the bad tenant's set-up only (its agent's version).
    await h.admin.query(`ALTER TABLE "Agent" ADD CONSTRAINT test_refused_version CHECK ("version" IS DISTINCT FROM 'refused')`);
    const transactions = jest.spyOn(h.db, 'withTenantSql');
    try {
      const sut = new SessionSetups((fn) => fn(), transact());
      const [ok, refused] = await Promise.allSettled([
        sut.setUp(input(good.agentId, 'pfx-split-good')),
        sut.setUp({ ...input(bad.agentId, 'pfx-split-bad', other.tenantId), version: 'refused' }),
      ]);
      // After the shared transaction failed, each tenant's writes in one of its own.
      expect(transactions.mock.calls.map(([tenant]) => tenant)).toEqual([tenantId, other.tenantId]);
      expect(ok).toMatchObject({ status: 'fulfilled', value: { revoked: null, claimed: true } });
      expect(refused).toMatchObject({ status: 'rejected', reason: expect.objectContaining({ message: expect.stringContaining('test_refused_version') }) });
      const rows = await h.admin.query<{ id: string; presenceSession: string | null }>(`SELECT id, "presenceSession" FROM "Agent" WHERE id = ANY($1::uuid[])`, [
        [good.agentId, bad.agentId],
      ]);
      expect(new Map(rows.rows.map((row) => [row.id, row.presenceSession]))).toEqual(
        new Map([
          [good.agentId, sessionOf(good.agentId)],
          [bad.agentId, null],
        ]),
      );
    } finally {
      transactions.mockRestore();
      await h.admin.query(`ALTER TABLE "Agent" DROP CONSTRAINT test_refused_version`);
    }
  });

  it("reads the tenant's open operations, not its history (20,000 final operations): every statement's plan stays bounded", async () => {
    // Issue 19, "flat as tables grow": the question "which of the agent's terminals have unfinished operations?" read
    // every operation of the tenant per set-up batch (under RLS a condition on "state" is never an index condition).
    const c = await agent('pfx-history', 'ACTIVE', 2);
    await h.admin.query(
      `INSERT INTO "TerminalOperation" (id, "tenantId", "storeId", "terminalId", type, state, amount, currency, "idempotencyKey", "requestHash",
         "createdAt", "updatedAt", "completedAt")
       SELECT gen_random_uuid(), $1, $3, $2, 'PURCHASE', 'APPROVED', 100, 'RUB', 'past-' || n, 'h', now() - n * interval '1 second', now(), now()
       FROM generate_series(1, 20000) n`,
      [tenantId, c.terminalIds[0], storeId],
    );
    await h.admin.query(
      `INSERT INTO "TerminalOperation" (id, "tenantId", "storeId", "terminalId", type, state, amount, currency, "idempotencyKey", "requestHash", "updatedAt")
       VALUES (gen_random_uuid(), $1, $3, $2, 'PURCHASE', 'SENT', 100, 'RUB', 'open-1', 'h', now())`,
      [tenantId, c.terminalIds[1], storeId],
    );
    await h.admin.query('ANALYZE "TerminalOperation"');
    const recorder = recordPreparedStatements();
    let results: SessionSetUp[];
    try {
      recorder.recording.on = true;
      results = (await setUpSessions(h.db, [input(c.agentId, 'pfx-history')], claimAll)) as SessionSetUp[];
    } finally {
      recorder.restore();
    }
    expect(results[0]).toMatchObject({ revoked: null, unfinished: new Set([c.terminalIds[1]]) });
    const statements = [...recorder.statements.values()];
    expect(statements.some((s) => /FROM "TerminalOperation"/.test(s.text))).toBe(true);
    expect(await widePlans(h.testDb.adminUrl, statements, tenantId)).toEqual([]);
  });
});
