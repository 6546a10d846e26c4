/**
 * Runs the Assist sandbox for demos and manual tests:
 *   npx tsx libs/testing/src/assist-sandbox/cli.ts --port 8090 [--host 127.0.0.1] [--test-mode]
 *     [--signature required|optional|off] [--public-key merchant.pub.pem]
 *     [--merchant-id 679471] [--login sandbox_login] [--password sandboxPass1] [--salt sandbox-salt]
 */
import { readFileSync } from 'node:fs';
import { parseArgs } from 'node:util';
import { SCENARIOS } from './orders';
import { SANDBOX_MERCHANT, startAssistSandbox } from './server';

async function main(): Promise<void> {
  const { values } = parseArgs({
    options: {
      port: { type: 'string', default: '8090' },
      host: { type: 'string', default: '127.0.0.1' },
      'test-mode': { type: 'boolean', default: false },
      signature: { type: 'string', default: 'required' },
      'public-key': { type: 'string' },
      'merchant-id': { type: 'string', default: SANDBOX_MERCHANT.merchantId },
      login: { type: 'string', default: SANDBOX_MERCHANT.login },
      password: { type: 'string', default: SANDBOX_MERCHANT.password },
      salt: { type: 'string', default: SANDBOX_MERCHANT.salt },
    },
  });
  const signature = values.signature;
  if (signature !== 'required' && signature !== 'optional' && signature !== 'off') {
    throw new Error('--signature must be required, optional or off');
  }
  const port = Number(values.port);
  if (!Number.isInteger(port) || port < 0 || port > 65535) throw new Error('--port must be 0..65535');

  const sandbox = await startAssistSandbox({
    port,
    host: values.host,
    testMode: values['test-mode'],
    signature,
    publicKeyPem: values['public-key'] ? readFileSync(values['public-key'], 'utf8') : undefined,
    merchantId: values['merchant-id'],
    login: values.login,
    password: values.password,
    salt: values.salt,
  });
  console.log(`Assist sandbox listening on ${sandbox.url}`);
  console.log(`  POST ${sandbox.url}/pay/tokenpay.cfm   POST ${sandbox.url}/orderstate/orderstate.cfm`);
  console.log(`  merchant ${values['merchant-id']} / login ${values.login}; signature ${signature}; test mode ${values['test-mode']}`);
  console.log('  outcome by the last two digits of the amount in minor units:');
  for (const [cents, outcome] of Object.entries(SCENARIOS)) console.log(`    .${cents}  ${outcome}`);

  const stop = () => {
    void sandbox.close().then(() => process.exit(0));
  };
  process.once('SIGINT', stop);
  process.once('SIGTERM', stop);
}

main().catch((error: unknown) => {
  console.error(error instanceof Error ? error.message : error);
  process.exit(1);
});
