import { type ChildProcess, spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';

import { Client } from 'pg';

import { REPO_ROOT, testAdminUrl, waitFor } from '@payorch/testing';

/**
 * Index builds on tables that hold rows run online (docs/runbooks/database.md, "Indexes"): `create` writes each as a
 * migration of its own, `CREATE INDEX CONCURRENTLY IF NOT EXISTS`, and the offline runner (the deployment's migration
 * step) builds it while the table's writes go on, cleans up after a failed build, and lets two runs started at once
 * (two replicas of the migration Job) wait for each other without deadlocking; a run killed half-way leaves nothing
 * half-applied, and the next deploy applies its migration again; a migration waiting for a busy table gives the
 * lock queue back every MIGRATION_LOCK_TIMEOUT_MS.
 */
const RUNNER = path.join(REPO_ROOT, 'scripts/prisma-offline-migrate.mjs');
const LOCK_ID = 72707369;

interface Run {
  child: ChildProcess;
  output: () => string;
  exit: Promise<number | null>;
}

function runner(args: string[], env: Record<string, string>, cwd?: string): Run {
  const child = spawn(process.execPath, [RUNNER, ...args], { cwd, env: { ...process.env, ...env }, stdio: ['ignore', 'pipe', 'pipe'] });
  let output = '';
  child.stdout!.on('data', (chunk: Buffer) => (output += chunk.toString()));
  child.stderr!.on('data', (chunk: Buffer) => (output += chunk.toString()));
  const exit = new Promise<number | null>((resolve) => child.on('exit', (code) => resolve(code)));
  return { child, output: () => output, exit };
}

/** One migration folder per entry, in order. */
function migrationsDir(migrations: Record<string, string>): string {
  const dir = mkdtempSync(path.join(tmpdir(), 'payorch-online-index-'));
  for (const [name, sql] of Object.entries(migrations)) {
    mkdirSync(path.join(dir, name));
    writeFileSync(path.join(dir, name, 'migration.sql'), sql);
  }
  return dir;
}

async function indexValidity(client: Client, name: string): Promise<'valid' | 'invalid' | 'absent'> {
  const { rows } = await client.query<{ valid: boolean }>(
    `SELECT i.indisvalid AS valid FROM pg_index i JOIN pg_class x ON x.oid = i.indexrelid WHERE x.relname = $1`,
    [name],
  );
  return rows.length === 0 ? 'absent' : rows[0]!.valid ? 'valid' : 'invalid';
}

/**
 * A database of the test's own holding a "Thing" table of `rows` rows, the migration folders made for it and the
 * sessions opened on it; `drop()` ends and removes them all.
 */
class Scratch {
  readonly name = `payorch_migrate_${process.pid}_${randomBytes(3).toString('hex')}`;
  readonly url: string;
  readonly owner: Client;
  private readonly admin = new Client({ connectionString: testAdminUrl() });
  private readonly sessions: Client[] = [];
  private readonly dirs: string[] = [];

  private constructor() {
    const url = new URL(testAdminUrl());
    url.pathname = `/${this.name}`;
    this.url = url.toString();
    this.owner = new Client({ connectionString: this.url });
  }

  static async create(rows: number): Promise<Scratch> {
    const scratch = new Scratch();
    await scratch.admin.connect();
    await scratch.admin.query(`CREATE DATABASE "${scratch.name}"`);
    await scratch.owner.connect();
    await scratch.owner.query(
      `CREATE TABLE "Thing" ("id" int PRIMARY KEY, "name" text NOT NULL); INSERT INTO "Thing" SELECT g, 'n' || g FROM generate_series(1, ${rows}) g`,
    );
    return scratch;
  }

  async session(): Promise<Client> {
    const client = new Client({ connectionString: this.url });
    await client.connect();
    this.sessions.push(client);
    return client;
  }

  /** The runner against this database and `dir`'s migrations. */
  run(args: string[], dir: string, env: Record<string, string> = {}): Run {
    return runner(args, { DATABASE_URL: this.url, PRISMA_MIGRATIONS_DIR: dir, ...env });
  }

  migrations(migrations: Record<string, string>): string {
    const dir = migrationsDir(migrations);
    this.dirs.push(dir);
    return dir;
  }

  async drop(): Promise<void> {
    for (const client of this.sessions.splice(0)) await client.end().catch(() => undefined);
    await this.owner.end();
    await this.admin.query(`DROP DATABASE IF EXISTS "${this.name}" WITH (FORCE)`);
    await this.admin.end();
    for (const dir of this.dirs.splice(0)) rmSync(dir, { recursive: true, force: true });
  }
}

const ONLINE_INDEX = 'CREATE INDEX CONCURRENTLY IF NOT EXISTS "Thing_name_idx" ON "Thing"("name");\n';
const ONLINE_UNIQUE_INDEX = 'CREATE UNIQUE INDEX CONCURRENTLY IF NOT EXISTS "Thing_name_key" ON "Thing"("name");\n';

describe('online index builds (prisma-offline-migrate)', () => {
  let db: Scratch;
  let owner: Client;

  const deploy = (dir: string) => db.run(['deploy'], dir);
  const indexState = (name: string) => indexValidity(owner, name);
  /** The session of a run building an index, once it waits for a lock (a transaction that wrote to the table). */
  const buildWaiting = () =>
    waitFor(
      async () =>
        (
          await owner.query<{ pid: number }>(
            `SELECT pid FROM pg_stat_activity WHERE datname = $1 AND state = 'active' AND wait_event_type = 'Lock' AND query ILIKE 'CREATE%INDEX CONCURRENTLY%'`,
            [db.name],
          )
        ).rows[0]?.pid,
      { what: 'the index build waiting for the open transaction', timeoutMs: 20_000 },
    );

  beforeEach(async () => {
    db = await Scratch.create(20_000);
    owner = db.owner;
  });

  afterEach(() => db.drop());

  it('builds the index while the table takes writes', async () => {
    const dir = db.migrations({ '20300101000000_thing_names': ONLINE_INDEX });
    // A transaction that wrote to the table is open: the build waits for it (as any index build would).
    const open = await db.session();
    await open.query(`BEGIN; INSERT INTO "Thing" VALUES (100001, 'open')`);
    const run = deploy(dir);
    await buildWaiting();
    // A plain CREATE INDEX would hold its write lock queued here and every insert would wait behind it.
    const writer = await db.session();
    await writer.query(`INSERT INTO "Thing" VALUES (100002, 'during the build')`);
    expect(await buildWaiting()).toEqual(expect.any(Number));
    await open.query('COMMIT');
    expect(await run.exit).toBe(0);
    expect(await indexState('Thing_name_idx')).toBe('valid');
    expect(run.output()).toContain('Applied 20300101000000_thing_names');
  });

  it("builds a transactional migration's IF NOT EXISTS index on a table with rows online first (the migrations written before online builds)", async () => {
    const dir = db.migrations({
      '20300101000000_added_others':
        'CREATE TABLE "Other" ("id" int);\n-- Build it CONCURRENTLY by hand first on a large table.\nCREATE INDEX IF NOT EXISTS "Thing_name_idx" ON "Thing"("name");\n',
    });
    const open = await db.session();
    await open.query(`BEGIN; INSERT INTO "Thing" VALUES (100001, 'open')`);
    // A minute of lock wait: before, the migration's plain CREATE INDEX queued for the table and held this INSERT behind it.
    const run = db.run(['deploy'], dir, { MIGRATION_LOCK_TIMEOUT_MS: '60000' });
    await buildWaiting();
    const writer = await db.session();
    await writer.query(`INSERT INTO "Thing" VALUES (100002, 'during the build')`);
    await open.query('COMMIT');
    expect(await run.exit).toBe(0);
    expect(run.output()).toContain("Built Thing_name_idx online for 20300101000000_added_others (its table holds rows): the migration's statement finds it.");
    expect(await indexState('Thing_name_idx')).toBe('valid');
    expect((await owner.query(`SELECT to_regclass('"Other"') IS NOT NULL AS "created"`)).rows[0]).toEqual({ created: true });
  });

  it('leaves an index on an empty table, or one the migration cannot have built online, to the migration', async () => {
    await owner.query(`CREATE TABLE "Empty" ("id" int)`);
    const dir = db.migrations({
      '20300101000000_added_kinds':
        'CREATE INDEX IF NOT EXISTS "Empty_id_idx" ON "Empty"("id");\nALTER TABLE "Thing" ADD COLUMN "kind" text;\nCREATE INDEX IF NOT EXISTS "Thing_kind_idx" ON "Thing"("kind");\n',
    });
    const run = db.run(['deploy'], dir);
    expect(await run.exit).toBe(0);
    expect(run.output()).not.toContain('Built Empty_id_idx');
    expect(run.output()).toContain(
      'Could not build Thing_kind_idx online for 20300101000000_added_kinds (column "kind" does not exist): the migration builds it.',
    );
    expect([await indexState('Empty_id_idx'), await indexState('Thing_kind_idx')]).toEqual(['valid', 'valid']);
  });

  it('leaves no invalid index behind a failed build, and builds it once the migration is resolved and run again', async () => {
    // Two rows share a name: the unique index cannot be built.
    await owner.query(`UPDATE "Thing" SET "name" = 'n1' WHERE "id" = 2`);
    const dir = db.migrations({ '20300101000000_unique_thing_names': ONLINE_UNIQUE_INDEX });
    const failed = deploy(dir);
    expect(await failed.exit).toBe(1);
    expect(failed.output()).toMatch(/Migration 20300101000000_unique_thing_names failed: could not create unique index/);
    // Left behind, the invalid index would be written on every insert and taken by IF NOT EXISTS for the finished one.
    expect(await indexState('Thing_name_key')).toBe('absent');

    await owner.query(`UPDATE "Thing" SET "name" = 'n2' WHERE "id" = 2`);
    const resolved = db.run(['resolve', '--rolled-back', '20300101000000_unique_thing_names'], dir);
    expect(await resolved.exit).toBe(0);
    const again = deploy(dir);
    expect(await again.exit).toBe(0);
    expect(await indexState('Thing_name_key')).toBe('valid');
  });

  it('drops an invalid index a build killed half-way left, and builds it again', async () => {
    // What a migration Job killed during its build leaves: the index exists, invalid (here: a build that failed by hand).
    await owner.query(`UPDATE "Thing" SET "name" = 'n1' WHERE "id" = 2`);
    await owner.query(ONLINE_UNIQUE_INDEX).catch(() => undefined);
    expect(await indexState('Thing_name_key')).toBe('invalid');
    await owner.query(`UPDATE "Thing" SET "name" = 'n2' WHERE "id" = 2`);
    const dir = db.migrations({ '20300101000000_unique_thing_names': ONLINE_UNIQUE_INDEX });
    const run = deploy(dir);
    expect(await run.exit).toBe(0);
    expect(run.output()).toContain('Dropped the invalid index Thing_name_key');
    expect(await indexState('Thing_name_key')).toBe('valid');
  });

  it('lets a second run started during a build wait for it, without a deadlock', async () => {
    const dir = db.migrations({ '20300101000000_thing_names': ONLINE_INDEX });
    const open = await db.session();
    await open.query(`BEGIN; INSERT INTO "Thing" VALUES (100001, 'open')`);
    const first = deploy(dir);
    const builder = await buildWaiting();
    const second = deploy(dir);
    // The second run has asked for the migration lock the first one holds.
    await waitFor(
      async () =>
        (
          await owner.query(
            `SELECT 1 FROM pg_stat_activity WHERE datname = $1 AND pid NOT IN ($2, pg_backend_pid()) AND query LIKE '%advisory_lock(${LOCK_ID})%'`,
            [db.name, builder],
          )
        ).rowCount,
      { what: 'the second run asking for the migration lock' },
    );
    // The build goes on: it now waits for every older snapshot of the database, which a run waiting inside a statement
    // for the lock held, while that statement waited for the build's run to let go of the lock (40P01).
    await open.query('COMMIT');
    const [firstExit, secondExit] = await Promise.all([first.exit, second.exit]);
    expect({ first: firstExit, second: secondExit, output: second.output() }).toEqual({
      first: 0,
      second: 0,
      output: expect.stringContaining('No pending migrations to apply.'),
    });
    expect(await indexState('Thing_name_idx')).toBe('valid');
  });
});

describe('a migration run that stopped half-way (killed, its node drained)', () => {
  let db: Scratch;
  let owner: Client;

  beforeEach(async () => {
    db = await Scratch.create(1000);
    owner = db.owner;
  });

  afterEach(() => db.drop());

  /**
   * Starts a deploy, waits until its statement `matching` waits for a lock the test holds, then kills the run (-9) and
   * ends its session, as a pod killed mid-migration whose connection PostgreSQL then drops.
   */
  async function killedWhileWaiting(dir: string, matching: string): Promise<void> {
    const run = db.run(['deploy'], dir);
    const pid = await waitFor(
      async () =>
        (
          await owner.query<{ pid: number }>(
            `SELECT pid FROM pg_stat_activity WHERE datname = $1 AND state = 'active' AND wait_event_type = 'Lock' AND query LIKE $2`,
            [db.name, `%${matching}%`],
          )
        ).rows[0]?.pid,
      { what: `the run's statement waiting (${matching})`, timeoutMs: 20_000 },
    );
    run.child.kill('SIGKILL');
    await run.exit;
    await owner.query('SELECT pg_terminate_backend($1)', [pid]);
    await waitFor(async () => (await owner.query('SELECT 1 FROM pg_stat_activity WHERE pid = $1', [pid])).rowCount === 0, { what: 'its session ended' });
  }
  const records = async (name: string) =>
    (
      await owner.query<{ finished: boolean; rolledBack: boolean }>(
        `SELECT finished_at IS NOT NULL AS finished, rolled_back_at IS NOT NULL AS "rolledBack" FROM "_prisma_migrations" WHERE migration_name = $1 ORDER BY started_at`,
        [name],
      )
    ).rows;

  it('is applied again by the next deploy: it took no effect, and it takes effect once', async () => {
    const dir = db.migrations({
      '20300101000000_added_markers': 'CREATE TABLE "Marker" ("id" int);\nINSERT INTO "Marker" VALUES (1);\nSELECT count(*) FROM "Thing";\n',
    });
    const holder = await db.session();
    await holder.query(`BEGIN; LOCK TABLE "Thing" IN ACCESS EXCLUSIVE MODE`);
    await killedWhileWaiting(dir, '"Marker"');
    await holder.query('ROLLBACK');
    const status = db.run(['status'], dir);
    expect(await status.exit).toBe(1);
    expect(status.output()).toContain('interrupted: 20300101000000_added_markers (a run stopped while applying it');

    // Before: P3009 ("failed migrations in the target database") on every deploy until someone ran `resolve`.
    const again = db.run(['deploy'], dir);
    expect(await again.exit).toBe(0);
    expect(again.output()).toContain('Applying 20300101000000_added_markers again: the run that started it at');
    expect((await owner.query('SELECT count(*)::int AS n FROM "Marker"')).rows[0]).toEqual({ n: 1 });
    expect(await records('20300101000000_added_markers')).toEqual([
      { finished: false, rolledBack: true },
      { finished: true, rolledBack: false },
    ]);
  });

  it('builds an online index again: the killed build left it invalid', async () => {
    const dir = db.migrations({ '20300101000000_thing_names': ONLINE_INDEX });
    const writer = await db.session();
    await writer.query(`BEGIN; INSERT INTO "Thing" VALUES (100001, 'open')`);
    await killedWhileWaiting(dir, 'INDEX CONCURRENTLY');
    await writer.query('ROLLBACK');
    expect(await indexValidity(owner, 'Thing_name_idx')).toBe('invalid');
    const again = db.run(['deploy'], dir);
    expect(await again.exit).toBe(0);
    expect(again.output()).toContain('Dropped the invalid index Thing_name_idx');
    expect(await indexValidity(owner, 'Thing_name_idx')).toBe('valid');
    expect(await records('20300101000000_thing_names')).toEqual([
      { finished: false, rolledBack: true },
      { finished: true, rolledBack: false },
    ]);
  });

  it('a migration that failed with an error still waits for a person (P3009): applying it again would fail again', async () => {
    const dir = db.migrations({ '20300101000000_broken': 'CREATE TABLE "Marker" ("id" int);\nSELECT 1 / 0;\n' });
    const failed = db.run(['deploy'], dir);
    expect(await failed.exit).toBe(1);
    const again = db.run(['deploy'], dir);
    expect(await again.exit).toBe(1);
    expect(again.output()).toContain('P3009: failed migrations in the target database: 20300101000000_broken');
    expect((await owner.query(`SELECT to_regclass('"Marker"') AS marker`)).rows[0]).toEqual({ marker: null });
  });
});

describe('a migration waiting for a busy table', () => {
  let db: Scratch;

  beforeEach(async () => {
    db = await Scratch.create(1000);
  });

  afterEach(() => db.drop());

  /** A long transaction of the services: it holds the table (ACCESS SHARE) until the test commits it. */
  async function longReader(): Promise<Client> {
    const reader = await db.session();
    await reader.query('BEGIN; SELECT count(*) FROM "Thing"');
    return reader;
  }
  const alterWaiting = () =>
    waitFor(
      async () =>
        (
          await db.owner.query(`SELECT 1 FROM pg_stat_activity WHERE datname = $1 AND wait_event_type = 'Lock' AND query LIKE '%ALTER TABLE "Thing"%'`, [
            db.name,
          ])
        ).rowCount,
      { what: "the migration's ALTER TABLE queued for the table's lock", timeoutMs: 20_000 },
    );
  const hasKind = async () =>
    (await db.owner.query(`SELECT 1 FROM information_schema.columns WHERE table_name = 'Thing' AND column_name = 'kind'`)).rowCount === 1;

  it("gives the lock queue back every MIGRATION_LOCK_TIMEOUT_MS: the services' writes get through, and the migration applies once the table is free", async () => {
    const dir = db.migrations({ '20300101000000_added_thing_kinds': 'ALTER TABLE "Thing" ADD COLUMN "kind" text;\n' });
    const reader = await longReader();
    const run = db.run(['deploy'], dir, { MIGRATION_LOCK_TIMEOUT_MS: '200' });
    await alterWaiting();
    // A write of the services behind the queued ALTER TABLE: before, it waited as long as the long transaction lasted.
    const writer = await db.session();
    let written = false;
    const write = writer.query(`INSERT INTO "Thing" VALUES (100001, 'meanwhile')`).then(() => (written = true));
    await waitFor(() => written, { what: 'the INSERT done while the long transaction is still open' });
    await write;
    expect(await hasKind()).toBe(false);
    await reader.query('COMMIT');
    expect(await run.exit).toBe(0);
    expect(run.output()).toMatch(/Migration 20300101000000_added_thing_kinds waited 200 ms for a lock and was rolled back \(attempt 1 of 20\)/);
    expect(await hasKind()).toBe(true);
  });

  it('stops after MIGRATION_LOCK_ATTEMPTS without a failed record: nothing was applied, the next deploy applies it', async () => {
    const dir = db.migrations({ '20300101000000_added_thing_kinds': 'ALTER TABLE "Thing" ADD COLUMN "kind" text;\n' });
    const reader = await longReader();
    const gaveUp = db.run(['deploy'], dir, { MIGRATION_LOCK_TIMEOUT_MS: '100', MIGRATION_LOCK_ATTEMPTS: '2' });
    expect(await gaveUp.exit).toBe(1);
    expect(gaveUp.output()).toContain(
      'Migration 20300101000000_added_thing_kinds not applied: it waited 100 ms for a lock 2 times (a long transaction holds its table); nothing was applied, deploy again',
    );
    await reader.query('COMMIT');
    const again = db.run(['deploy'], dir);
    expect(await again.exit).toBe(0);
    expect(await hasKind()).toBe(true);
  });

  it('refuses a lock timeout that is not a positive integer', async () => {
    const dir = db.migrations({});
    const run = db.run(['deploy'], dir, { MIGRATION_LOCK_TIMEOUT_MS: '5s' });
    expect(await run.exit).toBe(2);
    expect(run.output()).toContain('MIGRATION_LOCK_TIMEOUT_MS must be a positive integer, got "5s"');
  });
});

describe('create: indexes on existing tables become online builds of their own', () => {
  it('moves each CREATE INDEX on a table the migration does not create into its own CONCURRENTLY migration', async () => {
    const dir = mkdtempSync(path.join(tmpdir(), 'payorch-online-create-'));
    try {
      const schema = path.join(dir, 'schema.prisma');
      const env = { PRISMA_SCHEMA: schema, PRISMA_MIGRATIONS_DIR: path.join(dir, 'migrations') };
      const model = (extra: string) =>
        `datasource db {\n  provider = "postgresql"\n}\n\nmodel Thing {\n  id   Int    @id\n  name String\n  kind String\n${extra}}\n`;
      writeFileSync(schema, model(''));
      const first = runner(['create', '--name', 'added_things'], env);
      expect(await first.exit).toBe(0);
      writeFileSync(schema, `${model('  @@index([name])\n  @@unique([kind, name])\n')}\nmodel Other {\n  id Int @id\n  n  Int\n  @@index([n])\n}\n`);
      const second = runner(['create', '--name', 'added_thing_indexes'], env);
      expect(await second.exit).toBe(0);

      const created = readdirSync(env.PRISMA_MIGRATIONS_DIR)
        .filter((name) => /^\d{14}_/.test(name))
        .sort()
        .map((name) => ({ name: name.replace(/^\d{14}_/, ''), sql: readFileSync(path.join(env.PRISMA_MIGRATIONS_DIR, name, 'migration.sql'), 'utf8') }));
      expect(created.map(({ name }) => name)).toEqual(['added_things', 'added_thing_indexes', 'added_thing_indexes_1', 'added_thing_indexes_2']);
      // The new table and its index stay together (an empty table's index builds at once).
      expect(created[1]!.sql).toContain('CREATE TABLE "Other"');
      expect(created[1]!.sql).toContain('CREATE INDEX "Other_n_idx" ON "Other"("n");');
      expect(created[1]!.sql).not.toContain('"Thing');
      expect(created[2]!.sql).toContain('CREATE INDEX CONCURRENTLY IF NOT EXISTS "Thing_name_idx" ON "Thing"("name");');
      expect(created[3]!.sql).toContain('CREATE UNIQUE INDEX CONCURRENTLY IF NOT EXISTS "Thing_kind_name_key" ON "Thing"("kind", "name");');
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it("names the new migration in libs/db's SCHEMA_MIGRATION when it writes this repository's own migrations folder", async () => {
    const repo = mkdtempSync(path.join(tmpdir(), 'payorch-schema-version-'));
    try {
      mkdirSync(path.join(repo, 'prisma'));
      writeFileSync(path.join(repo, 'prisma/schema.prisma'), 'datasource db {\n  provider = "postgresql"\n}\n\nmodel Thing {\n  id Int @id\n}\n');
      mkdirSync(path.join(repo, 'libs/db/src'), { recursive: true });
      const version = path.join(repo, 'libs/db/src/schema-version.ts');
      writeFileSync(version, "/** The newest migration. */\nexport const SCHEMA_MIGRATION = '20000101000000_before';\n");
      const created = runner(['create', '--name', 'added_things'], {}, repo);
      expect(await created.exit).toBe(0);
      const [folder] = readdirSync(path.join(repo, 'prisma/migrations')).filter((name) => /^\d{14}_added_things$/.test(name));
      expect(readFileSync(version, 'utf8')).toBe(`/** The newest migration. */\nexport const SCHEMA_MIGRATION = '${folder}';\n`);
    } finally {
      rmSync(repo, { recursive: true, force: true });
    }
  });
});
