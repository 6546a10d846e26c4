/**
 * Runs the JPAY / aQsi banking-application simulator as a TCP server.
 *   npx tsx libs/testing/src/jpay-sim/cli.ts --help
 */
import { Command, Option } from 'commander';

import { DEFAULT_ADMIN_PASSWORD, JpaySimulator } from './simulator';

const program = new Command()
  .name('jpay-sim')
  .description('JPAY / aQsi cardcore banking-application simulator (test tool; outcomes by amount kopecks, see README.md)')
  .addOption(new Option('--dialect <dialect>', 'protocol dialect').choices(['aqsi', 'jpay']).default('aqsi'))
  .option('--host <host>', 'address to listen on', '127.0.0.1')
  .option('--port <port>', 'TCP port (0 = ephemeral)', (v) => Number.parseInt(v, 10), 4433)
  .option('--admin-password <digits>', '8-digit admin password', DEFAULT_ADMIN_PASSWORD)
  .option('--keepalive-ms <ms>', 'pause between keepalives of long scenarios', (v) => Number.parseInt(v, 10), 500);

program.parse();
const options = program.opts<{
  dialect: 'aqsi' | 'jpay';
  host: string;
  port: number;
  adminPassword: string;
  keepaliveMs: number;
}>();

async function main(): Promise<void> {
  const sim = new JpaySimulator({
    dialect: options.dialect,
    adminPassword: options.adminPassword,
    keepaliveIntervalMs: options.keepaliveMs,
  });
  const port = await sim.listen(options.port, options.host);
  console.log(`jpay-sim (${options.dialect}) listening on ${options.host}:${port}`);
  const stop = (): void => {
    void sim.close().then(() => process.exit(0));
  };
  process.once('SIGINT', stop);
  process.once('SIGTERM', stop);
}

main().catch((error: unknown) => {
  console.error(error);
  process.exit(1);
});
