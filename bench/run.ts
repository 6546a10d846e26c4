/**
 * `npm run bench -- [name …]`: runs the benchmarks under bench/ (each `*.bench.ts` in its own node
 * process, one after another, so they do not disturb each other's measurements). Without names it
 * lists them; `all` runs every one. A name matches a folder (`faults`) or a file (`tunnel/mux`).
 * Each benchmark prints ratios against a baseline measured in the same run.
 */
import { spawnSync } from 'node:child_process';
import { readdirSync, statSync } from 'node:fs';
import path from 'node:path';

const ROOT = path.resolve(__dirname, '..');
const BENCH = path.join(ROOT, 'bench');

const benches = readdirSync(BENCH)
  .filter((dir) => statSync(path.join(BENCH, dir)).isDirectory())
  .flatMap((dir) =>
    readdirSync(path.join(BENCH, dir))
      .filter((f) => f.endsWith('.bench.ts'))
      .map((f) => `${dir}/${f.replace(/\.bench\.ts$/, '')}`),
  )
  .sort();

const wanted = process.argv.slice(2);
if (wanted.length === 0) {
  process.stdout.write(`benchmarks (npm run bench -- <name>|all):\n${benches.map((b) => `  ${b}`).join('\n')}\n`);
  process.exit(0);
}
const selected = wanted.includes('all') ? benches : benches.filter((b) => wanted.some((w) => b === w || b.startsWith(`${w}/`)));
const unknown = wanted.filter((w) => w !== 'all' && !benches.some((b) => b === w || b.startsWith(`${w}/`)));
if (unknown.length > 0) {
  process.stderr.write(`unknown benchmark(s): ${unknown.join(', ')}; known: ${benches.join(', ')}\n`);
  process.exit(2);
}
let failed = 0;
for (const bench of selected) {
  process.stdout.write(`\n▶ ${bench}\n`);
  const res = spawnSync(process.execPath, ['scripts/run-ts.mjs', `bench/${bench}.bench.ts`], { cwd: ROOT, stdio: 'inherit', env: process.env });
  if (res.status !== 0) failed++;
}
process.exit(failed ? 1 : 0);
