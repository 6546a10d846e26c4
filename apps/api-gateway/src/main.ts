import 'reflect-metadata';

import { gatewayConfigSchema, loadConfig } from '@payorch/config';
import { createLogger } from '@payorch/logging';

import { createGatewayApp } from './bootstrap';

async function main(): Promise<void> {
  const config = loadConfig('api-gateway', gatewayConfigSchema);
  const logger = createLogger({ name: 'api-gateway', level: config.LOG_LEVEL });
  const app = await createGatewayApp(config, { logger });
  await app.listen(config.GATEWAY_PORT, config.GATEWAY_HOST);
  logger.info({ url: await app.getUrl() }, 'api-gateway listening');
}

main().catch((error: unknown) => {
  process.stderr.write(`${error instanceof Error ? error.message : String(error)}\n`);
  process.exit(1);
});
