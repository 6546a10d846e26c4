import { randomUUID } from 'node:crypto';

import { upgradeAnswer, waitFor } from '@payorch/testing';
import { attachWebSocket, encodeFrame, type Multiplexer } from '@payorch/tunnel';
import { WebSocket } from 'ws';

import { TerminalPresence } from '../../apps/device-connector/src/terminals/terminal-presence';
import { type EnrolledAgent, type RunningConnector, TunnelHarness } from '../e2e/support/tunnel-harness';

interface Dialled {
  ws: WebSocket;
  mux: Multiplexer;
  /** The connector's first `terminal-list`: its set-up is done. */
  listed: Promise<void>;
  closed: Promise<{ code: number; reason: string }>;
}

/**
 * A compromised till PC (docs/security.md, "Hostile agents"): it holds a valid agent credential and speaks the tunnel
 * protocol with a client it controls. What it sends must cost the connector a bounded amount — of its event loop, its
 * memory, PostgreSQL — whatever its rate, and what it says about its terminals is stored only in a form PostgreSQL
 * takes. Loopback only: the terminals' links go to the attacker's own client, which accepts them and dials nothing.
 */
describe('hostile agent on its tunnel (docs/security.md: hostile agents)', () => {
  const h = new TunnelHarness();
  let c: RunningConnector;
  const sockets: WebSocket[] = [];

  /** Upgrades with `credential` as the agent CLI does, with a tunnel of our own (no heartbeat; every link the connector opens is accepted). */
  function dial(connector: RunningConnector, credential: string, headers: Record<string, string> = {}): Dialled {
    const ws = new WebSocket(`${connector.url.replace('http', 'ws')}/agent`, {
      headers: { Authorization: `Bearer ${credential}`, 'X-Payorch-Agent-Version': '0.1.0', ...headers },
    });
    ws.on('error', () => undefined);
    sockets.push(ws);
    const mux = attachWebSocket(ws, { role: 'agent', software: 'hostile-agent/1.0', heartbeat: false });
    mux.setOpenHandler((request) => void request.accept());
    const listed = new Promise<void>((resolve) => mux.onControl((message) => message.type === 'terminal-list' && resolve()));
    const closed = new Promise<{ code: number; reason: string }>((resolve) => ws.once('close', (code, reason) => resolve({ code, reason: reason.toString() })));
    return { ws, mux, listed, closed };
  }

  /** The HTTP answer to an upgrade that is refused (status and Retry-After), or 101. */
  function upgradeStatus(connector: RunningConnector, credential: string, headers: Record<string, string> = {}) {
    return upgradeAnswer(`${connector.url}/agent`, { Authorization: `Bearer ${credential}`, ...headers });
  }

  const sendControl = (ws: WebSocket, message: unknown) => ws.send(encodeFrame({ type: 'CONTROL', message: message as never }));

  async function agentWithTerminal(connector: RunningConnector): Promise<EnrolledAgent & { terminalId: string }> {
    const agent = await h.enrolledAgent(connector.url);
    const terminalId = await h.terminal(agent, { kind: 'tcp', host: '127.0.0.1', port: 7001 });
    return { ...agent, terminalId };
  }

  /** An agent connected and set up, its terminal ONLINE (the set-up's link probe went through our client). */
  async function onlineAgent(connector: RunningConnector) {
    const agent = await agentWithTerminal(connector);
    const tunnel = dial(connector, agent.credential);
    await tunnel.listed;
    await waitFor(async () => (await h.terminalStatus(agent.terminalId)).status === 'ONLINE', { what: 'terminal online after the set-up' });
    return { agent, tunnel };
  }

  beforeAll(async () => {
    await h.start();
    c = await h.connector('hostile-1', {
      TUNNEL_AGENT_CONNECTS_PER_MINUTE: '3',
      TUNNEL_CONNECTION_FRAMES_PER_MINUTE: '100',
      TUNNEL_AGENT_REPORT_INTERVAL_MS: '500',
    });
  });

  afterAll(async () => {
    for (const ws of sockets) ws.terminate();
    await h.stop();
  });

  afterEach(() => jest.restoreAllMocks());

  it('answers 429 with Retry-After to a credential that connects in a loop (doctor probes included), not to another agent', async () => {
    const looping = await h.enrolledAgent(c.url);
    for (let i = 0; i < 3; i++) {
      const tunnel = dial(c, looping.credential);
      await tunnel.listed;
    }
    const refused = await upgradeStatus(c, looping.credential);
    expect(refused.status).toBe(429);
    expect(Number(refused.retryAfter)).toBeGreaterThanOrEqual(1);
    expect((await upgradeStatus(c, looping.credential, { 'X-Payorch-Agent-Probe': '1' })).status).toBe(429);

    // Only the credential itself spends its budget: wrong secrets under another agent's lookup prefix are 401 and leave
    // that agent's connects alone.
    const other = await h.enrolledAgent(c.url);
    for (let i = 0; i < 5; i++) expect((await upgradeStatus(c, `${other.credential.slice(0, -4)}AAAA`)).status).toBe(401);
    expect((await upgradeStatus(c, other.credential)).status).toBe(101);
  });

  it('closes the tunnel of an agent that floods PINGs (1002), and only that one', async () => {
    const { tunnel: bystander } = await onlineAgent(c);
    const flooder = await h.enrolledAgent(c.url);
    const tunnel = dial(c, flooder.credential);
    await tunnel.listed;

    for (let i = 0; i < 150; i++) tunnel.ws.send(encodeFrame({ type: 'PING', timestamp: i }));

    expect(await tunnel.closed).toEqual({ code: 1002, reason: expect.stringMatching(/^PROTOCOL_ERROR: connection frame budget exhausted/) });
    expect(bystander.mux.state).toBe('open');
  });

  it('counts only the pong that answers its ping as a sign of life: pongs of its own are no presence writes', async () => {
    const seen = jest.spyOn(c.app.get(TerminalPresence), 'agentSeen');
    const agent = await h.enrolledAgent(c.url);
    const tunnel = dial(c, agent.credential);
    await tunnel.listed;

    for (let i = 0; i < 50; i++) tunnel.ws.pong();
    // Handled in order on the connector: once it answered this ping, it had read every pong before it.
    await new Promise<void>((resolve) => {
      tunnel.ws.once('pong', () => resolve());
      tunnel.ws.ping();
    });

    expect(seen).not.toHaveBeenCalled();
  });

  it('writes a terminal flapped by its agent at most once per TUNNEL_AGENT_REPORT_INTERVAL_MS, ending in its last reported state', async () => {
    const { agent, tunnel } = await onlineAgent(c);
    const marks = jest.spyOn(c.app.get(TerminalPresence), 'terminal');
    const floodStart = new Date();

    for (let i = 0; i < 60; i++)
      sendControl(tunnel.ws, { type: 'link-status', terminalId: agent.terminalId, state: i % 2 === 0 ? 'error' : 'up', detail: `flap ${i}` });
    sendControl(tunnel.ws, { type: 'link-status', terminalId: agent.terminalId, state: 'error', detail: 'last' });

    // The first report at once, the rest held for the interval and written as the last one.
    await waitFor(() => marks.mock.calls.some((call) => call[3] === 'last'), { what: 'the last report written' });
    expect(marks).toHaveBeenCalledTimes(2);
    expect((await h.terminalStatus(agent.terminalId)).status).toBe('OFFLINE');
    const events = await h.owner.domainEvent.findMany({
      where: { subjectId: agent.terminalId, createdAt: { gte: floodStart }, type: { in: ['terminal.online', 'terminal.offline'] } },
    });
    expect(events.length).toBeLessThanOrEqual(2);
    expect(tunnel.mux.state).toBe('open');
  });

  it('stores a link report’s detail with a NUL made storable (it failed the tenant’s presence batch)', async () => {
    const { agent, tunnel } = await onlineAgent(c);

    sendControl(tunnel.ws, { type: 'link-status', terminalId: agent.terminalId, state: 'error', detail: 'refused\u0000' });

    await waitFor(async () => (await h.terminalStatus(agent.terminalId)).status === 'OFFLINE', { what: 'terminal offline after its error report' });
    const [event] = await h.owner.domainEvent.findMany({ where: { subjectId: agent.terminalId, type: 'terminal.offline' } });
    expect(event?.data).toMatchObject({ detail: 'refused\uFFFD' });
  });

  it('ignores what an agent says of a terminal that is not its own (another agent’s, another tenant’s)', async () => {
    const { agent: victim } = await onlineAgent(c);
    const { agent: attacker, tunnel } = await onlineAgent(c);
    const foreign = [victim.terminalId, randomUUID()];

    sendControl(tunnel.ws, {
      type: 'agent-status',
      software: 'hostile-agent/1.0',
      uptimeMs: 1,
      links: foreign.map((terminalId) => ({ terminalId, state: 'error', detail: 'taken over' })),
    });
    // A report of its own terminal in the same flush, to know when the others were passed on and dropped.
    sendControl(tunnel.ws, { type: 'link-status', terminalId: attacker.terminalId, state: 'error' });

    await waitFor(async () => (await h.terminalStatus(attacker.terminalId)).status === 'OFFLINE', { what: "the attacker's own terminal offline" });
    expect((await h.terminalStatus(victim.terminalId)).status).toBe('ONLINE');
  });

  it('cuts an agent that floods without reading (SEND_OVERFLOW) before its unread answers pass TUNNEL_MAX_UNFLUSHED_BYTES', async () => {
    const unbounded = await h.connector('hostile-unread', {
      TUNNEL_CONNECTION_FRAMES_PER_MINUTE: '10000000',
      TUNNEL_MAX_UNFLUSHED_BYTES: String(2 * 1024 * 1024),
    });
    const agent = await h.enrolledAgent(unbounded.url);
    const tunnel = dial(unbounded, agent.credential);
    await tunnel.listed;
    const mux = unbounded.tunnels.session(agent.agentId)!.mux;
    // The attacker's client stops reading its socket: the connector's PONGs pile up in the kernel, then in its process.
    (tunnel.ws as unknown as { _socket: { pause(): void } })._socket.pause();

    const ping = encodeFrame({ type: 'PING', timestamp: 1 });
    for (let sent = 0; mux.state === 'open' && sent < 3_000_000; sent += 10_000) {
      for (let i = 0; i < 10_000; i++) tunnel.ws.send(ping);
      await new Promise((resolve) => setTimeout(resolve, 5));
    }

    await waitFor(() => mux.state === 'closed', { timeoutMs: 20_000, what: 'the tunnel cut' });
    expect(mux.closeReason?.code).toBe('SEND_OVERFLOW');
    // Checked as each frame arrives: at most one answer beyond the bound was ever waiting.
    const unflushed = Number(/^(\d+) bytes sent and not flushed/.exec(mux.closeReason!.message)?.[1]);
    expect(unflushed).toBeGreaterThan(2 * 1024 * 1024);
    expect(unflushed).toBeLessThanOrEqual(2 * 1024 * 1024 + 1024);
  }, 60_000);

  it('refuses an enrollment whose version is not a version (a NUL made it a 500), and the token stays usable', async () => {
    const { token } = await h.pendingAgent();
    const enroll = (version: string) =>
      fetch(`${c.url}/agent/enroll`, {
        method: 'POST',
        headers: { 'Content-Type': 'application/json' },
        body: JSON.stringify({ token, version }),
      });

    const refused = await enroll('1.0\u0000<b>');
    expect(refused.status).toBe(400);
    expect(((await refused.json()) as { error: { code: string } }).error.code).toBe('VALIDATION_FAILED');
    expect((await enroll('1.0.0')).status).toBe(200);
  });
});
