import { readdirSync, readFileSync } from 'node:fs';
import path from 'node:path';

/**
 * Rules for migrations written from the sixteenth session on (docs/runbooks/database.md, "Rolling deploys"): the migration
 * runs before the new pods take traffic, against tables that may be large and while the previous release's pods still
 * run. Older migrations are left as they are (most of their indexes were built on empty tables); every new one is held
 * to these rules.
 */
const MIGRATIONS = path.resolve(__dirname, '../../prisma/migrations');
const RULES_FROM = '20261207000000';

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

  it('create indexes IF NOT EXISTS and say how to build them on a large table (CONCURRENTLY by hand first)', () => {
    // A plain CREATE INDEX takes a write lock on the table for the whole build, and one built by hand beforehand
    // (CREATE INDEX CONCURRENTLY, which cannot run inside a migration's transaction) then made the migration fail.
    const offending = migrations.flatMap(({ name, sql, text }) => {
      const statements = sql.match(/CREATE\s+(UNIQUE\s+)?INDEX\b[^;]*/gi) ?? [];
      return statements
        .filter((statement) => !/INDEX\s+IF\s+NOT\s+EXISTS\b/i.test(statement) || !/CONCURRENTLY/.test(text))
        .map((statement) => `${name}: ${statement.split('\n')[0]}`);
    });
    expect(offending).toEqual([]);
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
