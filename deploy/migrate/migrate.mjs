#!/usr/bin/env node
// The one-shot migration step of a deployment (Compose service `migrate`, Kubernetes Job `payorch-migrate`):
//   1. applies pending migrations with the offline runner (scripts/prisma-offline-migrate.mjs deploy;
//      /work/shared/specs/prisma-offline.md): advisory lock, `_prisma_migrations` kept as Prisma does, so
//      concurrent runs (two replicas started at once) apply each migration once, in turn; an index on a table
//      that holds rows is built online (CREATE INDEX CONCURRENTLY, a migration of its own) while the services write;
//   2. when DATABASE_APP_PASSWORD is set, gives the application role `payorch_app` (created by the
//      migrations: no owner rights, no BYPASSRLS) that password, so DATABASE_APP_URL can log in.
// Env: DATABASE_URL (owner role, required), DATABASE_APP_PASSWORD (optional), MIGRATION_LOCK_TIMEOUT_MS /
// MIGRATION_LOCK_ATTEMPTS (optional: a migration waits at most that long for a table's lock, then tries again).
// Exit 0 = schema up to date.
import { spawnSync } from 'node:child_process';
import { createRequire } from 'node:module';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const require = createRequire(import.meta.url);
const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');
const log = (msg) => process.stdout.write(`[migrate] ${msg}\n`);

if (!process.env.DATABASE_URL || !/^postgres(ql)?:\/\//.test(process.env.DATABASE_URL)) {
  process.stderr.write('[migrate] DATABASE_URL (owner role, postgresql://…) is required\n');
  process.exit(2);
}

const run = spawnSync(process.execPath, [path.join(ROOT, 'scripts/prisma-offline-migrate.mjs'), 'deploy'], { cwd: ROOT, stdio: 'inherit', env: process.env });
if (run.status !== 0) {
  process.stderr.write(`[migrate] migrations failed (exit ${run.status ?? run.signal})\n`);
  process.exit(1);
}

const password = process.env.DATABASE_APP_PASSWORD;
if (password) {
  const pg = require('pg');
  const client = new pg.Client({ connectionString: process.env.DATABASE_URL });
  await client.connect();
  try {
    // ALTER ROLE takes no bind parameters: the password is quoted as a literal by the driver's own escaping.
    await client.query(`ALTER ROLE payorch_app LOGIN PASSWORD ${client.escapeLiteral(password)}`);
  } finally {
    await client.end();
  }
  log('application role payorch_app: password set from DATABASE_APP_PASSWORD');
} else {
  log('DATABASE_APP_PASSWORD not set: payorch_app password left as it is');
}
log('schema up to date');
