import { createMemoryPipe, type MemoryPipeOptions, type MemoryTransport } from '../memory-pipe';
import { Multiplexer, type MultiplexerOptions, type TunnelSession } from '../multiplexer';

export interface MuxPair {
  agent: Multiplexer;
  connector: Multiplexer;
  agentTransport: MemoryTransport;
  connectorTransport: MemoryTransport;
}

type SideOptions = Partial<Omit<MultiplexerOptions, 'role'>>;

/** An agent and a connector Multiplexer over an in-memory pipe, heartbeats off unless asked. */
export function createMuxPair(options: { agent?: SideOptions; connector?: SideOptions; pipe?: MemoryPipeOptions } = {}): MuxPair {
  const [agentTransport, connectorTransport] = createMemoryPipe(options.pipe);
  const agent = new Multiplexer(agentTransport, {
    role: 'agent',
    software: 'agent-test/1',
    heartbeat: false,
    ...options.agent,
  });
  const connector = new Multiplexer(connectorTransport, {
    role: 'connector',
    software: 'connector-test/1',
    heartbeat: false,
    ...options.connector,
  });
  agentTransport.attach(agent);
  connectorTransport.attach(connector);
  return { agent, connector, agentTransport, connectorTransport };
}

/** Starts both sides and resolves once both completed the handshake. */
export async function startPair(pair: MuxPair): Promise<[TunnelSession, TunnelSession]> {
  const ready = Promise.all([
    new Promise<TunnelSession>((resolve) => pair.agent.onReady(resolve)),
    new Promise<TunnelSession>((resolve) => pair.connector.onReady(resolve)),
  ]);
  pair.connector.start();
  pair.agent.start();
  return ready;
}

/** Lets every queued microtask (pipe deliveries, deferred events) run. */
export async function settle(rounds = 50): Promise<void> {
  for (let i = 0; i < rounds; i++) await Promise.resolve();
}
