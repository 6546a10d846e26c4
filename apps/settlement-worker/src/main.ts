import 'reflect-metadata';

import { loadConfig, workerConfigSchema } from '@payorch/config';
import { createLogger } from '@payorch/logging';

import { createWorkerApp } from './bootstrap';

async function main(): Promise<void> {
  const config = loadConfig('settlement-worker', workerConfigSchema);
  const logger = createLogger({ name: 'settlement-worker', level: config.LOG_LEVEL });
  const app = await createWorkerApp(config, logger);
  await app.listen(config.WORKER_HEALTH_PORT, config.WORKER_HEALTH_HOST);
  logger.info({ url: await app.getUrl(), concurrency: config.WORKER_CONCURRENCY }, 'settlement-worker running');
}

main().catch((error: unknown) => {
  process.stderr.write(`${error instanceof Error ? error.message : String(error)}\n`);
  process.exit(1);
});
