/**
 * The settlement worker as bench/campaigns/campaigns.bench.ts runs it, in a child process it can kill -9: the
 * real app (createWorkerApp: every BullMQ processor, the command bus to the bench's connector), configured from
 * the environment like apps/settlement-worker/src/main.ts, plus the bench's SQL counter. It prints `READY` once
 * its processors run, then its cumulative SQL counts as a `SQL {json}` line every 200 ms (the bench adds the
 * worker's share to its own per step).
 */
import 'reflect-metadata';

import { loadConfig, workerConfigSchema } from '@payorch/config';
import { createLogger } from '@payorch/logging';

import { createWorkerApp } from '../../apps/settlement-worker/src/bootstrap';
import { installSqlCounter, sqlSnapshot } from '../support/sql-counter';

// Before the app creates its pools.
installSqlCounter();

async function main(): Promise<void> {
  const config = loadConfig('settlement-worker', workerConfigSchema);
  const app = await createWorkerApp(config, createLogger({ name: 'bench-worker', level: config.LOG_LEVEL }));
  await app.init();
  setInterval(() => process.stdout.write(`SQL ${JSON.stringify(sqlSnapshot())}\n`), 200).unref();
  process.stdout.write('READY\n');
  // Runs until the bench kills it (SIGKILL) or stops it (SIGTERM: BullMQ workers close, active jobs finish).
  process.once('SIGTERM', () => void app.close().then(() => process.exit(0)));
}

main().catch((error: unknown) => {
  process.stderr.write(`${error instanceof Error ? error.stack : String(error)}\n`);
  process.exit(1);
});
