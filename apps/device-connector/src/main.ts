import 'reflect-metadata';

import { connectorConfigSchema, loadConfig } from '@payorch/config';
import { exitGracefullyOnSignals } from '@payorch/health';
import { createLogger } from '@payorch/logging';

import { createConnectorApp, listenConnector } from './bootstrap';

async function main(): Promise<void> {
  const config = loadConfig('device-connector', connectorConfigSchema);
  const logger = createLogger({ name: 'device-connector', level: config.LOG_LEVEL });
  const app = await createConnectorApp(config, logger);
  await listenConnector(app, config, config.CONNECTOR_PORT, config.CONNECTOR_HOST);
  // SIGTERM / SIGINT: readiness 503, drain, exit 0 within SHUTDOWN_GRACE_MS (docs/runbooks/production.md).
  exitGracefullyOnSignals(app, { drainDelayMs: config.SHUTDOWN_DRAIN_DELAY_MS, graceMs: config.SHUTDOWN_GRACE_MS, logger });
  logger.info({ url: await app.getUrl() }, 'device-connector listening (agents connect to /agent)');
}

main().catch((error: unknown) => {
  process.stderr.write(`${error instanceof Error ? error.message : String(error)}\n`);
  process.exit(1);
});
