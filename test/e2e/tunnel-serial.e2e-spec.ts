import { type ChildProcess, spawn } from 'node:child_process';
import { existsSync, mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import type { Duplex } from 'node:stream';

import { SerialPort } from 'serialport';

import { waitFor } from '@payorch/testing';

import { type RunningConnector, TunnelHarness } from './support/tunnel-harness';

/** A serial terminal link through the agent: `socat` makes a virtual null-modem pair of ptys (Debian package `socat`). */
describe('tunnel: serial link through socat virtual serial ports', () => {
  const h = new TunnelHarness();
  let connector: RunningConnector;
  let socat: ChildProcess;
  let terminalSide: SerialPort;
  const dir = mkdtempSync(path.join(tmpdir(), 'serial-'));
  const agentPath = path.join(dir, 'ttyAgent');
  const terminalPath = path.join(dir, 'ttyTerminal');

  beforeAll(async () => {
    await h.start();
    connector = await h.connector('serial-1');
    socat = spawn('socat', [`pty,raw,echo=0,link=${agentPath}`, `pty,raw,echo=0,link=${terminalPath}`], { stdio: 'ignore' });
    await waitFor(() => existsSync(agentPath) && existsSync(terminalPath), { timeoutMs: 5_000, intervalMs: 50, what: 'socat ptys' });
    terminalSide = await new Promise<SerialPort>((resolve, reject) => {
      const port: SerialPort = new SerialPort({ path: terminalPath, baudRate: 115200 }, (error) => (error ? reject(error) : resolve(port)));
    });
    // The "terminal": answers every byte it receives with the byte + 1.
    terminalSide.on('data', (chunk: Buffer) => terminalSide.write(Buffer.from(chunk.map((b) => (b + 1) & 0xff))));
  });

  afterAll(async () => {
    await h.stop();
    await new Promise<void>((resolve) => (terminalSide?.isOpen ? terminalSide.close(() => resolve()) : resolve()));
    socat?.kill('SIGKILL');
  });

  it('opens the serial port on the agent, bridges bytes both ways and reports the terminal online', async () => {
    const agent = await h.enrolledAgent(connector.url);
    const terminalId = await h.terminal(agent, { kind: 'serial', path: agentPath, baudRate: 115200, dataBits: 8, parity: 'none', stopBits: 1 });
    const running = h.runAgent(connector.url, agent.credential);
    await waitFor(() => running.bridge.terminalList.length === 1, { timeoutMs: 15_000, intervalMs: 50 });
    expect(running.bridge.terminalList[0]!.link).toEqual({ kind: 'serial', path: agentPath, baudRate: 115200, dataBits: 8, parity: 'none', stopBits: 1 });
    await waitFor(async () => (await h.terminalStatus(terminalId)).status === 'ONLINE', { timeoutMs: 10_000, intervalMs: 50, what: 'serial terminal online' });

    const handle = connector.hub.find(agent.tenantId, terminalId)!;
    const link: Duplex = await handle.run(() => handle.link());
    const payload = Buffer.alloc(2000, 0).map((_, i) => i % 251);
    const received: Buffer[] = [];
    link.on('data', (chunk: Buffer) => received.push(chunk));
    link.write(payload);
    await waitFor(() => Buffer.concat(received).length >= payload.length, { timeoutMs: 10_000, intervalMs: 50, what: 'echo' });
    expect(Buffer.concat(received)).toEqual(Buffer.from(payload.map((b) => (b + 1) & 0xff)));
    link.destroy();
  });

  it('reports a missing serial device as OFFLINE with the reason', async () => {
    const agent = await h.enrolledAgent(connector.url);
    const terminalId = await h.terminal(agent, { kind: 'serial', path: path.join(dir, 'nope'), baudRate: 9600 });
    h.runAgent(connector.url, agent.credential);
    await waitFor(async () => (await h.terminalStatus(terminalId)).status === 'OFFLINE', { timeoutMs: 10_000, intervalMs: 50, what: 'offline' });
    const events = await h.events(agent.tenantId, 'terminal.offline');
    expect(events[0]!.subjectId).toBe(terminalId);
  });
});
