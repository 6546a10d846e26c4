import 'reflect-metadata';

import { connectorConfigSchema, loadConfig } from '@payorch/config';
import { createLogger } from '@payorch/logging';

import { createConnectorApp } from './bootstrap';

async function main(): Promise<void> {
  const config = loadConfig('device-connector', connectorConfigSchema);
  const logger = createLogger({ name: 'device-connector', level: config.LOG_LEVEL });
  const app = await createConnectorApp(config, logger);
  await app.listen(config.CONNECTOR_PORT, config.CONNECTOR_HOST);
  logger.info({ url: await app.getUrl() }, 'device-connector listening (agents connect to /agent)');
}

main().catch((error: unknown) => {
  process.stderr.write(`${error instanceof Error ? error.message : String(error)}\n`);
  process.exit(1);
});
