#!/usr/bin/env node
// `npm test`: everything CI checks, in order, failing fast:
//   Prisma client + migration drift, lint, formatting, typecheck, circular imports,
//   every project's unit and integration tests (Nx, 2 in parallel), the e2e suite, then every benchmark in quick mode.
// Needs PostgreSQL (TEST_DATABASE_URL, default postgresql://postgres@127.0.0.1:5432/test)
// and Redis (TEST_REDIS_URL, default redis://127.0.0.1:6379).
import { spawnSync } from 'node:child_process';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const bin = (name) => path.join(ROOT, 'node_modules/.bin', name);
const only = process.argv.slice(2);

const steps = [
  ['prisma client', 'npm', ['run', '-s', 'db:generate']],
  ['migrations cover schema.prisma', process.execPath, ['scripts/prisma-offline-migrate.mjs', 'check']],
  // eslint.config.mjs builds the Nx project graph the boundary rule needs (none exists on a clean clone).
  ['lint', bin('eslint'), ['.', '--max-warnings', '0']],
  ['formatting (prettier)', bin('prettier'), ['--check', '.', '--log-level', 'warn']],
  ['typecheck', bin('tsc'), ['-p', 'tsconfig.json', '--noEmit']],
  // The ops console is a browser build (DOM types, bundler resolution): its own tsconfig, kept out of the root one.
  ['typecheck (console)', bin('tsc'), ['-p', 'apps/console/tsconfig.json', '--noEmit']],
  // docs/openapi.json at zero warnings (redocly.yaml); test/e2e/openapi-contract.e2e-spec.ts checks it is what the gateway serves.
  ['openapi lint', bin('redocly'), ['lint', '--format', 'summary']],
  // madge exits 1 on any cycle; .madgerc counts `import type` too (test/architecture/circular-imports.spec.ts).
  ['circular imports', 'npm', ['run', '-s', 'circular']],
  ['unit + integration tests', bin('nx'), ['run-many', '-t', 'test', '--parallel=2', '--outputStyle=static', '--skip-nx-cache']],
  // The multi-instance deploy test runs ~26 processes (2 of each service + 20 agents): alone, after the others,
  // so it neither starves the browser and fault tests running beside it nor is starved by them.
  ['e2e tests', bin('jest'), ['-c', 'test/jest.config.js', '--maxWorkers=2', '--testPathIgnorePatterns', 'multi-instance']],
  ['multi-instance deploy test', bin('jest'), ['-c', 'test/jest.config.js', '--runInBand', 'test/deploy/multi-instance']],
  // Every benchmark in quick mode: CI checks that they run (a crash or a timeout fails); ratios and goals are
  // printed, never asserted (bench/README.md).
  ['benchmarks (quick)', 'npm', ['run', '-s', 'bench', '--', '--quick']],
];

const started = Date.now();
const results = [];
for (const [name, cmd, args] of steps) {
  if (only.length && !only.some((o) => name.includes(o))) continue;
  process.stdout.write(`\n▶ ${name}\n`);
  const t = Date.now();
  const res = spawnSync(cmd, args, { cwd: ROOT, stdio: 'inherit', env: { ...process.env, TZ: 'UTC', NX_DAEMON: 'false', NX_NO_CLOUD: 'true' } });
  const ok = res.status === 0;
  results.push({ name, ok, seconds: ((Date.now() - t) / 1000).toFixed(1) });
  if (!ok) break;
}
process.stdout.write('\nSummary\n');
for (const r of results) process.stdout.write(`  ${r.ok ? 'ok  ' : 'FAIL'}  ${r.name} (${r.seconds}s)\n`);
const failed = results.filter((r) => !r.ok).length;
process.stdout.write(`total ${((Date.now() - started) / 1000).toFixed(0)}s\n`);
process.exit(failed ? 1 : 0);
