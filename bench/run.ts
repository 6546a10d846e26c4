/**
 * `npm run bench [-- --quick] [-- name …]`: runs the benchmarks under bench/ (each `*.bench.ts` in its
 * own node process, one after another, so they do not disturb each other's measurements), then prints
 * one table of every result row (bench, measured, baseline, ratio, goal, met?, SQL per event) and
 * writes the results with the machine they were measured on (CPU model, cores, load average at the start). Only a
 * full run of every bench replaces bench/results.json, the committed record of the issue's figures; a quick run or a
 * run of some benches writes bench/results.last.json (ignored by git) instead, so that measuring one bench again
 * does not wipe the others' figures from the record. Without names it runs every bench; a name matches a folder
 * (`faults`) or a file (`tunnel/mux`); `--list` lists them.
 *
 * `--quick` (CI) sets BENCH_QUICK=1: small counts, the whole run in about a minute. Full mode (default)
 * uses the counts the issue's figures were measured with.
 *
 * Every row is a ratio against a baseline measured in the same run (bench/support/report.ts); a goal
 * that is not met is reported, never a failure: the exit code is non-zero only when a bench crashes
 * or times out (so CI checks that the benches run, not how fast the machine is).
 */
import { spawn } from 'node:child_process';
import { readdirSync, statSync, writeFileSync } from 'node:fs';
import { cpus, loadavg } from 'node:os';
import path from 'node:path';
import { createInterface } from 'node:readline';

import { type BenchRow, goalText, ROW_PREFIX } from './support/report';

const ROOT = path.resolve(__dirname, '..');
const BENCH = path.join(ROOT, 'bench');
/** The record of a full run of every bench (committed). */
const RESULTS = path.join(BENCH, 'results.json');
/** Any other run: a quick one, or some benches (not committed). */
const LAST_RESULTS = path.join(BENCH, 'results.last.json');

const benches = readdirSync(BENCH)
  .filter((dir) => dir !== 'support' && statSync(path.join(BENCH, dir)).isDirectory())
  .flatMap((dir) =>
    readdirSync(path.join(BENCH, dir))
      .filter((f) => f.endsWith('.bench.ts'))
      .map((f) => `${dir}/${f.replace(/\.bench\.ts$/, '')}`),
  )
  .sort();

const args = process.argv.slice(2);
const quick = args.includes('--quick');
if (args.includes('--list')) {
  process.stdout.write(`benchmarks (npm run bench -- [--quick] [name …]):\n${benches.map((b) => `  ${b}`).join('\n')}\n`);
  process.exit(0);
}
const wanted = args.filter((a) => !a.startsWith('--') && a !== 'all');
const matches = (bench: string, name: string) => bench === name || bench.startsWith(`${name}/`);
const unknown = wanted.filter((w) => !benches.some((b) => matches(b, w)));
if (unknown.length > 0) {
  process.stderr.write(`unknown benchmark(s): ${unknown.join(', ')}; known: ${benches.join(', ')}\n`);
  process.exit(2);
}
const selected = wanted.length === 0 ? benches : benches.filter((b) => wanted.some((w) => matches(b, w)));
/** A bench that runs longer than this is killed and reported as failed (a hang must not block CI). */
const TIMEOUT_MS = Number(process.env.BENCH_TIMEOUT_S ?? (quick ? 120 : 1800)) * 1000;

interface BenchRun {
  bench: string;
  status: 'ok' | 'failed' | 'timeout';
  seconds: number;
  rows: BenchRow[];
}

function runOne(bench: string): Promise<BenchRun> {
  const started = Date.now();
  const rows: BenchRow[] = [];
  const child = spawn(process.execPath, ['scripts/run-ts.mjs', `bench/${bench}.bench.ts`], {
    cwd: ROOT,
    stdio: ['ignore', 'pipe', 'inherit'],
    // The product runs bundled JavaScript on plain node (deploy/docker): no stack-trace rewriting. @swc-node/register's
    // default source-map mode installs source-map-support, which turns every formatted Error.stack (Node's stream
    // destroy() reads it) into ~0.3 ms of source-map work: 10-15 % of the agents' CPU in a reconnect storm. Inline maps
    // keep debuggers working without it. A bench run by hand can set SWC_NODE_SOURCE_MAP_MODE=inline the same way.
    env: { ...process.env, BENCH_QUICK: quick ? '1' : '0', SWC_NODE_SOURCE_MAP_MODE: process.env.SWC_NODE_SOURCE_MAP_MODE ?? 'inline' },
    detached: true,
  });
  createInterface({ input: child.stdout }).on('line', (line) => {
    if (!line.startsWith(ROW_PREFIX)) {
      process.stdout.write(`  ${line}\n`);
      return;
    }
    try {
      rows.push(JSON.parse(line.slice(ROW_PREFIX.length)) as BenchRow);
    } catch {
      process.stdout.write(`  (unreadable result row) ${line}\n`);
    }
  });
  let timedOut = false;
  const timer = setTimeout(() => {
    timedOut = true;
    // The bench's own process group (detached): the bench and whatever it forked, nothing else.
    if (child.pid !== undefined) process.kill(-child.pid, 'SIGKILL');
  }, TIMEOUT_MS);
  return new Promise((resolve) => {
    child.on('exit', (code) => {
      clearTimeout(timer);
      const status = timedOut ? 'timeout' : code === 0 ? 'ok' : 'failed';
      resolve({ bench, status, seconds: Math.round((Date.now() - started) / 100) / 10, rows });
    });
  });
}

const fmt = (n: number) => (Math.abs(n) >= 1000 ? Math.round(n).toLocaleString('en-US') : Number(n.toPrecision(3)).toString());

function table(runs: BenchRun[]): string {
  const header = ['bench', 'measured', 'baseline', 'ratio', 'goal', 'met?', 'stmts/tx per event'];
  const lines: string[][] = [];
  for (const run of runs) {
    if (run.rows.length === 0) lines.push([`${run.bench} (${run.status}, no rows)`, '', '', '', '', '', '']);
    for (const row of run.rows) {
      lines.push([
        row.bench,
        `${fmt(row.measured)} ${row.unit}`,
        `${fmt(row.baseline)} ${row.unit}`,
        `${row.ratio.toFixed(3)}×`,
        goalText(row.goal),
        row.met === undefined ? '—' : row.met ? 'yes' : 'NO',
        row.perEvent ? `${row.perEvent.statements} / ${row.perEvent.transactions}` : '',
      ]);
    }
  }
  const widths = header.map((h, i) => Math.max(h.length, ...lines.map((l) => l[i]!.length)));
  const render = (cells: string[]) =>
    cells
      .map((c, i) => c.padEnd(widths[i]!))
      .join('  ')
      .trimEnd();
  return [render(header), widths.map((w) => '-'.repeat(w)).join('  '), ...lines.map(render)].join('\n');
}

/**
 * The machine a run measured: ratios are taken against baselines of the same run, yet how a 2-core VM's neighbours and
 * CPU model treat the two sides moves them between runs (bench/README, "Fifteenth session"); the record says which.
 */
function machine(): { cpus: number; model: string; node: string; loadAverage: number[] } {
  const cores = cpus();
  return {
    cpus: cores.length,
    model: cores[0]?.model.trim() ?? 'unknown',
    node: process.version,
    loadAverage: loadavg().map((l) => Math.round(l * 100) / 100),
  };
}

async function main(): Promise<void> {
  const started = new Date();
  const host = machine();
  process.stdout.write(`machine: ${host.cpus} × ${host.model}, node ${host.node}, load average ${host.loadAverage.join(' ')}\n`);
  const runs: BenchRun[] = [];
  for (const bench of selected) {
    process.stdout.write(`\n▶ ${bench}${quick ? ' (quick)' : ''}\n`);
    const run = await runOne(bench);
    process.stdout.write(`◀ ${bench}: ${run.status} in ${run.seconds} s\n`);
    runs.push(run);
  }
  process.stdout.write(`\n${table(runs)}\n`);
  const results = {
    mode: quick ? 'quick' : 'full',
    startedAt: started.toISOString(),
    seconds: Math.round((Date.now() - started.getTime()) / 1000),
    machine: host,
    benches: runs,
  };
  const file = !quick && selected.length === benches.length ? RESULTS : LAST_RESULTS;
  writeFileSync(file, `${JSON.stringify(results, null, 2)}\n`);
  const failed = runs.filter((r) => r.status !== 'ok');
  process.stdout.write(`\nwrote ${path.relative(ROOT, file)}; ${runs.length} benches in ${results.seconds} s`);
  process.stdout.write(failed.length ? `; FAILED: ${failed.map((r) => `${r.bench} (${r.status})`).join(', ')}\n` : '\n');
  process.exit(failed.length ? 1 : 0);
}

void main();
