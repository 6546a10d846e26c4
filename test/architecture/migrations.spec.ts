import { readdirSync, readFileSync } from 'node:fs';
import path from 'node:path';

import { SCHEMA_MIGRATION } from '../../libs/db/src/schema-version';

/**
 * Rules for migrations written from the sixteenth session on (docs/runbooks/database.md, "Rolling deploys"): the migration
 * runs before the new pods take traffic, against tables that may be large and while the previous release's pods still
 * run. Older migrations are left as they are (most of their indexes were built on empty tables); every new one is held
 * to these rules.
 */
const MIGRATIONS = path.resolve(__dirname, '../../prisma/migrations');
const RULES_FROM = '20261207000000';
/** From here on an index on a table that may hold rows is built online, by a migration of its own (ONLINE_INDEX). */
const ONLINE_FROM = '20261207160000';

const withoutComments = (text: string) => text.replace(/\/\*[\s\S]*?\*\//g, '').replace(/--[^\n]*/g, '');
/** The one statement of an online index build: CONCURRENTLY (no write lock), IF NOT EXISTS (a rerun after a failure). */
const ONLINE_INDEX = /^\s*CREATE\s+(UNIQUE\s+)?INDEX\s+CONCURRENTLY\s+IF\s+NOT\s+EXISTS\s[^;]*;?\s*$/i;

/**
 * The index builds of one migration (from ONLINE_FROM on) that would hold a write lock on a table that may hold rows:
 * a CREATE INDEX on a table the migration does not create, unless it is the migration's only statement and built
 * CONCURRENTLY IF NOT EXISTS; and any CONCURRENTLY beside other statements (PostgreSQL refuses it in the migration's
 * transaction). The offline runner builds such a migration outside a transaction, and `create` writes them so.
 */
function lockingIndexBuilds(name: string, text: string): string[] {
  const sql = withoutComments(text);
  if (ONLINE_INDEX.test(sql)) return [];
  const created = new Set([...sql.matchAll(/CREATE\s+TABLE\s+(?:IF\s+NOT\s+EXISTS\s+)?"([^"]+)"/gi)].map((m) => m[1]));
  return [...sql.matchAll(/CREATE\s+(?:UNIQUE\s+)?INDEX\b[^;]*/gi)]
    .map(([statement]) => statement)
    .filter((statement) => /\bCONCURRENTLY\b/i.test(statement) || !created.has(/\sON\s+(?:ONLY\s+)?"([^"]+)"/i.exec(statement)?.[1] ?? ''))
    .map((statement) => `${name}: ${statement.trim().split('\n')[0]}`);
}

/** A migration's SQL with its comments removed (the rules are about statements), and the file as written. */
function migrationsFrom(first: string): Array<{ name: string; sql: string; text: string }> {
  return readdirSync(MIGRATIONS, { withFileTypes: true })
    .filter((entry) => entry.isDirectory() && entry.name >= first)
    .map((entry) => {
      const text = readFileSync(path.join(MIGRATIONS, entry.name, 'migration.sql'), 'utf8');
      return { name: entry.name, text, sql: text.replace(/--[^\n]*/g, '') };
    });
}

describe(`migrations from ${RULES_FROM} on`, () => {
  const migrations = migrationsFrom(RULES_FROM);

  it('are there to check (the rules run on every migration added since)', () => {
    expect(migrations.map((m) => m.name)).toEqual(expect.arrayContaining(['20261207014200_fair_wallet_sweep']));
  });

  it(`create indexes IF NOT EXISTS and say how to build them on a large table (CONCURRENTLY by hand first) until ${ONLINE_FROM}`, () => {
    // A plain CREATE INDEX takes a write lock on the table for the whole build, and one built by hand beforehand
    // (CREATE INDEX CONCURRENTLY, which cannot run inside a migration's transaction) then made the migration fail.
    const offending = migrations
      .filter(({ name }) => name < ONLINE_FROM)
      .flatMap(({ name, sql, text }) => {
        const statements = sql.match(/CREATE\s+(UNIQUE\s+)?INDEX\b[^;]*/gi) ?? [];
        return statements
          .filter((statement) => !/INDEX\s+IF\s+NOT\s+EXISTS\b/i.test(statement) || !/CONCURRENTLY/.test(text))
          .map((statement) => `${name}: ${statement.split('\n')[0]}`);
      });
    expect(offending).toEqual([]);
  });

  it(`build every index on a table that may hold rows online from ${ONLINE_FROM} on (a migration of its own, CONCURRENTLY)`, () => {
    expect(migrations.filter(({ name }) => name >= ONLINE_FROM).flatMap(({ name, text }) => lockingIndexBuilds(name, text))).toEqual([]);
  });

  it('drop or rename nothing the previous release may use without saying why that is safe for it', () => {
    // The previous release's pods run against the migrated schema until replaced: a function, table, column, type or
    // view they use must stay (20261206222905 dropped payorch_open_campaigns and broke their campaign sweep).
    const offending = migrations
      .filter(({ sql, text }) => /\bDROP\s+(FUNCTION|TABLE|COLUMN|TYPE|VIEW)\b|\bRENAME\b/i.test(sql) && !/Compatible with the previous release/i.test(text))
      .map(({ name }) => name);
    expect(offending).toEqual([]);
  });
});

describe('SCHEMA_MIGRATION (libs/db)', () => {
  it('names the newest migration: a build is ready, and its worker takes jobs, once its own schema is applied', () => {
    const newest = readdirSync(MIGRATIONS)
      .filter((name) => /^\d{14}_/.test(name))
      .sort()
      .at(-1);
    expect(SCHEMA_MIGRATION).toBe(newest);
  });
});

describe('lockingIndexBuilds', () => {
  it('passes an online build alone in its migration, with its comment', () => {
    expect(lockingIndexBuilds('m', '-- Built online.\nCREATE UNIQUE INDEX CONCURRENTLY IF NOT EXISTS "T_a_key" ON "T"("a");\n')).toEqual([]);
  });

  it('passes an index on a table the same migration creates (empty: its build takes no time)', () => {
    expect(lockingIndexBuilds('m', 'CREATE TABLE "N" ("id" int);\n\n-- CreateIndex\nCREATE INDEX "N_id_idx" ON "N"("id");\n')).toEqual([]);
  });

  it('refuses a plain index on an existing table, IF NOT EXISTS or not', () => {
    expect(lockingIndexBuilds('m', 'CREATE INDEX "T_a_idx" ON "T"("a");\nCREATE INDEX IF NOT EXISTS "T_b_idx" ON "T"("b");')).toEqual([
      'm: CREATE INDEX "T_a_idx" ON "T"("a")',
      'm: CREATE INDEX IF NOT EXISTS "T_b_idx" ON "T"("b")',
    ]);
  });

  it('refuses CONCURRENTLY beside another statement, and without IF NOT EXISTS', () => {
    expect(lockingIndexBuilds('m', 'CREATE TABLE "N" ("id" int);\nCREATE INDEX CONCURRENTLY IF NOT EXISTS "N_id_idx" ON "N"("id");')).toEqual([
      'm: CREATE INDEX CONCURRENTLY IF NOT EXISTS "N_id_idx" ON "N"("id")',
    ]);
    expect(lockingIndexBuilds('m', 'CREATE INDEX CONCURRENTLY "T_a_idx" ON "T"("a");')).toEqual(['m: CREATE INDEX CONCURRENTLY "T_a_idx" ON "T"("a")']);
  });
});
