/**
 * A share of the fleet of bench/campaigns/campaigns.bench.ts in its tunnel path (CAMPAIGN_PATH=tunnel), in a child
 * process: one Joinproto terminal simulator (libs/testing joinproto-sim, its own TCP listener: it holds one till
 * link at a time) per terminal, and the agents (TunnelClient + LinkBridge, the agent product's code) whose links
 * dial them. A child, because each terminal costs three descriptors here (listener, the agent's socket, the
 * simulator's) and `ulimit -n` is per process: the bench starts one per TERMINALS_PER_FLEET terminals.
 *
 * The journal: every LoadKeys (14) a simulator executed, by DF01, taken where the simulator hands each executed
 * command's request to its `dropResponse` hook (which then lets the answer go). The simulator's own `journal`
 * keeps the commands with an amount only. The journals live here, so they outlive the worker kills.
 *
 * IPC (parent → child → parent): `simulators {terminalIds, latencyMs}` → `ports {ports}`; `agents {url,
 * credentials}` → `agents`; `executed` → `executed {count}`; `journal` → `journal {df01s}` (terminal id → the
 * DF01 of each LoadKeys it executed).
 */
import { createLogger } from '@payorch/logging';
import { JoinprotoTerminalSimulator } from '@payorch/testing/joinproto-sim';

import { LinkBridge } from '../../apps/agent/src/bridge/link-bridge';
import { TunnelClient } from '../../apps/agent/src/bridge/tunnel-client';

type Message =
  | { type: 'simulators'; terminalIds: string[]; latencyMs: number }
  | { type: 'agents'; url: string; credentials: string[] }
  | { type: 'executed' }
  | { type: 'journal' };

const silent = createLogger({ name: 'bench-fleet', level: 'silent' });
const df01s = new Map<string, string[]>();
const simulators: JoinprotoTerminalSimulator[] = [];
let executed = 0;

async function startSimulators(terminalIds: string[], latencyMs: number): Promise<number[]> {
  const ports: number[] = [];
  for (const terminalId of terminalIds) {
    const journal: string[] = [];
    df01s.set(terminalId, journal);
    const simulator = new JoinprotoTerminalSimulator({
      // The pause before a bank answer: the terminal's latency, as the driver path's LATENCY_MS.
      processingDelayMs: latencyMs,
      dropResponse: (request) => {
        if (request.type === 'LoadKeysRequest') {
          journal.push(request.id);
          executed += 1;
        }
        return false;
      },
    });
    simulators.push(simulator);
    ports.push((await simulator.listen(0)).port);
  }
  return ports;
}

function startAgents(url: string, credentials: string[]): void {
  for (const credential of credentials) {
    const bridge = new LinkBridge({ logger: silent });
    const client = new TunnelClient({ connector: url, credential, logger: silent, baseDelayMs: 100, maxDelayMs: 1_000, onSocket: (ws) => bridge.attach(ws) });
    void client.start();
  }
}

process.on('message', (message: Message) => {
  const reply = (answer: object) => process.send!(answer);
  switch (message.type) {
    case 'simulators':
      void startSimulators(message.terminalIds, message.latencyMs).then((ports) => reply({ type: 'ports', ports }));
      break;
    case 'agents':
      startAgents(message.url, message.credentials);
      reply({ type: 'agents' });
      break;
    case 'executed':
      reply({ type: 'executed', count: executed });
      break;
    case 'journal':
      reply({ type: 'journal', df01s: Object.fromEntries(df01s) });
      break;
  }
});
// The parent kills this process (SIGKILL) when it is done: the agents' tunnels and the links just drop.
process.send!({ type: 'booted' });
