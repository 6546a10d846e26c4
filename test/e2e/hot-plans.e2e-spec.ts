import { Client } from 'pg';

import { explainPrepared, type PlanNode, recordPreparedStatements, widePlans, widestRead } from '@payorch/testing';
import { JoinprotoTerminalSimulator } from '@payorch/testing/joinproto-sim';

import { GatewaySession, idem } from './support/gateway-session';
import { InProcessDispatcher } from './support/in-process-dispatcher';

/**
 * Issue 19: the hot path's statements are prepared once per connection (libs/db prepared-statements.ts), and
 * PostgreSQL keeps the generic plan it made the first time for as long as the connection lives, or until an
 * ANALYZE of the table. A plan made while a tenant had few operations (a new installation, a new tenant: the
 * planner then thinks `"tenantId" = <the tenant>`, which row-level security adds to every statement, selects
 * one row) must not read all of the tenant's operations once it has thousands: measured on the operations bench,
 * the compare-and-sets joined their row through the tenant's whole `(tenantId, id)` index (1,400–2,800 buffers
 * each) and the gate and the claim looked for an UNKNOWN operation of the terminal by reading every operation of
 * the tenant — the work of each payment grew with the tenant's history until autovacuum's next ANALYZE.
 *
 * This records every prepared statement of one `POST ?wait` → approved (gateway, executor, event sequencer,
 * `?wait`), prepares each again with its generic plan made while the tables are nearly empty (as the app's
 * connections did), then bulk-loads 3,000 operations and events of the same tenant and terminal (no ANALYZE) and
 * runs each cached plan once more: no plan node may read more than a handful of rows.
 */
describe('hot statements keep their plans bounded as a tenant grows (issue 19)', () => {
  const session = new GatewaySession();
  let dispatcher!: InProcessDispatcher;
  let sim: JoinprotoTerminalSimulator;
  let apiKey: string;
  let tenantId: string;
  let storeId: string;
  let terminalId: string;
  let recorder: ReturnType<typeof recordPreparedStatements>;
  /** The prepared statements of one POST ?wait → approved (recorded by the first test). */
  let statements: { text: string; values: unknown[] }[] = [];

  beforeAll(async () => {
    recorder = recordPreparedStatements();
    session.dispatcherFactory = (appUrl, publish) => (dispatcher = new InProcessDispatcher(appUrl, publish));
    await session.start();
    ({ apiKey, tenantId } = await session.tenant());
    sim = new JoinprotoTerminalSimulator({ cardTimeoutMs: 10 });
    const port = (await sim.listen(0)).port;
    const create = async (path: string, body: object): Promise<string> =>
      (await session.http().post(path).set('Authorization', `Bearer ${apiKey}`).set('Idempotency-Key', idem()).send(body).expect(201)).body.id;
    storeId = await create('/v1/stores', { name: 'S', timeZone: 'UTC' });
    terminalId = await create('/v1/terminals', { name: 'T', storeId, protocol: 'joinproto', connection: { kind: 'tcp', host: '127.0.0.1', port: 1 } });
    dispatcher.route(terminalId, { port });
  });

  afterAll(async () => {
    recorder?.restore();
    await dispatcher?.close();
    await sim?.close();
    await session.stop();
  });

  it('reads a bounded number of rows in every hot statement after the tenant grew by 3,000 operations', async () => {
    recorder.recording.on = true;
    const created = await session
      .http()
      .post(`/v1/terminals/${terminalId}/operations?wait=5000`)
      .set('Authorization', `Bearer ${apiKey}`)
      .set('Idempotency-Key', idem())
      .send({ type: 'purchase', amount: 1500, currency: 'RUB' })
      .expect(201);
    expect(created.body.state).toBe('approved');
    await dispatcher.db.eventsSettled();
    recorder.recording.on = false;
    statements = [...recorder.statements.values()];
    // The path's statements: API key, gate, create, claim, refs, progress, outcome, answer, sequencer.
    expect(statements.length).toBeGreaterThanOrEqual(8);
    expect(statements.some((s) => /UPDATE "TerminalOperation"/.test(s.text))).toBe(true);

    const client = new Client({ connectionString: session.testDb.adminUrl });
    await client.connect();
    try {
      await client.query('SET ROLE payorch_app');
      // Autovacuum must not ANALYZE (and so replan) during the test: the plans below are the ones made when small.
      for (const table of ['TerminalOperation', 'OperationEvent', 'DomainEvent', 'Terminal', 'Agent', 'Store']) {
        await session.owner.$executeRawUnsafe(`ALTER TABLE "${table}" SET (autovacuum_enabled = false)`);
      }
      const explain = (i: number, statement: (typeof statements)[number]): Promise<PlanNode> => explainPrepared(client, `hot_${i}`, statement, tenantId);
      // Prepared and run while the tenant has one operation, as the app's connections did: PostgreSQL plans the
      // first five runs with their values and then settles on a generic plan if it does not look costlier.
      for (const [i, statement] of statements.entries()) {
        await client.query(`PREPARE hot_${i} AS ${statement.text}`);
        for (let run = 0; run < 6; run++) await explain(i, statement).catch(() => undefined); // a duplicate INSERT fails after planning
      }
      await session.owner.$executeRawUnsafe(
        `INSERT INTO "TerminalOperation" ("id", "tenantId", "terminalId", "storeId", "type", "amount", "currency", "idempotencyKey", "requestHash",
           "state", "protocolRefs", "createdAt", "updatedAt", "completedAt")
         SELECT gen_random_uuid(), $1::uuid, $2::uuid, $3::uuid, 'PURCHASE', 1000, 'RUB', 'bulk-' || n, 'h', 'APPROVED', '{"df01":"000001"}',
           now() - n * interval '1 second', now() - n * interval '1 second', now() - n * interval '1 second'
         FROM generate_series(1, 3000) n`,
        tenantId,
        terminalId,
        storeId,
      );
      await session.owner.$executeRawUnsafe(
        `INSERT INTO "DomainEvent" ("id", "tenantId", "type", "subjectType", "subjectId", "data", "seq", "createdAt")
         SELECT gen_random_uuid(), $1::uuid, 'operation.completed', 'operation', gen_random_uuid()::text, '{}', nextval('payorch_domain_event_seq'),
           now() - n * interval '1 second'
         FROM generate_series(1, 3000) n`,
        tenantId,
      );
      const wide: string[] = [];
      const refused: string[] = [];
      for (const [i, statement] of statements.entries()) {
        let plan: PlanNode;
        try {
          plan = await explain(i, statement);
        } catch (error) {
          // Replaying an INSERT of a row that exists (the operation, its audit row) is a duplicate key: no plan to read.
          refused.push(`${(error as { code?: string }).code}: ${statement.text.replace(/\s+/g, ' ').slice(0, 60)}`);
          continue;
        }
        const widest = widestRead(plan);
        if (widest.rows > 20) wide.push(`${widest.rows} rows at ${widest.where} in: ${statement.text.replace(/\s+/g, ' ').slice(0, 300)}`);
      }
      expect(wide).toEqual([]);
      expect(refused.every((r) => r.startsWith('23505: ') && /INSERT INTO/.test(r))).toBe(true);
    } finally {
      await client.end();
    }
  });

  it('reads a bounded number of rows in every hot statement once the grown tables are ANALYZEd, as autovacuum does', async () => {
    // Found by the operations bench on a tenant with a history (issue 19): with statistics, the claim's guard "no
    // other operation of the terminal is UNKNOWN" (a NOT EXISTS on `state`, which row-level security keeps from being
    // an index condition) was planned as a sequential scan of the whole table: 4–7 ms per claim at 20,000 operations.
    expect(statements.length).toBeGreaterThanOrEqual(8);
    // A tenant in service: 20,000 more operations over this terminal and three others of its store.
    const others = await session.owner.$queryRawUnsafe<{ id: string }[]>(
      `INSERT INTO "Terminal" ("id", "tenantId", "storeId", "name", "protocol", "connection", "updatedAt")
       SELECT gen_random_uuid(), $1::uuid, $2::uuid, 'T' || n, 'JOINPROTO', '{}', now() FROM generate_series(1, 3) n RETURNING "id"`,
      tenantId,
      storeId,
    );
    await session.owner.$executeRawUnsafe(
      `INSERT INTO "TerminalOperation" ("id", "tenantId", "terminalId", "storeId", "type", "amount", "currency", "idempotencyKey", "requestHash",
         "state", "createdAt", "updatedAt", "completedAt")
       SELECT gen_random_uuid(), $1::uuid, ($2::uuid[])[1 + n % 4], $3::uuid, 'PURCHASE', 1000, 'RUB', 'bulk-more-' || n, 'h', 'APPROVED',
         now() - n * interval '2 seconds', now() - n * interval '2 seconds', now() - n * interval '2 seconds'
       FROM generate_series(1, 20000) n`,
      tenantId,
      [terminalId, ...others.map((o) => o.id)],
      storeId,
    );
    await session.owner.$executeRawUnsafe('ANALYZE "TerminalOperation", "OperationEvent", "DomainEvent", "Terminal", "Agent", "Store"');
    // A new PENDING operation of the terminal: each statement is replayed on it (the claim's guard runs only for a
    // PENDING row), in a transaction rolled back.
    const [{ id: recordedId }] = await session.owner.$queryRawUnsafe<{ id: string }[]>(
      `SELECT "id" FROM "TerminalOperation" WHERE "tenantId" = $1::uuid AND "idempotencyKey" NOT LIKE 'bulk-%'`,
      tenantId,
    );
    const [{ id: pendingId }] = await session.owner.$queryRawUnsafe<{ id: string }[]>(
      `INSERT INTO "TerminalOperation" ("id", "tenantId", "terminalId", "storeId", "type", "amount", "currency", "idempotencyKey", "requestHash", "updatedAt")
       VALUES (gen_random_uuid(), $1::uuid, $2::uuid, $3::uuid, 'PURCHASE', 1000, 'RUB', 'pending-1', 'h', now()) RETURNING "id"`,
      tenantId,
      terminalId,
      storeId,
    );
    // The recorded run's events go: a step's statement inserts its event with the recorded id, and a duplicate key
    // (whose detail row-level security hides) would leave nothing to plan (widePlans skips it).
    await session.owner.$executeRawUnsafe(`DELETE FROM "DomainEvent" WHERE "subjectId" = $1`, recordedId);
    const replayed = statements.map((s) => ({ text: s.text, values: s.values.map((v) => (v === recordedId ? pendingId : v)) }));
    expect(replayed.some((s, i) => s.values.includes(pendingId) && /UPDATE "TerminalOperation"/.test(statements[i]!.text))).toBe(true);
    expect(await widePlans(session.testDb.adminUrl, replayed, tenantId, 20)).toEqual([]);
  });
});
