/**
 * payorch-dev-sim: a simulated shop for development and demos (a dev tool; never shipped).
 * Starts the Joinproto, JPAY (aQsi) and SSI ECR terminal simulators on 127.0.0.1, then runs the real
 * payorch-agent (apps/agent, as its own process, exactly as shipped) with the remaining arguments.
 * Stops the simulators when the agent exits; SIGINT/SIGTERM stop both.
 *   node scripts/run-ts.mjs apps/dev-sim/src/cli.ts --base-port 7000 run
 *   node scripts/run-ts.mjs apps/dev-sim/src/cli.ts --connector ws://127.0.0.1:3001/agent --token pen_…
 */
import { spawn } from 'node:child_process';

import { REPO_ROOT, tsEntryArgs } from '@payorch/testing';
import { Command, InvalidArgumentError } from 'commander';

import { startSimulators } from './simulators';

const AGENT_ENTRY = 'apps/agent/src/cli.ts';

function basePort(value: string): number {
  const port = Number(value);
  if (!Number.isInteger(port) || port < 0 || port > 65533) {
    throw new InvalidArgumentError('expected a port from 0 to 65533');
  }
  return port;
}

async function run(agentArgs: string[], opts: { basePort: number }): Promise<number> {
  const simulators = await startSimulators(opts.basePort);
  process.stderr.write(`simulators: ${JSON.stringify(simulators.ports)}\n`);
  const agent = spawn(process.execPath, tsEntryArgs(AGENT_ENTRY, ...agentArgs), {
    cwd: REPO_ROOT,
    stdio: 'inherit',
  });
  let stopping = false;
  for (const signal of ['SIGINT', 'SIGTERM'] as const) {
    // Ctrl-C reaches the agent too (same process group); forward once, as SIGTERM, so it stops cleanly.
    process.on(signal, () => {
      if (stopping) return;
      stopping = true;
      if (agent.exitCode === null && agent.signalCode === null) agent.kill('SIGTERM');
    });
  }
  const code = await new Promise<number>((resolve) => {
    agent.once('error', (error) => {
      process.stderr.write(`payorch-dev-sim: cannot start the agent: ${error.message}\n`);
      resolve(1);
    });
    agent.once('exit', (exitCode) => resolve(exitCode ?? (stopping ? 0 : 1)));
  });
  await simulators.close();
  return code;
}

new Command('payorch-dev-sim')
  .description('simulated shop for development and demos: terminal simulators on 127.0.0.1 and a payorch-agent')
  .usage('[--base-port <port>] [payorch-agent arguments…]')
  .option('--base-port <port>', 'simulator ports: base (Joinproto), base+1 (JPAY), base+2 (SSI ECR); default ephemeral', basePort, 0)
  .argument('[agent-args...]', 'passed to payorch-agent: run | --connector <url> --token <token> | --state-dir <dir> | --log-level <level> …')
  .passThroughOptions()
  .allowUnknownOption()
  .showHelpAfterError()
  .action(async (agentArgs: string[], opts: { basePort: number }) => process.exit(await run(agentArgs, opts)))
  .parseAsync(process.argv)
  .catch((error: unknown) => {
    process.stderr.write(`payorch-dev-sim: ${error instanceof Error ? error.message : String(error)}\n`);
    process.exit(1);
  });
