import { execFile } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import path from 'node:path';
import { promisify } from 'node:util';

import { createTestDatabase, socketWriteTexts, type TestDatabase, waitFor } from '@payorch/testing';

import pg from 'pg';

import {
  createPrismaClient,
  Database,
  expectEvents,
  Prisma,
  type PrismaClient,
  type PublishedEvent,
  publishEvent,
  SharedTenantTransactions,
  SqlTransaction,
} from './index';
import { MAX_PREPARED_STATEMENTS } from './prepared-statements';

/** Store's columns by name, as the hot statements name TerminalOperation's (OPERATION_ROW_COLUMNS). */
const storeColumns = Prisma.raw('"id", "tenantId", "name", "timeZone"');

describe(`${SqlTransaction.name} (Database.withTenantSql, the hot path)`, () => {
  let testDb: TestDatabase;
  let owner: PrismaClient;
  let sut: Database;
  const committed: PublishedEvent[] = [];
  let tenantA: string;
  let tenantB: string;
  let storeA: string;

  beforeAll(async () => {
    testDb = await createTestDatabase();
    owner = createPrismaClient(testDb.adminUrl, { max: 2 });
    // One connection: every transaction below reuses the one before's.
    sut = Database.connect(testDb.appUrl, 1, { onCommitted: (events) => committed.push(...events) });
    tenantA = (await owner.tenant.create({ data: { name: 'Chain A' } })).id;
    tenantB = (await owner.tenant.create({ data: { name: 'Chain B' } })).id;
    storeA = (await owner.store.create({ data: { tenantId: tenantA, name: 'A1', timeZone: 'UTC' } })).id;
    await owner.store.create({ data: { tenantId: tenantB, name: 'B1', timeZone: 'UTC' } });
  });

  afterAll(async () => {
    await sut.close();
    await owner.$disconnect();
    await testDb.drop();
  });

  const storeNames = (tenantId: string) =>
    sut.querySql<{ name: string }>(tenantId, Prisma.sql`SELECT "name" FROM "Store" ORDER BY "name"`).then((rows) => rows.map((r) => r.name));

  it('shows a tenant only its own rows, in a transaction or in a pipelined read', async () => {
    expect(await sut.withTenantSql(tenantB, (tx) => tx.$queryRaw<{ name: string }[]>`SELECT "name" FROM "Store"`)).toEqual([{ name: 'B1' }]);
    expect(await storeNames(tenantA)).toEqual(['A1']);
    expect(await sut.withTenantSql(tenantB, (tx) => tx.$executeRaw`UPDATE "Store" SET "name" = 'hacked' WHERE "id" = ${storeA}::uuid`)).toBe(0);
    expect(await storeNames(tenantA)).toEqual(['A1']);
  });

  it('should not insert a row for another tenant (WITH CHECK)', async () => {
    await expect(
      sut.withTenantSql(
        tenantB,
        (tx) =>
          tx.$executeRaw`INSERT INTO "Store" ("id", "tenantId", "name", "timeZone", "createdAt", "updatedAt") VALUES (${randomUUID()}::uuid, ${tenantA}::uuid, 'x', 'UTC', now(), now())`,
      ),
    ).rejects.toThrow(/row-level security/);
    // The connection is clean for the next caller.
    expect(await storeNames(tenantB)).toEqual(['B1']);
  });

  it('commits its writes and hands their events over; int8 reads as bigint, as through Prisma', async () => {
    const id = randomUUID();
    const seen = committed.length;
    const count = await sut.withTenantSql(tenantA, async (tx) => {
      await tx.$executeRaw`INSERT INTO "Store" ("id", "tenantId", "name", "timeZone", "createdAt", "updatedAt") VALUES (${id}::uuid, ${tenantA}::uuid, 'A2', 'UTC', now(), now())`;
      await publishEvent(tx, tenantA, { type: 'terminal.updated', subjectType: 'terminal', subjectId: null, data: { n: 1 } });
      return (await tx.$queryRaw<{ n: bigint }[]>`SELECT count(*) AS n FROM "Store"`)[0]!.n;
    });
    expect(count).toBe(2n);
    await sut.eventsSettled();
    expect(committed.slice(seen).map((e) => [e.tenantId, e.type])).toEqual([[tenantA, 'terminal.updated']]);
    expect(await owner.domainEvent.count({ where: { tenantId: tenantA, type: 'terminal.updated', seq: { not: null } } })).toBe(1);
  });

  it('reads a date as midnight UTC of that day, as Prisma does, in any process time zone', async () => {
    // pg's own parser makes local midnight: 05:00 UTC in New York, so a business date printed as ISO would be right only
    // on a server running in UTC. A child process, because the time zone is the process's (Jest's process.env is a copy).
    const script = `const { Database, Prisma } = require(${JSON.stringify(path.join(__dirname, 'index.ts'))});
      const db = Database.connect(process.env.APP_URL, 1);
      db.querySql(process.env.TENANT, Prisma.sql\`SELECT '2026-03-01'::date AS d\`)
        .then(([row]) => process.stdout.write(row.d.toISOString()))
        .finally(() => db.close());`;
    const { stdout } = await promisify(execFile)(process.execPath, ['-r', '@swc-node/register', '-e', script], {
      env: {
        ...process.env,
        TZ: 'America/New_York',
        APP_URL: testDb.appUrl,
        TENANT: tenantA,
        SWC_NODE_PROJECT: path.resolve(__dirname, '../../../tsconfig.json'),
      },
    });
    expect(stdout).toBe('2026-03-01T00:00:00.000Z');
  });

  it('sends the event sequencer in the write of the COMMIT: no write of its own, and the events are numbered before they are handed over', async () => {
    const seen = committed.length;
    const writes = await socketWriteTexts(async () => {
      await sut.withTenantSql(tenantA, (tx) =>
        publishEvent(tx, tenantA, { type: 'terminal.updated', subjectType: 'terminal', subjectId: null, data: { n: 2 } }),
      );
      await sut.eventsSettled();
    });
    const ids = committed.slice(seen).map((e) => e.id);
    const numbered = (await owner.domainEvent.findMany({ where: { id: { in: ids } } })).map((e) => e.seq);
    expect(numbered).toHaveLength(1);
    expect(numbered[0]).not.toBeNull();
    const sequencer = writes.filter((w) => w.includes('payorch_sequence_events'));
    expect(sequencer).toHaveLength(1);
    expect(sequencer[0]).toContain('COMMIT');
  });

  it('commits nothing and publishes nothing when a deferred write fails', async () => {
    const id = randomUUID();
    const seen = committed.length;
    await expect(
      sut.withTenantSql(tenantA, async (tx) => {
        await tx.$executeRaw`INSERT INTO "Store" ("id", "tenantId", "name", "timeZone", "createdAt", "updatedAt") VALUES (${id}::uuid, ${tenantA}::uuid, 'A3', 'UTC', now(), now())`;
        await publishEvent(tx, tenantA, { type: 'terminal.updated', subjectType: 'terminal', subjectId: null, data: {} });
        // Nobody waits for this one's answer: its failure surfaces at COMMIT.
        (tx as SqlTransaction).defer(Prisma.sql`INSERT INTO "Store" ("id") VALUES (${id}::uuid)`);
        return 'done';
      }),
    ).rejects.toThrow();
    await sut.eventsSettled();
    expect(committed.length).toBe(seen);
    expect(await owner.store.findUnique({ where: { id } })).toBeNull();
    expect(await storeNames(tenantA)).toEqual(['A1', 'A2']);
  });

  it('rolls back when the caller fails after its writes', async () => {
    await expect(
      sut.withTenantSql(tenantA, async (tx) => {
        await tx.$executeRaw`UPDATE "Store" SET "name" = 'renamed' WHERE "id" = ${storeA}::uuid`;
        throw new Error('caller failed');
      }),
    ).rejects.toThrow('caller failed');
    expect(await storeNames(tenantA)).toEqual(['A1', 'A2']);
  });

  it('with pipelineCommit, refuses a statement issued after COMMIT was written instead of running it outside the transaction', async () => {
    const id = randomUUID();
    await expect(
      sut.withTenantSql(
        tenantA,
        async (tx) => {
          await tx.$queryRaw`SELECT 1`;
          // Too late: COMMIT went right behind the first statement.
          await tx.$executeRaw`INSERT INTO "Store" ("id", "tenantId", "name", "timeZone", "createdAt", "updatedAt") VALUES (${id}::uuid, ${tenantA}::uuid, 'late', 'UTC', now(), now())`;
        },
        { pipelineCommit: true },
      ),
    ).rejects.toThrow('statement issued after the end of its transaction');
    expect(await owner.store.findUnique({ where: { id } })).toBeNull();
    expect(await storeNames(tenantA)).toEqual(['A1', 'A2']);
  });

  it('after commitNow, refuses a deferred write at once instead of losing it, and commits what was issued before', async () => {
    const id = randomUUID();
    await expect(
      sut.withTenantSql(tenantA, async (tx) => {
        (tx as SqlTransaction).defer(
          Prisma.sql`INSERT INTO "Store" ("id", "tenantId", "name", "timeZone", "createdAt", "updatedAt") VALUES (${id}::uuid, ${tenantA}::uuid, 'A4', 'UTC', now(), now())`,
        );
        (tx as SqlTransaction).commitNow();
        (tx as SqlTransaction).defer(Prisma.sql`SELECT 1`);
      }),
    ).rejects.toThrow('statement issued after the end of its transaction');
    expect(await owner.store.findUnique({ where: { id } })).not.toBeNull();
    await owner.store.delete({ where: { id } });
  });

  describe('prepared statements (issue 19: planning cost PostgreSQL as much as running)', () => {
    const storeByName = (name: string) => Prisma.sql`SELECT "name" FROM "Store" WHERE "name" = ${name}`;

    it('parses a statement with parameters once per connection, and binds it afterwards', async () => {
      const writes = await socketWriteTexts(async () => {
        expect(await sut.querySql(tenantA, storeByName('A1'))).toEqual([{ name: 'A1' }]);
        expect(await sut.querySql(tenantA, storeByName('A2'))).toEqual([{ name: 'A2' }]);
        expect(await sut.querySql(tenantA, storeByName('B1'))).toEqual([]); // tenant B's row: RLS applies to the prepared statement alike
      });
      expect(writes.filter((w) => w.includes('FROM "Store" WHERE "name" = $1'))).toHaveLength(1);
      const prepared = await sut.querySql<{ statement: string }>(
        tenantA,
        Prisma.sql`SELECT "statement" FROM pg_prepared_statements WHERE "statement" LIKE ${'%"Store" WHERE "name"%'}`,
      );
      expect(prepared).toHaveLength(1);
    });

    it('prepares at most MAX_PREPARED_STATEMENTS per connection; statements beyond run unnamed', async () => {
      for (let i = 0; i < MAX_PREPARED_STATEMENTS + 20; i++) {
        // A different text each time (as a list of N rows would be).
        expect(await sut.querySql<{ n: number }>(tenantA, Prisma.sql`SELECT ${i}::int AS n ${Prisma.raw(`, ${i} AS "c${i}"`)}`)).toMatchObject([{ n: i }]);
      }
      const [{ count }] = await sut.querySql<{ count: bigint }>(tenantA, Prisma.sql`SELECT count(*) AS count FROM pg_prepared_statements WHERE ${1}::int = 1`);
      expect(Number(count)).toBe(MAX_PREPARED_STATEMENTS);
    });

    it("a statement that names its columns survives a migration that adds one (as the operation rows' do)", async () => {
      const db = Database.connect(testDb.appUrl, 1);
      try {
        const read = () => db.querySql(tenantA, Prisma.sql`SELECT ${storeColumns} FROM "Store" WHERE "id" = ${storeA}::uuid`);
        expect(await read()).toHaveLength(1);
        await owner.$executeRawUnsafe('ALTER TABLE "Store" ADD COLUMN "addedByMigration" int');
        expect(await read()).toHaveLength(1);
      } finally {
        await owner.$executeRawUnsafe('ALTER TABLE "Store" DROP COLUMN IF EXISTS "addedByMigration"');
        await db.close();
      }
    });

    it('a statement a migration made stale fails its one transaction, and the connection is replaced instead of failing every later one', async () => {
      const db = Database.connect(testDb.appUrl, 1);
      try {
        const readAll = () => db.querySql(tenantA, Prisma.sql`SELECT * FROM "Store" WHERE "id" = ${storeA}::uuid`);
        expect(await readAll()).toHaveLength(1);
        await owner.$executeRawUnsafe('ALTER TABLE "Store" ADD COLUMN "addedByMigration" int');
        await expect(readAll()).rejects.toThrow(/cached plan must not change result type/);
        expect(await readAll()).toEqual([expect.objectContaining({ id: storeA, addedByMigration: null })]);
        expect(await readAll()).toHaveLength(1);
      } finally {
        await owner.$executeRawUnsafe('ALTER TABLE "Store" DROP COLUMN IF EXISTS "addedByMigration"');
        await db.close();
      }
    });

    it('with preparedStatements off (a pooler that cannot keep them), prepares nothing', async () => {
      const db = Database.connect(testDb.appUrl, 1, { preparedStatements: false });
      try {
        expect(await db.querySql(tenantA, storeByName('A1'))).toEqual([{ name: 'A1' }]);
        expect(await db.querySql(tenantA, storeByName('A1'))).toEqual([{ name: 'A1' }]);
        expect(await db.findApiKeyByPrefix('nope')).toBeNull();
        const [{ count }] = await db.querySql<{ count: bigint }>(tenantA, Prisma.sql`SELECT count(*) AS count FROM pg_prepared_statements WHERE ${1}::int = 1`);
        expect(Number(count)).toBe(0);
      } finally {
        await db.close();
      }
    });
  });

  /**
   * Issue 19: a reconnect storm's set-ups come a few agents per tenant at a time, across many tenants: a transaction per
   * tenant cost each agent ~4 statements and a commit. withTenantsSql serves several tenants in one transaction, each
   * statement behind its own tenant's scope.
   */
  describe('withTenantsSql (several tenants in one transaction)', () => {
    it("runs each tenant's statements under that tenant's row-level security, however they interleave, in one transaction", async () => {
      const seen = committed.length;
      const writes = await socketWriteTexts(async () => {
        const [a1, b1, a2, updated] = await sut.withTenantsSql(async (tx) => {
          const a = tx.forTenant(tenantA);
          const b = tx.forTenant(tenantB);
          // Issued A, B, A in one tick (one write), then B after an await: four statements, three scope changes.
          const first = await Promise.all([
            a.$queryRaw<{ name: string; txid: string }[]>`SELECT "name", txid_current()::text AS txid FROM "Store" WHERE "name" IN ('A1', 'B1')`,
            b.$queryRaw<{ name: string; txid: string }[]>`SELECT "name", txid_current()::text AS txid FROM "Store" WHERE "name" IN ('A1', 'B1')`,
            a.$queryRaw<{ name: string; txid: string }[]>`SELECT "name", txid_current()::text AS txid FROM "Store" WHERE "name" IN ('A1', 'B1')`,
          ]);
          await publishEvent(a, tenantA, { type: 'terminal.updated', subjectType: 'terminal', subjectId: null, data: { multi: 'a' } });
          await publishEvent(b, tenantB, { type: 'terminal.updated', subjectType: 'terminal', subjectId: null, data: { multi: 'b' } });
          // After A's event, B's write goes out under B's scope again: it touches B's row only.
          const count = await b.$executeRaw`UPDATE "Store" SET "updatedAt" = now() WHERE "name" IN ('A1', 'B1')`;
          return [...first, count] as const;
        });
        expect(a1.map((r) => r.name)).toEqual(['A1']);
        expect(b1.map((r) => r.name)).toEqual(['B1']);
        expect(a2.map((r) => r.name)).toEqual(['A1']);
        expect(updated).toBe(1);
        expect(new Set([...a1, ...b1, ...a2].map((r) => r.txid)).size).toBe(1);
        await sut.eventsSettled();
      });
      expect(writes.filter((w) => w.includes('BEGIN'))).toHaveLength(1);
      expect(committed.slice(seen).map((e) => [e.tenantId, e.data])).toEqual([
        [tenantA, { multi: 'a' }],
        [tenantB, { multi: 'b' }],
      ]);
      const ids = committed.slice(seen).map((e) => e.id);
      expect(await owner.domainEvent.findMany({ where: { id: { in: ids }, seq: { not: null } }, select: { tenantId: true }, orderBy: { seq: 'asc' } })).toEqual(
        [{ tenantId: tenantA }, { tenantId: tenantB }],
      );
    });

    it('refuses a statement that names no tenant, and forTenant on a one-tenant transaction; a bad tenant id never reaches the database', async () => {
      await expect(sut.withTenantsSql((tx) => tx.$queryRaw`SELECT "name" FROM "Store"`)).rejects.toThrow(/names its tenant/);
      await expect(sut.withTenantsSql(async (tx) => tx.defer(Prisma.sql`SELECT 1`))).rejects.toThrow(/names its tenant/);
      await expect(sut.withTenantSql(tenantA, async (tx) => (tx as SqlTransaction).forTenant(tenantB))).rejects.toThrow(/one tenant/);
      await expect(sut.withTenantsSql(async (tx) => tx.forTenant("x' OR true --"))).rejects.toThrow(/UUID/);
      // The connection is clean for the next caller.
      expect(await storeNames(tenantB)).toEqual(['B1']);
    });

    it('SharedTenantTransactions: calls of one turn share a transaction and one `around`; after a shared failure each runs alone', async () => {
      let arounds = 0;
      const shared = new SharedTenantTransactions(sut, (fn) => {
        arounds += 1;
        return fn();
      });
      const read = (tenantId: string) =>
        shared.run(
          tenantId,
          (tx) => tx.$queryRaw<{ name: string; txid: string }[]>`SELECT "name", txid_current()::text AS txid FROM "Store" WHERE "name" IN ('A1', 'B1')`,
        );
      const [a, b] = await Promise.all([read(tenantA), read(tenantB)]);
      expect(arounds).toBe(1);
      expect([a.map((r) => r.name), b.map((r) => r.name)]).toEqual([['A1'], ['B1']]);
      expect(a[0]!.txid).toBe(b[0]!.txid);

      // Tenant B's statement is refused: A's work is done again alone and commits; B's call fails with its own error.
      const [good, bad] = await Promise.allSettled([
        shared.run(tenantA, (tx) => tx.$executeRaw`UPDATE "Store" SET "name" = 'A1-shared' WHERE "name" = 'A1'`),
        shared.run(
          tenantB,
          (tx) =>
            tx.$executeRaw`INSERT INTO "Store" ("id", "tenantId", "name", "timeZone", "createdAt", "updatedAt") VALUES (${randomUUID()}::uuid, ${tenantA}::uuid, 'x', 'UTC', now(), now())`,
        ),
      ]);
      expect(good).toEqual({ status: 'fulfilled', value: 1 });
      expect(bad).toMatchObject({ status: 'rejected', reason: expect.objectContaining({ message: expect.stringMatching(/row-level security/) }) });
      expect(await storeNames(tenantA)).toContain('A1-shared');
      await sut.withTenantSql(tenantA, (tx) => tx.$executeRaw`UPDATE "Store" SET "name" = 'A1' WHERE "name" = 'A1-shared'`);
    });

    it("rolls back every tenant's writes when one tenant's statement fails", async () => {
      await expect(
        sut.withTenantsSql(async (tx) => {
          await tx.forTenant(tenantB).$executeRaw`UPDATE "Store" SET "name" = 'B1-renamed' WHERE "name" = 'B1'`;
          await tx.forTenant(tenantA)
            .$executeRaw`INSERT INTO "Store" ("id", "tenantId", "name", "timeZone", "createdAt", "updatedAt") VALUES (${randomUUID()}::uuid, ${tenantB}::uuid, 'x', 'UTC', now(), now())`;
        }),
      ).rejects.toThrow(/row-level security/);
      expect(await storeNames(tenantB)).toEqual(['B1']);
    });
  });

  it('refuses a tenant id that is not a UUID before touching the database', async () => {
    await expect(sut.withTenantSql("x' OR true --", async () => 1)).rejects.toMatchObject({ code: 'TENANT_INVALID' });
  });

  /**
   * Issue 19: each commit with events paid a payorch_sequence_events transaction of its own (~3 per payment: an UPDATE
   * of its events and a WAL flush under the sequencer's lock), even when commits overlapped. A commit made while another
   * open transaction of the process has written events now leaves the numbering to that one's COMMIT, for at most
   * `sequenceDeferMs`.
   */
  it('survives its connection ending between two statements of a transaction: the transaction fails, the process does not, the pool heals', async () => {
    const db = Database.connect(testDb.appUrl, 1);
    try {
      await expect(
        db.withTenantSql(tenantA, async (tx) => {
          const [{ pid }] = await tx.$queryRaw<[{ pid: number }]>`SELECT pg_backend_pid() AS pid`;
          // PostgreSQL restarted, or the backend was ended: its FATAL message reaches a connection with no statement in
          // flight, which pg reports as an 'error' event; pg-pool listens to it only on idle connections.
          await owner.$queryRaw`SELECT pg_terminate_backend(${pid}::int)`;
          await waitFor(async () => (await owner.$queryRaw<{ n: bigint }[]>`SELECT count(*) AS n FROM pg_stat_activity WHERE pid = ${pid}::int`)[0]!.n === 0n, {
            what: 'the backend gone',
          });
          await new Promise((resolve) => setImmediate(resolve));
          return tx.$queryRaw`SELECT 1`;
        }),
      ).rejects.toThrow();
      expect(await db.querySql(tenantA, Prisma.sql`SELECT 1 AS one`)).toEqual([{ one: 1 }]);
    } finally {
      await db.close();
    }
  });

  describe('commits that overlap share one sequencer call', () => {
    const event = (tx: Parameters<Parameters<Database['withTenantSql']>[1]>[0], n: number) =>
      publishEvent(tx, tenantA, { type: 'terminal.updated', subjectType: 'terminal', subjectId: null, data: { n } });

    /** A transaction that writes an event and stays open until released (or fails when told). */
    function held(db: Database, n: number) {
      let release!: (fail?: Error) => void;
      const gate = new Promise<Error | undefined>((resolve) => (release = resolve));
      let written = false;
      const done = db.withTenantSql(tenantA, async (tx) => {
        const published = await event(tx, n);
        written = true;
        const failure = await gate;
        if (failure) throw failure;
        return published;
      });
      return { done, release, written: () => written };
    }

    async function harness(sequenceDeferMs: number, run: (db: Database, batches: PublishedEvent[][]) => Promise<void>) {
      const batches: PublishedEvent[][] = [];
      const db = Database.connect(testDb.appUrl, 3, { onCommitted: (events) => batches.push([...events]), sequenceDeferMs });
      try {
        await run(db, batches);
      } finally {
        await db.close();
      }
    }
    const seqs = async (events: PublishedEvent[]) =>
      (await owner.domainEvent.findMany({ where: { id: { in: events.map((e) => e.id) } }, select: { id: true, seq: true } })).map((r) => [r.id, r.seq]);

    it('the second COMMIT numbers both: one sequencer call, both batches handed over numbered, in commit order', async () => {
      await harness(60_000, async (db, batches) => {
        let second!: ReturnType<typeof held>;
        let first!: PublishedEvent;
        const writes = await socketWriteTexts(async () => {
          second = held(db, 2);
          await waitFor(() => second.written(), { what: 'the second transaction wrote its event' });
          first = await db.withTenantSql(tenantA, (tx) => event(tx, 1));
          // Committed; its events wait for the open transaction's COMMIT.
          expect(batches).toEqual([]);
          second.release();
          await second.done;
          await waitFor(() => batches.length === 2, { what: 'both batches handed over' });
        });
        expect(writes.filter((w) => w.includes('payorch_sequence_events'))).toHaveLength(1);
        const secondEvent = await second.done;
        expect(batches.map((b) => b.map((e) => e.id))).toEqual([[first.id], [secondEvent.id]]);
        const numbered = new Map((await seqs([first, secondEvent])) as [string, bigint | null][]);
        // Numbered by the one call (consecutive numbers; within a call, in the events' (createdAt, id) order).
        const both = [numbered.get(first.id)!, numbered.get(secondEvent.id)!].map(Number).sort((a, b) => a - b);
        expect(both[1]! - both[0]!).toBe(1);
      });
    });

    it('waits at most sequenceDeferMs for a transaction that stays open', async () => {
      await harness(50, async (db, batches) => {
        const second = held(db, 3);
        await waitFor(() => second.written(), { what: 'the second transaction wrote its event' });
        const first = await db.withTenantSql(tenantA, (tx) => event(tx, 4));
        await waitFor(() => batches.length === 1, { what: 'the first batch handed over while the other transaction is open' });
        expect(batches[0]!.map((e) => e.id)).toEqual([first.id]);
        expect((await seqs([first]))[0]![1]).not.toBeNull();
        second.release();
        await second.done;
        await db.eventsSettled();
        expect(batches).toHaveLength(2);
      });
    });

    /**
     * A lock held by the test's own connection, and a way to see a transaction of the app wait for it (the review of
     * the deferral: a COMMIT carrying the sequencer's call stays on its way while its last statement waits for a lock).
     */
    async function heldLock(sql: string) {
      const holder = new pg.Client({ connectionString: testDb.adminUrl });
      holder.on('error', () => undefined); // dropped with the test database if a test fails with it open
      await holder.connect();
      await holder.query('BEGIN');
      await holder.query(sql);
      return {
        /** A backend of the app role waits for a lock, running a statement that matches `running`. */
        waiting: async (running: string) => {
          // Statistics views keep one snapshot per transaction, and the holder is in one.
          await holder.query('SELECT pg_stat_clear_snapshot()');
          const { rows } = await holder.query<{ pid: number }>(
            `SELECT pid FROM pg_stat_activity WHERE usename <> current_user AND wait_event_type = 'Lock' AND query LIKE $1`,
            [`%${running}%`],
          );
          return rows[0]?.pid;
        },
        terminate: (pid: number) => holder.query('SELECT pg_terminate_backend($1::int)', [pid]),
        release: async () => {
          await holder.query('COMMIT');
          await holder.end();
        },
      };
    }

    /** A transaction that may write an event (expectEvents), whose one UPDATE waits for `Store` A's row lock: its COMMIT, written with it, carries the call. */
    const carrier = (db: Database) =>
      db.withTenantSql(
        tenantA,
        (tx) => {
          expectEvents(tx);
          return tx.$executeRaw`UPDATE "Store" SET "name" = "name" WHERE "id" = ${storeA}::uuid`;
        },
        { pipelineCommit: true },
      );

    it('numbers a waiting batch when the COMMIT that carried the call ends without events after the bound passed, while another transaction stays open', async () => {
      await harness(1, async (db, batches) => {
        const lock = await heldLock(`SELECT 1 FROM "Store" WHERE "id" = '${storeA}' FOR UPDATE`);
        const x = carrier(db);
        await waitFor(() => lock.waiting('UPDATE "Store"'), { what: "the carrier's UPDATE waits for the lock" });
        const z = held(db, 9);
        await waitFor(() => z.written(), { what: 'another open transaction wrote its event' });
        const y = await db.withTenantSql(tenantA, (tx) => event(tx, 10));
        // Its wait's bound (1 ms) passes while the carried call is on its way: a timer of the same delay, set after the
        // deferral's, fires after it (timers of equal delay fire in the order they were set).
        await new Promise((resolve) => setTimeout(resolve, 1));
        await lock.release();
        await x;
        // Before the review's fix, the batch waited for the open transaction's end.
        await waitFor(() => batches.some((b) => b.some((e) => e.id === y.id)), {
          what: 'the waiting batch handed over while the other transaction is open',
          timeoutMs: 3_000,
        });
        expect((await seqs([y]))[0]![1]).not.toBeNull();
        z.release();
        await z.done;
      });
    });

    it('eventsSettled waits for a batch left to a COMMIT that carries the call', async () => {
      await harness(60_000, async (db, batches) => {
        const lock = await heldLock(`SELECT 1 FROM "Store" WHERE "id" = '${storeA}' FOR UPDATE`);
        const x = carrier(db);
        await waitFor(() => lock.waiting('UPDATE "Store"'), { what: "the carrier's UPDATE waits for the lock" });
        const y = await db.withTenantSql(tenantA, (tx) => event(tx, 11));
        let settled = false;
        const settling = db.eventsSettled().then(() => (settled = true));
        await new Promise((resolve) => setImmediate(resolve));
        // Before the review's fix it had returned here, with the batch neither numbered nor handed over (close() then
        // ended the pool under the run).
        expect(settled).toBe(false);
        await lock.release();
        await x;
        await settling;
        expect(batches.flat().map((e) => e.id)).toContain(y.id);
        expect((await seqs([y]))[0]![1]).not.toBeNull();
      });
    });

    it('numbers the batch with a call of its own when the call carried with its COMMIT failed', async () => {
      await harness(60_000, async (db, batches) => {
        const lock = await heldLock(`SELECT pg_advisory_xact_lock(hashtext('payorch_sequence_events'))`);
        const y = await db.withTenantSql(tenantA, (tx) => event(tx, 12));
        // The carried call waits for the sequencer's lock; its connection ends (PostgreSQL restarted, killed).
        const pid = await waitFor(() => lock.waiting('payorch_sequence_events'), { what: 'the carried call waits for the sequencer lock' });
        await lock.terminate(pid);
        await lock.release();
        await db.eventsSettled();
        expect(batches.flat().map((e) => e.id)).toContain(y.id);
        // Before the review's fix the batch was handed over unnumbered.
        expect((await seqs([y]))[0]![1]).not.toBeNull();
      });
    });

    it('hands over the events of a transaction that committed although its caller failed after COMMIT was written', async () => {
      await harness(60_000, async (db, batches) => {
        let published: PublishedEvent | undefined;
        await expect(
          db.withTenantSql(
            tenantA,
            async (tx) => {
              published = await event(tx, 13);
              throw new Error('failed after its statements');
            },
            { pipelineCommit: true },
          ),
        ).rejects.toThrow('failed after its statements');
        await db.eventsSettled();
        // Committed (its statement succeeded and COMMIT was on its way): before the review's fix, never handed over.
        expect((await seqs([published!]))[0]![1]).not.toBeNull();
        expect(batches.flat().map((e) => e.id)).toContain(published!.id);
      });
    });

    it('numbers the waiting events when the other transaction rolls back, and when eventsSettled is asked', async () => {
      await harness(60_000, async (db, batches) => {
        const failing = held(db, 5);
        await waitFor(() => failing.written(), { what: 'the other transaction wrote its event' });
        const first = await db.withTenantSql(tenantA, (tx) => event(tx, 6));
        failing.release(new Error('rolled back'));
        await expect(failing.done).rejects.toThrow('rolled back');
        await waitFor(() => batches.length === 1, { what: 'the waiting batch handed over after the rollback' });
        expect(batches[0]!.map((e) => e.id)).toEqual([first.id]);
        expect((await seqs([first]))[0]![1]).not.toBeNull();

        const open = held(db, 7);
        await waitFor(() => open.written(), { what: 'another open transaction wrote its event' });
        const next = await db.withTenantSql(tenantA, (tx) => event(tx, 8));
        await db.eventsSettled();
        expect(batches.at(-1)!.map((e) => e.id)).toEqual([next.id]);
        expect((await seqs([next]))[0]![1]).not.toBeNull();
        open.release();
        await open.done;
      });
    });
  });
});
