import { Command } from 'commander';

import { createLogger } from '@payorch/logging';

import { LinkBridge } from './bridge/link-bridge';
import { TunnelClient } from './bridge/tunnel-client';
import { type AgentSettings, CONNECTOR_URL_FORM, ENV, type FlagValues, resolveSettings, StateStore } from './config';
import { formatCheck, runDoctor } from './doctor';
import { enroll } from './enroll';
import { AGENT_VERSION } from './version';

/**
 * payorch-agent: the on-site bridge between a shop's terminals and the payorch cloud.
 *   payorch-agent enroll --connector wss://connector.example/agent --token pen_…   (once)
 *   payorch-agent run [--config /etc/payorch-agent/agent.json]                   (keep the tunnel up)
 *   payorch-agent doctor                                                         (check connector, credential, terminals)
 *   payorch-agent status
 * Settings: flags > environment (PAYORCH_AGENT_*) > config file (--config, JSON) > defaults.
 */
const collect = (value: string, previous: string[] | undefined) => [...(previous ?? []), value];

const program = new Command('payorch-agent')
  .description('payorch on-site agent: dials out to the payorch device connector and bridges terminal links')
  .version(AGENT_VERSION, '-v, --version')
  .option('--config <file>', `JSON config file (env ${ENV.config}); flags override the environment, which overrides the file`)
  .option('--connector <url>', `connector URL, ${CONNECTOR_URL_FORM}; repeat for fallbacks tried in turn (env ${ENV.connectors})`, collect)
  .option('--state-dir <dir>', `where the credential and state are kept (env ${ENV.stateDir}; default ~/.payorch-agent)`)
  .option('--log-level <level>', `fatal|error|warn|info|debug (env ${ENV.logLevel}; default info)`)
  .option(
    '--reconnect-base-ms <ms>',
    `first reconnect delay after the tunnel drops; doubles per failure, with full jitter (env ${ENV.reconnectBaseMs}; default 500)`,
  )
  .option('--reconnect-max-ms <ms>', `longest reconnect delay (env ${ENV.reconnectMaxMs}; default 30000)`)
  .option('--token <token>', 'one-time enrollment token from POST /v1/agents (first run: enroll, then run)')
  .showHelpAfterError();

type GlobalOptions = FlagValues & { token?: string };

function settings(): AgentSettings {
  return resolveSettings({ flags: program.opts<GlobalOptions>(), env: process.env });
}

/** Exchanges the token at the configured connectors, in turn, until one answers. */
async function enrollWith(config: AgentSettings, token: string, store: StateStore): Promise<void> {
  if (!config.connectors.length) throw new Error(`enrollment needs a connector URL: --connector ${CONNECTOR_URL_FORM.split(' ')[0]}`);
  let lastError: unknown;
  for (const connector of config.connectors) {
    try {
      const credential = await enroll(connector, token);
      store.writeCredential(credential);
      process.stderr.write(`enrolled as agent ${credential.agentId}; credential saved to ${store.credentialFile}\n`);
      return;
    } catch (error) {
      lastError = error;
      // A refusal is final (the token is shared by all connectors); only an unreachable one moves on.
      if ((error as Error).message.startsWith('enrollment refused')) throw error;
      process.stderr.write(`cannot reach ${connector} (${(error as Error).message}); trying the next connector\n`);
    }
  }
  throw lastError;
}

async function runAgent(config: AgentSettings, store: StateStore): Promise<void> {
  const stored = store.readCredential();
  if (!stored) throw new Error(`not enrolled: no credential in ${store.credentialFile}; run payorch-agent enroll --connector <url> --token <enrollment token>`);
  const logger = createLogger({ name: 'agent', level: config.logLevel, base: { agentId: stored.agentId } });
  const connectors = config.connectors.length ? config.connectors : [stored.connector];
  let current = connectors[0]!;
  const bridge = new LinkBridge({
    logger,
    onTerminals: (terminals) => {
      try {
        store.writeTerminals({ receivedAt: new Date().toISOString(), connector: current, terminals });
      } catch (error) {
        logger.warn({ err: (error as Error).message }, 'could not cache the terminal list');
      }
    },
  });
  const client = new TunnelClient({
    baseDelayMs: config.reconnectBaseMs,
    maxDelayMs: config.reconnectMaxMs,
    connectors,
    credential: stored.credential,
    logger,
    onSocket: (ws) => bridge.attach(ws),
    onStateChange: ({ connected, error, connector }) => {
      current = connector;
      store.writeState({ connector, connected, since: new Date().toISOString(), lastError: error, pid: process.pid });
    },
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

program.action(async (opts: GlobalOptions) => {
  const config = settings();
  const store = new StateStore(config.stateDir);
  if (opts.token) await enrollWith(config, opts.token, store);
  else if (!store.readCredential()) program.help({ error: true });
  await runAgent(config, store);
});

program
  .command('enroll')
  .description('exchange the one-time --token for the credential at --connector, save it, and exit (run the service afterwards)')
  .action(async () => {
    const config = settings();
    const { token } = program.opts<GlobalOptions>();
    if (!token) throw new Error('enroll needs --token <enrollment token> (from POST /v1/agents)');
    await enrollWith(config, token, new StateStore(config.stateDir));
  });

program
  .command('run')
  .description('connect with the stored credential and keep the tunnel up')
  .action(async () => {
    const config = settings();
    await runAgent(config, new StateStore(config.stateDir));
  });

program
  .command('doctor')
  .description('check DNS/TCP/TLS/WebSocket reach of each connector, the credential and every terminal; exit 0 only when all pass')
  .option('--timeout-ms <ms>', 'timeout of each network step', '5000')
  .action(async (opts: { timeoutMs: string }) => {
    const config = settings();
    const timeoutMs = Number(opts.timeoutMs);
    if (!Number.isInteger(timeoutMs) || timeoutMs < 100 || timeoutMs > 120_000) throw new Error(`--timeout-ms: expected 100..120000, got "${opts.timeoutMs}"`);
    process.stdout.write(`payorch-agent ${AGENT_VERSION} doctor (state ${config.stateDir}${config.configFile ? `, config ${config.configFile}` : ''})\n`);
    const report = await runDoctor({
      connectors: config.connectors,
      store: new StateStore(config.stateDir),
      timeoutMs,
      onCheck: (check) => process.stdout.write(`${formatCheck(check)}\n`),
    });
    const failed = report.checks.filter((c) => c.verdict === 'FAIL').length;
    process.stdout.write(
      report.healthy
        ? `verdict: HEALTHY (${report.checks.length} checks, no failure)\n`
        : `verdict: NOT HEALTHY (${failed} of ${report.checks.length} checks failed)\n`,
    );
    process.exitCode = report.healthy ? 0 : 1;
  });

program
  .command('status')
  .description('show enrollment, configured connectors and the last known tunnel state (JSON)')
  .action(() => {
    const config = settings();
    const store = new StateStore(config.stateDir);
    const credential = store.readCredential();
    const state = store.readState();
    const out = {
      version: AGENT_VERSION,
      enrolled: Boolean(credential),
      agentId: credential?.agentId ?? null,
      connector: credential?.connector ?? null,
      connectors: config.connectors.length ? config.connectors : credential ? [credential.connector] : [],
      tunnel: state ? { connected: state.connected, connector: state.connector, since: state.since, lastError: state.lastError, pid: state.pid } : null,
    };
    process.stdout.write(`${JSON.stringify(out, null, 2)}\n`);
  });

program.parseAsync(process.argv).catch((error: unknown) => {
  process.stderr.write(`payorch-agent: ${error instanceof Error ? error.message : String(error)}\n`);
  process.exit(1);
});
