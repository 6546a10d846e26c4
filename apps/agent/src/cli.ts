import { Command, InvalidArgumentError } from 'commander';

import { createLogger } from '@payorch/logging';

import { StateStore, defaultStateDir } from './config';
import { enroll } from './enroll';
import { LinkBridge } from './bridge/link-bridge';
import { TunnelClient } from './bridge/tunnel-client';
import { AGENT_VERSION } from './version';

/**
 * payorch-agent: the on-site bridge between a shop's terminals and the payorch cloud.
 *   payorch-agent --connector https://connector.example --token pen_…   (enroll once, then run)
 *   payorch-agent run                                                     (run with the stored credential)
 *   payorch-agent status
 */
const program = new Command('payorch-agent')
  .description('payorch on-site agent: dials out to the payorch device connector and bridges terminal links')
  .version(AGENT_VERSION, '-v, --version')
  .option('--state-dir <dir>', 'where the credential and state are kept', defaultStateDir())
  .option('--log-level <level>', 'fatal|error|warn|info|debug', 'info')
  .option(
    '--reconnect-base-ms <ms>',
    'first reconnect delay after the tunnel drops; doubles per failure, with full jitter',
    positiveInt,
    envInt('PAYORCH_AGENT_RECONNECT_BASE_MS', 500),
  )
  .option('--reconnect-max-ms <ms>', 'longest reconnect delay', positiveInt, envInt('PAYORCH_AGENT_RECONNECT_MAX_MS', 30_000))
  .showHelpAfterError();

interface RunOptions {
  logLevel: string;
  reconnectBaseMs: number;
  reconnectMaxMs: number;
}

function positiveInt(value: string): number {
  const n = Number(value);
  if (!Number.isInteger(n) || n < 1 || n > 3_600_000) throw new InvalidArgumentError(`expected whole milliseconds between 1 and 3600000, got "${value}"`);
  return n;
}

function envInt(name: string, fallback: number): number {
  const raw = process.env[name];
  if (raw === undefined || raw === '') return fallback;
  try {
    return positiveInt(raw);
  } catch (error) {
    throw new Error(`${name}: ${(error as Error).message}`, { cause: error });
  }
}

async function runAgent(store: StateStore, opts: RunOptions): Promise<void> {
  const stored = store.readCredential();
  if (!stored) throw new Error(`not enrolled: no credential in ${store.credentialFile}; run with --connector <url> --token <enrollment token>`);
  const logger = createLogger({ name: 'agent', level: opts.logLevel, base: { agentId: stored.agentId } });
  const bridge = new LinkBridge({ logger });
  if (opts.reconnectBaseMs > opts.reconnectMaxMs) throw new Error('--reconnect-base-ms must not exceed --reconnect-max-ms');
  const client = new TunnelClient({
    baseDelayMs: opts.reconnectBaseMs,
    maxDelayMs: opts.reconnectMaxMs,
    connector: stored.connector,
    credential: stored.credential,
    logger,
    onSocket: (ws) => bridge.attach(ws),
    onStateChange: ({ connected, error }) =>
      store.writeState({ connector: stored.connector, connected, since: new Date().toISOString(), lastError: error, pid: process.pid }),
  });
  for (const signal of ['SIGINT', 'SIGTERM'] as const) {
    process.once(signal, () => {
      logger.info({ signal }, 'stopping');
      client.stop();
      bridge.close();
      setTimeout(() => process.exit(0), 200).unref();
    });
  }
  const fatal = await client.start();
  throw fatal;
}

program
  .option('--connector <url>', 'device connector URL (https://… or wss://…)')
  .option('--token <token>', 'one-time enrollment token from POST /v1/agents')
  .action(async (opts: RunOptions & { connector?: string; token?: string; stateDir: string }) => {
    const store = new StateStore(opts.stateDir);
    if (opts.token) {
      if (!opts.connector) throw new Error('--token needs --connector <url>');
      const credential = await enroll(opts.connector, opts.token);
      store.writeCredential(credential);
      process.stderr.write(`enrolled as agent ${credential.agentId}; credential saved to ${store.credentialFile}\n`);
    } else if (!store.readCredential()) {
      program.help({ error: true });
    }
    await runAgent(store, opts);
  });

program
  .command('run')
  .description('connect with the stored credential and keep the tunnel up')
  .action(async () => {
    const opts = program.opts<RunOptions & { stateDir: string }>();
    await runAgent(new StateStore(opts.stateDir), opts);
  });

program
  .command('status')
  .description('show enrollment and the last known tunnel state')
  .action(() => {
    const store = new StateStore(program.opts<{ stateDir: string }>().stateDir);
    const credential = store.readCredential();
    const state = store.readState();
    const out = {
      version: AGENT_VERSION,
      enrolled: Boolean(credential),
      agentId: credential?.agentId ?? null,
      connector: credential?.connector ?? null,
      tunnel: state ? { connected: state.connected, since: state.since, lastError: state.lastError, pid: state.pid } : null,
    };
    process.stdout.write(`${JSON.stringify(out, null, 2)}\n`);
  });

program.parseAsync(process.argv).catch((error: unknown) => {
  process.stderr.write(`payorch-agent: ${error instanceof Error ? error.message : String(error)}\n`);
  process.exit(1);
});
