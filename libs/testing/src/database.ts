import { spawnSync } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import { readdirSync, readFileSync } from 'node:fs';
import path from 'node:path';

import { Client } from 'pg';

import { waitFor } from './wait';

/**
 * A fresh PostgreSQL database per test file (immich's getKyselyDB idea): all migrations are applied
 * once into a template database named after a hash of the migration files, under an advisory lock so
 * parallel jest workers and projects build it once; each file then clones it with
 * `CREATE DATABASE … TEMPLATE …`, which takes milliseconds.
 */

const ROOT = path.resolve(__dirname, '../../..');
const MIGRATIONS = path.join(ROOT, 'prisma/migrations');
const LOCK_ID = 727073_01;
export const TEST_APP_PASSWORD = 'payorch_app_test';

export const testAdminUrl = (): string => process.env.TEST_DATABASE_URL ?? 'postgresql://postgres@127.0.0.1:5432/test';

/**
 * Templates of other migration sets (another checkout, a CI clone, an older commit) younger than this are kept: two
 * runs with different migrations on one server used to drop each other's template in the middle of the other's run.
 */
export const TEMPLATE_KEEP_MS = 60 * 60 * 1000;

/**
 * Which other templates a build may drop: those built more than TEMPLATE_KEEP_MS ago (the build time is the
 * database's comment), without a build time (older layouts), and half-built ones (`…_build`: a build holds the lock
 * it runs under, so one found by the lock's holder was left by a run that died).
 */
export function staleTemplates(others: readonly { datname: string; built: string | null }[], now: number): string[] {
  return others
    .filter(({ datname, built }) => {
      if (datname.endsWith('_build')) return true;
      const at = built === null ? Number.NaN : Number(built);
      return !Number.isFinite(at) || now - at > TEMPLATE_KEEP_MS;
    })
    .map(({ datname }) => datname);
}

function migrationsHash(): string {
  const hash = createHash('sha256');
  for (const dir of readdirSync(MIGRATIONS).sort()) {
    if (!/^\d{14}_/.test(dir)) continue;
    hash.update(dir).update(readFileSync(path.join(MIGRATIONS, dir, 'migration.sql')));
  }
  return hash.digest('hex').slice(0, 12);
}

function withDatabase(url: string, database: string): string {
  const u = new URL(url);
  u.pathname = `/${database}`;
  return u.toString();
}

async function withAdmin<T>(fn: (client: Client) => Promise<T>): Promise<T> {
  const client = new Client({ connectionString: testAdminUrl() });
  await client.connect();
  try {
    return await fn(client);
  } finally {
    await client.end();
  }
}

async function ensureTemplate(): Promise<string> {
  const template = `payorch_tpl_${migrationsHash()}`;
  await withAdmin(async (admin) => {
    await admin.query('SELECT pg_advisory_lock($1)', [LOCK_ID]);
    try {
      const { rowCount } = await admin.query('SELECT 1 FROM pg_database WHERE datname = $1', [template]);
      if (rowCount) return;
      const others = await admin.query<{ datname: string; built: string | null }>(
        "SELECT datname, shobj_description(oid, 'pg_database') AS built FROM pg_database WHERE datname LIKE 'payorch\\_tpl\\_%' AND datname <> $1",
        [template],
      );
      for (const name of staleTemplates(others.rows, Date.now())) await admin.query(`DROP DATABASE IF EXISTS "${name}" WITH (FORCE)`);
      await admin.query(`CREATE DATABASE "${template}_build"`);
      const result = spawnSync(process.execPath, [path.join(ROOT, 'scripts/prisma-offline-migrate.mjs'), 'deploy'], {
        cwd: ROOT,
        env: { ...process.env, DATABASE_URL: withDatabase(testAdminUrl(), `${template}_build`) },
        encoding: 'utf8',
      });
      if (result.status !== 0) {
        await admin.query(`DROP DATABASE IF EXISTS "${template}_build" WITH (FORCE)`);
        throw new Error(`migrating the test template failed:\n${result.stdout}\n${result.stderr}`);
      }
      await admin.query(`ALTER ROLE payorch_app PASSWORD '${TEST_APP_PASSWORD}'`);
      // Renaming after a successful migration means a half-built template is never cloned.
      await admin.query(`ALTER DATABASE "${template}_build" RENAME TO "${template}"`);
      await admin.query(`COMMENT ON DATABASE "${template}" IS '${Date.now()}'`);
    } finally {
      await admin.query('SELECT pg_advisory_unlock($1)', [LOCK_ID]);
    }
  });
  return template;
}

export interface TestDatabase {
  name: string;
  /** Owner connection (migrations, admin CLI, test setup that must bypass RLS). */
  adminUrl: string;
  /** `payorch_app` connection: what the services use; subject to RLS. */
  appUrl: string;
  drop(): Promise<void>;
}

export async function createTestDatabase(): Promise<TestDatabase> {
  let template = await ensureTemplate();
  const name = `payorch_t_${process.pid}_${randomBytes(4).toString('hex')}`;
  await withAdmin((admin) =>
    waitFor(
      async () => {
        try {
          await admin.query(`CREATE DATABASE "${name}" TEMPLATE "${template}"`);
          return true;
        } catch (error) {
          const code = (error as { code?: string }).code;
          // 55006: the template is briefly in use by a concurrent clone; try again.
          if (code === '55006') return false;
          // 3D000: dropped under us (an old run's clean-up): build it again and clone that.
          if (code === '3D000') {
            template = await ensureTemplate();
            await admin.query(`CREATE DATABASE "${name}" TEMPLATE "${template}"`);
            return true;
          }
          throw error;
        }
      },
      { timeoutMs: 15_000, intervalMs: 50 + Math.floor(Math.random() * 100), what: `a clone of ${template} (the template stays in use)` },
    ),
  );
  const adminUrl = withDatabase(testAdminUrl(), name);
  const app = new URL(adminUrl);
  app.username = 'payorch_app';
  app.password = TEST_APP_PASSWORD;
  return {
    name,
    adminUrl,
    appUrl: app.toString(),
    drop: () => withAdmin(async (admin) => void (await admin.query(`DROP DATABASE IF EXISTS "${name}" WITH (FORCE)`))),
  };
}

/**
 * One migration tested on data written before it: a fresh database (every migration applied), `undo` (SQL) puts it back
 * to the schema before the migration, the test writes its rows through `owner`, then `apply()` runs the migration's SQL.
 * `nameSuffix`: the end of the migration's folder name (after its timestamp).
 */
export class MigrationUnderTest {
  readonly name: string;
  private testDb: TestDatabase | undefined;
  private client: Client | undefined;

  constructor(
    nameSuffix: string,
    private readonly undo: string,
  ) {
    const name = readdirSync(MIGRATIONS).find((dir) => dir.endsWith(`_${nameSuffix}`));
    if (name === undefined) throw new Error(`no migration named *_${nameSuffix}`);
    this.name = name;
  }

  /** Owner connection (not under row-level security). */
  get owner(): Client {
    if (!this.client) throw new Error('MigrationUnderTest.start() first');
    return this.client;
  }

  async start(): Promise<void> {
    this.testDb = await createTestDatabase();
    this.client = new Client({ connectionString: this.testDb.adminUrl });
    await this.client.connect();
    await this.client.query(this.undo);
  }

  async apply(): Promise<void> {
    await this.owner.query(readFileSync(path.join(MIGRATIONS, this.name, 'migration.sql'), 'utf8'));
  }

  async stop(): Promise<void> {
    await this.client?.end();
    await this.testDb?.drop();
  }
}
