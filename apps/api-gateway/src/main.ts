import 'reflect-metadata';

import { gatewayConfigSchema, loadConfig } from '@payorch/config';
import { exitGracefullyOnSignals } from '@payorch/health';
import { createLogger } from '@payorch/logging';

import { createGatewayApp } from './bootstrap';

async function main(): Promise<void> {
  const config = loadConfig('api-gateway', gatewayConfigSchema);
  const logger = createLogger({ name: 'api-gateway', level: config.LOG_LEVEL });
  const app = await createGatewayApp(config, { logger });
  await app.listen(config.GATEWAY_PORT, config.GATEWAY_HOST);
  // SIGTERM / SIGINT: readiness 503, drain, exit 0 within SHUTDOWN_GRACE_MS (docs/runbooks/production.md).
  exitGracefullyOnSignals(app, { drainDelayMs: config.SHUTDOWN_DRAIN_DELAY_MS, graceMs: config.SHUTDOWN_GRACE_MS, logger });
  logger.info({ url: await app.getUrl() }, 'api-gateway listening');
}

main().catch((error: unknown) => {
  process.stderr.write(`${error instanceof Error ? error.message : String(error)}\n`);
  process.exit(1);
});
