import { type ChildProcess, spawn } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import type { IncomingMessage } from 'node:http';
import { type AddressInfo, connect } from 'node:net';
import { tmpdir } from 'node:os';
import path from 'node:path';
import type { Duplex } from 'node:stream';

import { decodeMessage, DEFAULT_MAX_FRAME_BYTES, FrameDecoder, type Message } from '@payorch/joinproto';
import { nextEvent, REPO_ROOT, tsEntryArgs, waitFor, withTimeout } from '@payorch/testing';
import { attachWebSocket, type Multiplexer, toDuplex } from '@payorch/tunnel';
import { WebSocketServer } from 'ws';

const CREDENTIAL = 'pac_dev_sim_test';
const STARTUP = { timeoutMs: 45_000 };

function isAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

function refuses(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = connect(port, '127.0.0.1');
    socket.once('connect', () => (socket.destroy(), resolve(false)));
    socket.once('error', (error: NodeJS.ErrnoException) => resolve(error.code === 'ECONNREFUSED'));
  });
}

async function firstJoinprotoMessage(link: Duplex): Promise<Message> {
  const decoder = new FrameDecoder({ maxFrameBytes: DEFAULT_MAX_FRAME_BYTES });
  for (;;) {
    const [chunk] = await nextEvent<[Buffer]>(link, 'data', {
      what: 'bytes from the simulated terminal',
    });
    for (const event of decoder.push(chunk)) {
      if (event.kind === 'frame') return decodeMessage(event.frame, 'terminal->till');
    }
  }
}

describe('payorch-dev-sim', () => {
  let connector: WebSocketServer;
  let stateDir: string;
  let devSim: ChildProcess | undefined;

  beforeAll(async () => {
    connector = new WebSocketServer({ host: '127.0.0.1', port: 0 });
    await nextEvent(connector, 'listening');
    stateDir = mkdtempSync(path.join(tmpdir(), 'dev-sim-'));
    // An enrolled agent (the agent's credential.json shape) pointing at this fake connector.
    const credential = {
      connector: `http://127.0.0.1:${(connector.address() as AddressInfo).port}`,
      agentId: 'agent-dev-sim',
      tenantId: 'tenant-dev-sim',
      credential: CREDENTIAL,
      enrolledAt: new Date().toISOString(),
    };
    writeFileSync(path.join(stateDir, 'credential.json'), JSON.stringify(credential), {
      mode: 0o600,
    });
  });

  afterAll(async () => {
    if (devSim && devSim.exitCode === null && devSim.signalCode === null) {
      devSim.kill('SIGKILL');
      await nextEvent(devSim, 'exit');
    }
    for (const client of connector.clients) client.terminate();
    await new Promise((resolve) => connector.close(resolve));
    rmSync(stateDir, { recursive: true, force: true });
  });

  it('starts the simulators and the real agent, which bridges a terminal link to them; SIGTERM stops both', async () => {
    const agentConnected = new Promise<{ mux: Multiplexer; request: IncomingMessage }>((resolve) =>
      connector.once('connection', (socket, request) => {
        const mux = attachWebSocket(socket, {
          role: 'connector',
          software: 'dev-sim-test/1',
          heartbeat: false,
        });
        mux.onReady(() => resolve({ mux, request }));
      }),
    );
    let stderr = '';
    devSim = spawn(process.execPath, tsEntryArgs('apps/dev-sim/src/cli.ts', 'run', '--state-dir', stateDir, '--log-level', 'warn'), {
      cwd: REPO_ROOT,
      stdio: ['ignore', 'ignore', 'pipe'],
    });
    devSim.stderr?.on('data', (chunk: Buffer) => (stderr += chunk.toString()));

    const printed = await waitFor(() => /^simulators: (\{.*\})$/m.exec(stderr)?.[1], {
      ...STARTUP,
      what: 'the simulator ports on stderr',
    });
    const ports = JSON.parse(printed) as { joinproto: number; jpay: number; ssiEcr: number };
    expect(Object.keys(ports).sort()).toEqual(['joinproto', 'jpay', 'ssiEcr']);

    const { mux, request } = await withTimeout(agentConnected, {
      ...STARTUP,
      what: 'the agent connecting to the connector',
    });
    expect(request.headers.authorization).toBe(`Bearer ${CREDENTIAL}`);
    const agentPid = await waitFor(() => JSON.parse(readFileSync(path.join(stateDir, 'state.json'), 'utf8')).pid as number, {
      what: 'the agent state file',
      ignoreErrors: true,
    });
    expect(agentPid).not.toBe(devSim.pid);

    // The connector hands the agent a terminal on the Joinproto simulator and opens its link (same
    // ordered WebSocket: the list arrives first). The simulator greets the till with an echo request.
    const link = { kind: 'tcp-connect', host: '127.0.0.1', port: ports.joinproto } as const;
    mux.sendControl({
      type: 'terminal-list',
      terminals: [{ terminalId: 'sim-joinproto', protocol: 'joinproto', link }],
    });
    const stream = toDuplex(await mux.open(link, { terminalId: 'sim-joinproto' }));
    stream.on('error', () => undefined); // stopping the simulator resets the stream
    await expect(firstJoinprotoMessage(stream)).resolves.toMatchObject({ type: 'EchoRequest' });

    devSim.kill('SIGTERM');
    const [code] = await nextEvent<[number | null]>(devSim, 'exit', {
      timeoutMs: 15_000,
      what: 'payorch-dev-sim exiting',
    });
    expect(code).toBe(0);
    expect(isAlive(agentPid)).toBe(false);
    for (const port of Object.values(ports)) await expect(refuses(port)).resolves.toBe(true);
  }, 90_000);
});
