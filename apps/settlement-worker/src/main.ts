import 'reflect-metadata';

import { loadConfig, workerConfigSchema } from '@payorch/config';
import { exitGracefullyOnSignals } from '@payorch/health';
import { createLogger } from '@payorch/logging';

import { createWorkerApp } from './bootstrap';

async function main(): Promise<void> {
  const config = loadConfig('settlement-worker', workerConfigSchema);
  const logger = createLogger({ name: 'settlement-worker', level: config.LOG_LEVEL });
  const app = await createWorkerApp(config, logger);
  await app.listen(config.WORKER_HEALTH_PORT, config.WORKER_HEALTH_HOST);
  // SIGTERM / SIGINT: readiness 503, drain, exit 0 within SHUTDOWN_GRACE_MS (docs/runbooks/production.md).
  exitGracefullyOnSignals(app, { drainDelayMs: config.SHUTDOWN_DRAIN_DELAY_MS, graceMs: config.SHUTDOWN_GRACE_MS, logger });
  logger.info({ url: await app.getUrl(), concurrency: config.WORKER_CONCURRENCY }, 'settlement-worker running');
}

main().catch((error: unknown) => {
  process.stderr.write(`${error instanceof Error ? error.message : String(error)}\n`);
  process.exit(1);
});
