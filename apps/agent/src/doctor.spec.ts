import { mkdtempSync } from 'node:fs';
import { type AddressInfo, createServer, type Server } from 'node:net';
import { tmpdir } from 'node:os';
import path from 'node:path';

import type { TerminalEntry } from '@payorch/tunnel';
import { waitFor } from '@payorch/testing';

import { StateStore } from './config';
import { type CheckResult, formatCheck, runDoctor } from './doctor';
import { closedPort, type FakeConnector, startFakeConnector, startRefusingConnector } from './testing/fake-connector';

const CREDENTIAL = 'pac_doctor_test_credential';

function enrolledStore(connector: string, credential = CREDENTIAL): StateStore {
  const store = new StateStore(mkdtempSync(path.join(tmpdir(), 'agent-doctor-')));
  store.writeCredential({ connector, agentId: 'agent-1', tenantId: 'tenant-1', credential, enrolledAt: new Date().toISOString() });
  return store;
}

const lines = (checks: CheckResult[]) => checks.map(formatCheck);
const find = (checks: CheckResult[], check: string, target?: string) => checks.filter((c) => c.check === check && (!target || c.target.startsWith(target)));

describe(runDoctor.name, () => {
  let terminal: Server;
  let terminalPort: number;
  let deadPort: number;
  let listenPort: number;
  let connector: FakeConnector;
  let terminals: TerminalEntry[];

  beforeAll(async () => {
    terminal = createServer((socket) => socket.destroy());
    await new Promise<void>((resolve) => terminal.listen(0, '127.0.0.1', resolve));
    terminalPort = (terminal.address() as AddressInfo).port;
    deadPort = await closedPort();
    listenPort = await closedPort();
    terminals = [
      { terminalId: 'till-up', protocol: 'joinproto', link: { kind: 'tcp-connect', host: '127.0.0.1', port: terminalPort } },
      { terminalId: 'till-listen', protocol: 'jpay', link: { kind: 'tcp-listen', host: '127.0.0.1', port: listenPort } },
      { terminalId: 'till-serial', protocol: 'ssi-ecr', link: { kind: 'serial', path: '/dev/ttyFAKE0', baudRate: 9600 } },
    ];
    connector = await startFakeConnector({ credential: CREDENTIAL, terminals });
  });

  afterAll(async () => {
    await connector.close();
    await new Promise<void>((resolve) => terminal.close(() => resolve()));
  });

  const fakeSerial = async () => ({ close: (cb: () => void) => cb() });

  it('passes every check against a healthy connector and reachable terminals, and leaves the connector cleanly as a probe', async () => {
    const store = enrolledStore(connector.url);
    const printed: string[] = [];
    const before = connector.connections.length;
    const report = await runDoctor({ connectors: [], store, timeoutMs: 2000, openSerial: fakeSerial, onCheck: (c) => printed.push(formatCheck(c)) });

    expect(report.healthy).toBe(true);
    expect(printed).toEqual(lines(report.checks));
    expect(report.checks.map((c) => `${c.verdict} ${c.check}`)).toEqual([
      'OK dns',
      'OK tcp',
      'SKIP tls',
      'OK websocket',
      'OK credential',
      'OK tunnel',
      'OK terminals',
      'OK terminal',
      'OK terminal',
      'OK terminal',
    ]);
    expect(find(report.checks, 'tunnel')[0]!.detail).toBe('handshake done: protocol v1 with fake-connector/1');
    expect(find(report.checks, 'terminal').map((c) => c.target)).toEqual(['till-up (joinproto)', 'till-listen (jpay)', 'till-serial (ssi-ecr)']);
    expect(printed[0]).toBe(`[OK]   dns        ${connector.url}  127.0.0.1 is an IP address`);

    // The real handshake as a probe, then a clean close (1000).
    const probe = connector.connections[before]!;
    expect(probe.probe).toBe(true);
    await waitFor(() => probe.closeCode !== undefined, { what: 'the probe to close' });
    expect(probe.closeCode).toBe(1000);
  });

  it('fails the credential line when the connector refuses the credential, and falls back to the cached terminal list', async () => {
    const store = enrolledStore(connector.url, 'pac_wrong');
    store.writeTerminals({ receivedAt: '2025-01-01T00:00:00.000Z', connector: connector.url, terminals: [terminals[0]!] });
    const refusedBefore = connector.refused;
    const report = await runDoctor({ connectors: [connector.url], store, timeoutMs: 2000, openSerial: fakeSerial });

    expect(report.healthy).toBe(false);
    expect(connector.refused).toBe(refusedBefore + 1);
    const [credential] = find(report.checks, 'credential');
    expect(credential).toMatchObject({ verdict: 'FAIL', detail: 'the connector refused the credential of agent agent-1 (HTTP 401)' });
    expect(formatCheck(credential!)).toMatch(/^\[FAIL\] credential .* — hint: the agent was revoked, deleted or re-enrolled elsewhere/);
    expect(find(report.checks, 'websocket')[0]!.verdict).toBe('OK');
    expect(find(report.checks, 'tunnel')).toEqual([]);
    expect(find(report.checks, 'terminals')[0]!.detail).toContain('from the last run (2025-01-01T00:00:00.000Z)');
    expect(find(report.checks, 'terminal').map((c) => c.verdict)).toEqual(['OK']);
  });

  it('fails a terminal on a closed loopback port, with the reason and a hint', async () => {
    const unreachable: TerminalEntry = { terminalId: 'till-dead', protocol: 'jpay', link: { kind: 'tcp-connect', host: '127.0.0.1', port: deadPort } };
    const withDead = await startFakeConnector({ credential: CREDENTIAL, terminals: [terminals[0]!, unreachable] });
    try {
      const report = await runDoctor({ connectors: [withDead.url], store: enrolledStore(withDead.url), timeoutMs: 2000 });
      expect(report.healthy).toBe(false);
      const failed = report.checks.filter((c) => c.verdict === 'FAIL');
      expect(failed).toEqual([
        {
          verdict: 'FAIL',
          check: 'terminal',
          target: 'till-dead (jpay)',
          detail: `tcp 127.0.0.1:${deadPort} not reachable (ECONNREFUSED)`,
          hint: 'nothing listens there: is the terminal up, and is the port right?',
        },
      ]);
    } finally {
      await withDead.close();
    }
  });

  it('fails a listen port that is taken and a serial port that does not open', async () => {
    const taken = createServer();
    await new Promise<void>((resolve) => taken.listen(listenPort, '127.0.0.1', resolve));
    try {
      const report = await runDoctor({
        connectors: [],
        store: enrolledStore(connector.url),
        timeoutMs: 2000,
        openSerial: () => Promise.reject(new Error('Error: No such file or directory, cannot open /dev/ttyFAKE0')),
      });
      const failed = report.checks.filter((c) => c.verdict === 'FAIL').map((c) => `${c.target}: ${c.detail} | ${c.hint}`);
      expect(failed).toEqual([
        `till-listen (jpay): cannot listen on 127.0.0.1:${listenPort} (EADDRINUSE) | another program uses that port (a running agent holds it only while it waits for the terminal): stop it or change the port`,
        'till-serial (ssi-ecr): serial /dev/ttyFAKE0 does not open (Error: No such file or directory, cannot open /dev/ttyFAKE0) | the device does not exist: check the cable/USB adapter and the path (ls /dev/ttyUSB* /dev/ttyS*; COMx on Windows)',
      ]);
    } finally {
      await new Promise<void>((resolve) => taken.close(() => resolve()));
    }
  });

  it('tries every connector URL: a dead one fails its tcp line, a wrong path fails the upgrade, the live one passes', async () => {
    const dead = `ws://127.0.0.1:${deadPort}/agent`;
    const wrongPath = `ws://127.0.0.1:${connector.port}/elsewhere/agent`;
    const report = await runDoctor({
      connectors: [dead, wrongPath, connector.url],
      store: enrolledStore(connector.url),
      timeoutMs: 2000,
      openSerial: fakeSerial,
    });
    expect(report.healthy).toBe(false);
    expect(find(report.checks, 'tcp', dead)[0]).toMatchObject({ verdict: 'FAIL', detail: `cannot connect to 127.0.0.1:${deadPort} (ECONNREFUSED)` });
    expect(find(report.checks, 'websocket', dead)).toEqual([]);
    // One verdict for the refused upgrade (not a second "closed before the connection was established" for the same probe).
    expect(find(report.checks, 'websocket', wrongPath)).toEqual([
      {
        verdict: 'FAIL',
        check: 'websocket',
        target: wrongPath,
        detail: 'upgrade refused with HTTP 404',
        hint: 'no agent endpoint at that path: the URL must be the connector endpoint ending in /agent',
      },
    ]);
    expect(find(report.checks, 'credential', connector.url)[0]!.verdict).toBe('OK');
    // The list came from the live connector.
    expect(find(report.checks, 'terminals')[0]!.detail).toBe(`3 terminal(s) assigned to this agent, from ${connector.url}`);
  });

  it('says what an upgrade refused for a budget (429) or a drain (503) means', async () => {
    const throttled = await startRefusingConnector(429, { 'Retry-After': '30' });
    const draining = await startRefusingConnector(503, { 'Retry-After': '5' });
    try {
      const report = await runDoctor({
        connectors: [throttled.url, draining.url],
        store: enrolledStore(throttled.url),
        timeoutMs: 2000,
        openSerial: fakeSerial,
      });
      expect([...find(report.checks, 'websocket', throttled.url), ...find(report.checks, 'websocket', draining.url)]).toMatchObject([
        {
          verdict: 'FAIL',
          detail: 'upgrade refused with HTTP 429',
          hint: 'too many connects: this credential (or this address, at the proxy) is over its budget; the agent waits for Retry-After and retries by itself',
        },
        { verdict: 'FAIL', detail: 'upgrade refused with HTTP 503', hint: expect.stringContaining('unavailable or shutting down') },
      ]);
    } finally {
      await Promise.all([throttled.close(), draining.close()]);
    }
  });

  it('says what to do when the agent is not enrolled', async () => {
    const store = new StateStore(mkdtempSync(path.join(tmpdir(), 'agent-doctor-')));
    const report = await runDoctor({ connectors: [connector.url], store, timeoutMs: 2000 });
    expect(report.healthy).toBe(false);
    expect(report.checks[0]).toMatchObject({ verdict: 'FAIL', check: 'credential', detail: 'not enrolled: no credential' });
    expect(report.checks[0]!.hint).toContain('payorch-agent enroll');
    expect(find(report.checks, 'websocket')[0]).toMatchObject({
      verdict: 'OK',
      detail: 'the agent endpoint answered (HTTP 401 without a credential, as expected)',
    });
    expect(find(report.checks, 'terminals')[0]!.verdict).toBe('SKIP');
  });
});
