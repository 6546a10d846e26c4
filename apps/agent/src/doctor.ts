import { lookup } from 'node:dns/promises';
import { isIP, createServer, Socket } from 'node:net';
import { connect as tlsConnect, type TLSSocket } from 'node:tls';

import { WebSocket } from 'ws';

import { attachWebSocket, DEFAULT_MAX_FRAME_BYTES, type LinkDescriptor, type TerminalEntry, type TunnelCloseInfo } from '@payorch/tunnel';

import { AGENT_SOFTWARE } from './bridge/link-bridge';
import { openSerialPort } from './bridge/serial';
import type { StateStore, StoredCredential } from './config';
import { AGENT_VERSION } from './version';

/** Sent on the doctor's upgrade: the connector authenticates and shakes hands, but takes no ownership (docs/tunnel.md §12.1). */
export const PROBE_HEADER = 'X-Payorch-Agent-Probe';

export type Verdict = 'OK' | 'FAIL' | 'SKIP';

export interface CheckResult {
  verdict: Verdict;
  /** dns | tcp | tls | websocket | credential | tunnel | terminals | terminal */
  check: string;
  target: string;
  detail: string;
  hint?: string;
}

export interface DoctorOptions {
  connectors: string[];
  store: StateStore;
  /** Per network step (DNS, TCP, TLS, upgrade, handshake, terminal). */
  timeoutMs?: number;
  /** Each check as soon as it is known (the CLI prints it). */
  onCheck?: (result: CheckResult) => void;
  /** Serial ports are opened with this (tests substitute). */
  openSerial?: (link: Extract<LinkDescriptor, { kind: 'serial' }>) => Promise<{ close(cb: (error?: Error | null) => void): void }>;
}

export interface DoctorReport {
  healthy: boolean;
  checks: CheckResult[];
}

/** `[OK]   tcp        wss://c.example/agent  connected to 10.0.0.5:443` — one line per check. */
export function formatCheck(result: CheckResult): string {
  const hint = result.hint && result.verdict === 'FAIL' ? ` — hint: ${result.hint}` : '';
  return `${`[${result.verdict}]`.padEnd(6)} ${result.check.padEnd(10)} ${result.target}  ${result.detail}${hint}`;
}

function withTimeout<T>(promise: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: NodeJS.Timeout;
  return Promise.race([
    promise,
    new Promise<never>((_, reject) => {
      timer = setTimeout(() => reject(Object.assign(new Error(`${what} timed out after ${ms} ms`), { code: 'ETIMEDOUT' })), ms);
    }),
  ]).finally(() => clearTimeout(timer));
}

function errCode(error: unknown): string {
  const e = error as NodeJS.ErrnoException;
  return e.code ?? e.message;
}

/** What to do about a network error code. */
function networkHint(code: string, what: string): string {
  switch (code) {
    case 'ENOTFOUND':
    case 'EAI_AGAIN':
      return `the name does not resolve: check the ${what} host name and the PC's DNS server`;
    case 'ECONNREFUSED':
      return `nothing listens there: is the ${what} up, and is the port right?`;
    case 'ETIMEDOUT':
      return `no answer: a firewall or proxy drops the traffic, or the ${what} is off`;
    case 'EHOSTUNREACH':
    case 'ENETUNREACH':
      return 'no route to that network: check the PC network settings (gateway, VPN)';
    case 'ECONNRESET':
      return 'the connection was reset: a proxy or firewall in between may block it';
    default:
      return `check the ${what} address and the network in between`;
  }
}

function tlsHint(code: string): string {
  if (/SELF_SIGNED|UNABLE_TO_GET_ISSUER|UNABLE_TO_VERIFY|CERT_UNTRUSTED/.test(code)) {
    return 'the certificate is not signed by a trusted CA: install the CA (NODE_EXTRA_CA_CERTS=/path/ca.pem) or fix the connector certificate; a TLS-inspecting proxy causes this too';
  }
  if (/EXPIRED|NOT_YET_VALID/.test(code)) return 'the certificate is outside its validity period: renew it, and check this PC clock (NTP)';
  if (/ALTNAME|HOSTNAME/.test(code)) return 'the certificate does not name this host: use the host name the certificate was issued for';
  return 'the TLS handshake failed: check that the port speaks TLS (wss://) and that no proxy intercepts it';
}

function httpHint(status: number): string {
  switch (status) {
    case 404:
      return 'no agent endpoint at that path: the URL must be the connector endpoint ending in /agent';
    case 426:
    case 400:
      return 'the server did not accept a WebSocket upgrade: a proxy in between must allow Upgrade/Connection headers';
    case 429:
      return 'too many connects: this credential (or this address, at the proxy) is over its budget; the agent waits for Retry-After and retries by itself';
    case 502:
    case 503:
    case 504:
      return 'the connector (or the proxy in front of it) is unavailable or shutting down: retry, then check the connector health';
    default:
      return 'this does not look like a payorch connector agent endpoint';
  }
}

/** Connects a TCP socket and closes it again. */
function tcpReach(host: string, port: number, timeoutMs: number): Promise<void> {
  return new Promise((resolve, reject) => {
    const socket = new Socket();
    const timer = setTimeout(() => {
      socket.destroy();
      reject(Object.assign(new Error('connect timed out'), { code: 'ETIMEDOUT' }));
    }, timeoutMs);
    socket.once('error', (error) => {
      clearTimeout(timer);
      socket.destroy();
      reject(error);
    });
    socket.connect(port, host, () => {
      clearTimeout(timer);
      socket.end();
      socket.destroy();
      resolve();
    });
  });
}

function tlsReach(address: string, servername: string, port: number, timeoutMs: number): Promise<{ protocol: string; subject: string; validTo: string }> {
  return new Promise((resolve, reject) => {
    const socket: TLSSocket = tlsConnect({ host: address, port, servername: isIP(servername) ? undefined : servername, ALPNProtocols: ['http/1.1'] }, () => {
      clearTimeout(timer);
      const cert = socket.getPeerCertificate();
      const result = { protocol: socket.getProtocol() ?? 'TLS', subject: String(cert.subject?.CN ?? servername), validTo: cert.valid_to ?? '?' };
      socket.end();
      socket.destroy();
      resolve(result);
    });
    const timer = setTimeout(() => {
      socket.destroy();
      reject(Object.assign(new Error('TLS handshake timed out'), { code: 'ETIMEDOUT' }));
    }, timeoutMs);
    socket.once('error', (error) => {
      clearTimeout(timer);
      socket.destroy();
      reject(error);
    });
  });
}

interface ProbeOutcome {
  terminals: TerminalEntry[] | null;
}

/**
 * The doctor: checks, per connector URL, DNS, TCP, TLS (wss), the WebSocket upgrade, the credential
 * (the real upgrade with the stored credential: 401 = refused) and the tunnel handshake (HELLO /
 * HELLO_ACK), then disconnects cleanly (close 1000). The upgrade carries PROBE_HEADER, so the
 * connector neither takes the agent over from a running agent nor records presence; it answers with
 * the agent's terminal list. Then every terminal in that list (or, when no connector answered, in
 * the list the last run received) is checked from this PC: TCP connect, listen port free, or the
 * serial port opens. Healthy = no FAIL.
 */
export async function runDoctor(options: DoctorOptions): Promise<DoctorReport> {
  const timeoutMs = options.timeoutMs ?? 5000;
  const checks: CheckResult[] = [];
  const record = (result: CheckResult) => {
    checks.push(result);
    options.onCheck?.(result);
  };

  let credential: StoredCredential | null = null;
  try {
    credential = options.store.readCredential();
  } catch (error) {
    record({
      verdict: 'FAIL',
      check: 'credential',
      target: options.store.credentialFile,
      detail: (error as Error).message,
      hint: 'enroll again with a new token',
    });
  }
  const connectors = options.connectors.length ? options.connectors : credential ? [credential.connector] : [];
  if (!connectors.length) {
    record({
      verdict: 'FAIL',
      check: 'config',
      target: '-',
      detail: 'no connector URL configured and not enrolled',
      hint: 'set "connectors" in the config file, or --connector wss://<host>/agent',
    });
  }
  if (!credential && checks.length === 0) {
    record({
      verdict: 'FAIL',
      check: 'credential',
      target: options.store.credentialFile,
      detail: 'not enrolled: no credential',
      hint: 'payorch-agent enroll --connector wss://<host>/agent --token pen_…',
    });
  }

  let terminals: { list: TerminalEntry[]; source: string } | null = null;
  for (const connector of connectors) {
    const outcome = await checkConnector(connector, credential, timeoutMs, record);
    if (!terminals && outcome.terminals) terminals = { list: outcome.terminals, source: `from ${connector}` };
  }

  if (!terminals) {
    const cached = safeReadTerminals(options.store);
    if (cached) terminals = { list: cached.terminals, source: `from the last run (${cached.receivedAt}), no connector sent a list now` };
  }
  if (!terminals) {
    record({
      verdict: 'SKIP',
      check: 'terminals',
      target: '-',
      detail: 'no terminal list: no connector answered and the agent has not run yet',
    });
  } else {
    record({ verdict: 'OK', check: 'terminals', target: '-', detail: `${terminals.list.length} terminal(s) assigned to this agent, ${terminals.source}` });
    for (const entry of terminals.list) record(await checkTerminal(entry, timeoutMs, options.openSerial));
  }
  return { healthy: checks.every((c) => c.verdict !== 'FAIL'), checks };
}

function safeReadTerminals(store: StateStore) {
  try {
    return store.readTerminals();
  } catch {
    return null;
  }
}

async function checkConnector(
  connector: string,
  credential: StoredCredential | null,
  timeoutMs: number,
  record: (result: CheckResult) => void,
): Promise<ProbeOutcome> {
  const none: ProbeOutcome = { terminals: null };
  const url = new URL(connector);
  const host = url.hostname.replace(/^\[|\]$/g, '');
  const port = Number(url.port || (url.protocol === 'wss:' ? 443 : 80));
  const fail = (check: string, detail: string, hint: string) => record({ verdict: 'FAIL', check, target: connector, detail, hint });
  const ok = (check: string, detail: string) => record({ verdict: 'OK', check, target: connector, detail });

  // DNS
  let address = host;
  if (isIP(host)) ok('dns', `${host} is an IP address`);
  else {
    try {
      const addresses = await withTimeout(lookup(host, { all: true }), timeoutMs, 'DNS lookup');
      address = addresses[0]!.address;
      ok('dns', `${host} resolves to ${addresses.map((a) => a.address).join(', ')}`);
    } catch (error) {
      fail('dns', `${host} does not resolve (${errCode(error)})`, networkHint(errCode(error), 'connector'));
      return none;
    }
  }
  // TCP
  try {
    await tcpReach(address, port, timeoutMs);
    ok('tcp', `connected to ${address}:${port}`);
  } catch (error) {
    fail('tcp', `cannot connect to ${address}:${port} (${errCode(error)})`, networkHint(errCode(error), 'connector'));
    return none;
  }
  // TLS
  if (url.protocol === 'wss:') {
    try {
      const tls = await tlsReach(address, host, port, timeoutMs);
      ok('tls', `${tls.protocol}, certificate for ${tls.subject} valid until ${tls.validTo}`);
    } catch (error) {
      fail('tls', `TLS to ${host}:${port} failed (${errCode(error)})`, tlsHint(errCode(error)));
      return none;
    }
  } else {
    record({ verdict: 'SKIP', check: 'tls', target: connector, detail: 'ws:// is not encrypted: use wss:// outside local development' });
  }
  // WebSocket upgrade, credential, tunnel handshake
  return probe(connector, credential, timeoutMs, record);
}

function probe(connector: string, credential: StoredCredential | null, timeoutMs: number, record: (result: CheckResult) => void): Promise<ProbeOutcome> {
  const result = (verdict: Verdict, check: string, detail: string, hint?: string) =>
    record({ verdict, check, target: connector, detail, ...(hint && { hint }) });
  return new Promise<ProbeOutcome>((resolve) => {
    let settled = false;
    const done = (outcome: ProbeOutcome) => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      resolve(outcome);
    };
    const headers: Record<string, string> = { 'X-Payorch-Agent-Version': AGENT_VERSION, [PROBE_HEADER]: 'doctor' };
    if (credential) headers.Authorization = `Bearer ${credential.credential}`;
    const ws = new WebSocket(connector, { headers, handshakeTimeout: timeoutMs, maxPayload: DEFAULT_MAX_FRAME_BYTES });
    let stage: 'upgrade' | 'handshake' | 'terminals' = 'upgrade';
    const timer = setTimeout(() => {
      if (stage === 'upgrade')
        result('FAIL', 'websocket', `no upgrade answer within ${timeoutMs} ms`, 'a proxy may hold WebSocket upgrades: allow Upgrade on the /agent path');
      else if (stage === 'handshake')
        result('FAIL', 'tunnel', `no HELLO_ACK within ${timeoutMs} ms`, 'the endpoint accepted the upgrade but does not speak the payorch tunnel');
      else result('OK', 'tunnel', 'handshake done; the connector sent no terminal list (an older connector without probe support?)');
      ws.terminate();
      done({ terminals: null });
    }, timeoutMs * 2);
    ws.once('unexpected-response', (_req, res) => {
      const status = res.statusCode ?? 0;
      res.resume();
      ws.terminate();
      if (status === 401 || status === 403) {
        if (credential) {
          result('OK', 'websocket', `the agent endpoint answered (HTTP ${status} to the upgrade)`);
          result(
            'FAIL',
            'credential',
            `the connector refused the credential of agent ${credential.agentId} (HTTP ${status})`,
            'the agent was revoked, deleted or re-enrolled elsewhere: create a new enrollment token and run payorch-agent enroll',
          );
        } else {
          result('OK', 'websocket', `the agent endpoint answered (HTTP ${status} without a credential, as expected)`);
        }
      } else {
        result('FAIL', 'websocket', `upgrade refused with HTTP ${status}`, httpHint(status));
      }
      done({ terminals: null });
    });
    ws.once('error', (error) => {
      // An answered upgrade was judged above; terminating it then reports "closed before the connection was established".
      if (stage !== 'upgrade' || settled) return;
      result('FAIL', 'websocket', `upgrade failed (${errCode(error)})`, networkHint(errCode(error), 'connector'));
      done({ terminals: null });
    });
    ws.once('open', () => {
      stage = 'handshake';
      result('OK', 'websocket', 'upgraded to a WebSocket (HTTP 101)');
      if (credential) result('OK', 'credential', `accepted for agent ${credential.agentId}`);
      const mux = attachWebSocket(ws, { role: 'agent', software: AGENT_SOFTWARE, capabilities: ['serial', 'tcp-listen'], heartbeat: false });
      let terminals: TerminalEntry[] | null = null;
      mux.onReady((session) => {
        stage = 'terminals';
        result('OK', 'tunnel', `handshake done: protocol v${session.version} with ${session.peerSoftware}`);
      });
      mux.onControl((message) => {
        if (message.type !== 'terminal-list') return;
        terminals = message.terminals;
        // Done: disconnect cleanly (close 1000), the connector keeps nothing of this probe.
        mux.close('doctor done');
      });
      mux.onClose((info: TunnelCloseInfo) => {
        if (stage === 'handshake') {
          result(
            'FAIL',
            'tunnel',
            `handshake failed: ${info.code}${info.message ? ` (${info.message})` : ''}`,
            info.code === 'VERSION_REJECTED' ? 'the connector does not speak this agent version: upgrade the agent' : 'check the connector logs',
          );
        }
      });
      ws.once('close', () => done({ terminals }));
    });
    // Credential-less upgrades that the server accepts anyway end here too.
    if (!credential) ws.once('close', () => done({ terminals: null }));
  });
}

async function checkTerminal(entry: TerminalEntry, timeoutMs: number, openSerial: DoctorOptions['openSerial']): Promise<CheckResult> {
  const { link } = entry;
  const base = { check: 'terminal', target: `${entry.terminalId} (${entry.protocol})` };
  switch (link.kind) {
    case 'tcp-connect':
    case 'relay-tcp':
      try {
        await tcpReach(link.host, link.port, link.connectTimeoutMs ?? timeoutMs);
        return { ...base, verdict: 'OK', detail: `tcp ${link.host}:${link.port} reachable` };
      } catch (error) {
        return {
          ...base,
          verdict: 'FAIL',
          detail: `tcp ${link.host}:${link.port} not reachable (${errCode(error)})`,
          hint: networkHint(errCode(error), 'terminal'),
        };
      }
    case 'tcp-listen':
      try {
        await new Promise<void>((resolve, reject) => {
          const server = createServer();
          server.once('error', reject);
          server.listen(link.port, link.host, () => server.close(() => resolve()));
        });
        return { ...base, verdict: 'OK', detail: `port ${link.host ?? '*'}:${link.port} free: the terminal can dial this PC there` };
      } catch (error) {
        const code = errCode(error);
        return {
          ...base,
          verdict: 'FAIL',
          detail: `cannot listen on ${link.host ?? '*'}:${link.port} (${code})`,
          hint:
            code === 'EACCES'
              ? 'ports below 1024 need privileges: use a higher port for the terminal'
              : 'another program uses that port (a running agent holds it only while it waits for the terminal): stop it or change the port',
        };
      }
    case 'serial':
      try {
        const port = await withTimeout((openSerial ?? openSerialPort)(link), timeoutMs, 'serial open');
        await new Promise<void>((resolve) => port.close(() => resolve()));
        return { ...base, verdict: 'OK', detail: `serial ${link.path} opens (${link.baudRate} baud)` };
      } catch (error) {
        const message = (error as Error).message.slice(0, 200);
        const hint = /not installed/.test(message)
          ? 'put node_modules/serialport beside the executable (docs/runbooks/agent.md, "Serial terminals")'
          : /ENOENT|No such file|cannot find/i.test(message)
            ? 'the device does not exist: check the cable/USB adapter and the path (ls /dev/ttyUSB* /dev/ttyS*; COMx on Windows)'
            : /EACCES|Permission denied|Access denied/i.test(message)
              ? "the agent's user may not open it: add it to the dialout group (Linux)"
              : 'another program holds the port (vendor tools; a running agent while a payment is in progress): close it and retry';
        return { ...base, verdict: 'FAIL', detail: `serial ${link.path} does not open (${message})`, hint };
      }
  }
}
