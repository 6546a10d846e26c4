#!/usr/bin/env -S npx tsx
/**
 * SSI ECR terminal simulator on TCP.
 *   npx tsx libs/testing/src/ssi-ecr-sim/cli.ts --port 3000 --step-ms 700
 */
import { existsSync, readFileSync, writeFileSync } from 'node:fs';

import { Command } from 'commander';

import { SsiEcrSimulator, emptySimulatorState, type SimulatorPersistentState } from './simulator';

const program = new Command()
  .name('ssi-ecr-sim')
  .description('SSI ECR JSON terminal simulator (deterministic outcomes by amount kopecks; see README.md)')
  .option('--host <host>', 'address to listen on', '127.0.0.1')
  .option('--port <port>', 'TCP port (spec default 3000)', '3000')
  .option('--os <os>', 'android | linux (GetTerminalInfo shape, Android-only methods)', 'android')
  .option('--step-ms <ms>', 'advance one status every <ms> ms; 0 = advance on each GetStatus poll', '700')
  .option('--uid', 'enable the later-revision transactionUid / GetResultByUid extension', false)
  .option('--hyphen', 'spell results APPROVED-ONLINE like example 5.5.1', false)
  .option('--state-file <path>', 'persist last result, reports and batch across restarts')
  .parse();

const opts = program.opts<{ host: string; port: string; os: string; stepMs: string; uid: boolean; hyphen: boolean; stateFile?: string }>();
const os = opts.os === 'linux' ? 'linux' : opts.os === 'android' ? 'android' : program.error('--os must be android or linux');
const stepMs = Number(opts.stepMs);
const state: SimulatorPersistentState =
  opts.stateFile && existsSync(opts.stateFile) ? (JSON.parse(readFileSync(opts.stateFile, 'utf8')) as SimulatorPersistentState) : emptySimulatorState();

const sim = new SsiEcrSimulator({
  host: opts.host,
  port: Number(opts.port),
  os,
  advance: stepMs > 0 ? { mode: 'timed', stepMs } : { mode: 'per-poll' },
  supportsTransactionUid: opts.uid,
  resultSpelling: opts.hyphen ? 'hyphen' : 'underscore',
  state,
});

async function main(): Promise<void> {
  const { host, port } = await sim.start();
  console.log(`ssi-ecr-sim listening on ${host}:${port} (${opts.os}${opts.uid ? ', transactionUid' : ''})`);
  const shutdown = async (): Promise<void> => {
    await sim.stop();
    if (opts.stateFile) writeFileSync(opts.stateFile, JSON.stringify(sim.persistent, null, 2));
    process.exit(0);
  };
  process.on('SIGINT', () => void shutdown());
  process.on('SIGTERM', () => void shutdown());
}

main().catch((error: unknown) => {
  console.error(error);
  process.exit(1);
});
