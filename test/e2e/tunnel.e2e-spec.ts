import { WebSocket } from 'ws';

import { waitFor } from '@payorch/testing';
import { attachWebSocket } from '@payorch/tunnel';

import { echoTerminal, failoverProxy, type RunningConnector, TunnelHarness } from './support/tunnel-harness';

/**
 * Agent ↔ connector tunnels with two connector instances on one database and one Redis prefix:
 * presence, terminal list, command routing through the Redis bus, tenant isolation, reconnects and
 * failover. Agents run in process (the CLI's TunnelClient + LinkBridge); terminals are TCP echo servers.
 */
describe('tunnel: agents, presence, command bus and failover', () => {
  const h = new TunnelHarness();
  let a: RunningConnector;
  let b: RunningConnector;
  const terminals: Array<{ close: () => Promise<void> }> = [];

  const newTerminal = async () => {
    const t = await echoTerminal();
    terminals.push(t);
    return t;
  };

  beforeAll(async () => {
    await h.start();
    a = await h.connector('conn-a');
    b = await h.connector('conn-b');
  });

  afterAll(async () => {
    await h.stop();
    await Promise.all(terminals.map((t) => t.close()));
  });

  it('pushes the terminal list, brings terminals online and publishes presence events', async () => {
    const agent = await h.enrolledAgent(a.url);
    const t1 = await newTerminal();
    const online = await h.terminal(agent, { kind: 'tcp', host: '127.0.0.1', port: t1.port });
    const unreachable = await h.terminal(agent, { kind: 'tcp', host: '127.0.0.1', port: 1 });
    const running = h.runAgent(a.url, agent.credential);

    await waitFor(() => running.bridge.terminalList.length === 2, { timeoutMs: 10_000, intervalMs: 50, what: 'terminal list' });
    expect(running.bridge.terminalList.map((t) => t.terminalId).sort()).toEqual([online, unreachable].sort());
    expect(running.bridge.terminalList.find((t) => t.terminalId === online)?.link).toEqual({ kind: 'tcp-connect', host: '127.0.0.1', port: t1.port });

    await waitFor(async () => (await h.terminalStatus(online)).status === 'ONLINE', { timeoutMs: 10_000, intervalMs: 50, what: 'terminal online' });
    await waitFor(async () => (await h.terminalStatus(unreachable)).status === 'OFFLINE', { timeoutMs: 10_000, intervalMs: 50, what: 'terminal offline' });
    expect((await h.terminalStatus(online)).lastSeenAt).toBeInstanceOf(Date);
    expect(t1.connections()).toBeGreaterThanOrEqual(1);
    const events = await h.events(agent.tenantId, 'terminal.online');
    expect(events.map((e) => e.subjectId)).toContain(online);
    expect((await h.events(agent.tenantId, 'agent.online'))[0]?.data).toMatchObject({ agentId: agent.agentId, instance: 'conn-a' });
    expect(await h.redis.get(`${h.prefix}:owner:agent:${agent.agentId}`)).toBe('conn-a');

    running.stop();
    await waitFor(async () => (await h.terminalStatus(online)).status === 'OFFLINE', { timeoutMs: 10_000, intervalMs: 50, what: 'offline after tunnel close' });
    expect((await h.events(agent.tenantId, 'agent.offline')).length).toBe(1);
    await waitFor(async () => (await h.redis.get(`${h.prefix}:owner:agent:${agent.agentId}`)) === null, {
      timeoutMs: 5_000,
      intervalMs: 50,
      what: 'ownership released',
    });
  });

  it('routes commands to the instance holding the agent, and answers TERMINAL_OFFLINE / NOT_FOUND otherwise', async () => {
    const agent1 = await h.enrolledAgent(a.url);
    const agent2 = await h.enrolledAgent(b.url);
    const t1 = await h.terminal(agent1, { kind: 'tcp', host: '127.0.0.1', port: (await newTerminal()).port });
    const t2 = await h.terminal(agent2, { kind: 'tcp', host: '127.0.0.1', port: (await newTerminal()).port });
    h.runAgent(a.url, agent1.credential);
    h.runAgent(b.url, agent2.credential);
    await waitFor(async () => (await h.terminalStatus(t1)).status === 'ONLINE' && (await h.terminalStatus(t2)).status === 'ONLINE', {
      timeoutMs: 15_000,
      intervalMs: 50,
    });

    const dispatcher = h.dispatcher();
    const r1 = await dispatcher.dispatch({ kind: 'terminal.refresh_info', tenantId: agent1.tenantId, terminalId: t1 });
    const r2 = await dispatcher.dispatch({ kind: 'terminal.refresh_info', tenantId: agent2.tenantId, terminalId: t2 });
    expect(r1).toEqual({ ok: true, result: { info: null, instance: 'conn-a' } });
    expect(r2).toEqual({ ok: true, result: { info: null, instance: 'conn-b' } });

    // Tenant isolation: tenant 2 naming tenant 1's terminal finds nothing (RLS), and the owner instance
    // would not serve it either.
    expect(await dispatcher.dispatch({ kind: 'terminal.refresh_info', tenantId: agent2.tenantId, terminalId: t1 })).toMatchObject({
      ok: false,
      code: 'NOT_FOUND',
    });
    expect(a.hub.find(agent2.tenantId, t1)).toBeUndefined();
    expect(a.hub.find(agent1.tenantId, t1)).toBeDefined();

    const idle = await h.enrolledAgent(a.url);
    const t3 = await h.terminal(idle, { kind: 'tcp', host: '127.0.0.1', port: 9 });
    expect(await dispatcher.dispatch({ kind: 'terminal.refresh_info', tenantId: idle.tenantId, terminalId: t3 })).toMatchObject({
      ok: false,
      code: 'TERMINAL_OFFLINE',
    });
    // Operations are not wired in this connector: an explicit error, not a silent success.
    expect(
      await dispatcher.dispatch({ kind: 'operation.execute', tenantId: agent1.tenantId, terminalId: t1, operationId: '00000000-0000-4000-8000-000000000001' }),
    ).toMatchObject({ ok: false, code: 'INTERNAL' });
  });

  it('never lets an agent open links to terminals that are not in its own list', async () => {
    const agent1 = await h.enrolledAgent(a.url);
    const other = await h.enrolledAgent(a.url);
    const foreign = await newTerminal();
    const foreignId = await h.terminal(other, { kind: 'tcp', host: '127.0.0.1', port: foreign.port });
    const running = h.runAgent(a.url, agent1.credential);
    await waitFor(
      () =>
        a.tunnels.session(agent1.agentId)?.mux.state === 'open' && running.bridge.terminalList.length === 0 && a.hub.terminalsOf(agent1.agentId).length === 0
          ? true
          : undefined,
      { timeoutMs: 15_000, intervalMs: 50 },
    );
    const mux = a.tunnels.session(agent1.agentId)!.mux;
    // Even a connector asking for another tenant's terminal link is refused by the agent.
    await expect(mux.open({ kind: 'tcp-connect', host: '127.0.0.1', port: foreign.port }, { terminalId: foreignId })).rejects.toMatchObject({
      code: 'NOT_ALLOWED',
    });
    await expect(mux.open({ kind: 'relay-tcp', host: '127.0.0.1', port: foreign.port })).rejects.toMatchObject({ code: 'NOT_ALLOWED' });
    expect(foreign.connections()).toBe(0);
    expect(a.hub.find(agent1.tenantId, foreignId)).toBeUndefined();
  });

  it('rejects a forged credential before any tunnel frame, and an agent with no common protocol version in the handshake', async () => {
    const status = await new Promise<number | undefined>((resolve) => {
      const ws = new WebSocket(`${a.url.replace('http', 'ws')}/agent`, { headers: { Authorization: `Bearer pac_aaaaaaaaaaaa_${'B'.repeat(43)}` } });
      ws.once('unexpected-response', (_req, res) => resolve(res.statusCode));
      ws.once('open', () => resolve(undefined));
      ws.once('error', () => undefined);
    });
    expect(status).toBe(401);

    // A valid credential with a wrong protocol version is refused in the handshake.
    const agent = await h.enrolledAgent(a.url);
    const ws = new WebSocket(`${a.url.replace('http', 'ws')}/agent`, { headers: { Authorization: `Bearer ${agent.credential}` } });
    const mux = attachWebSocket(ws, { role: 'agent', software: 'old-agent/0.0.1', supportedVersions: [9] });
    const closed = await new Promise<{ code: string }>((resolve) => mux.onClose(resolve));
    expect(closed.code).toBe('VERSION_REJECTED');
  });

  it('reconnects an idle agent whose socket dropped, and brings its terminals back online', async () => {
    const agent = await h.enrolledAgent(a.url);
    const t = await h.terminal(agent, { kind: 'tcp', host: '127.0.0.1', port: (await newTerminal()).port });
    h.runAgent(a.url, agent.credential);
    await waitFor(async () => (await h.terminalStatus(t)).status === 'ONLINE', { timeoutMs: 15_000, intervalMs: 50 });
    const first = a.tunnels.session(agent.agentId)!;

    // Drop the socket under the tunnel (NAT timeout, Wi-Fi hiccup).
    (first.mux as unknown as { transport: { terminate(): void } }).transport.terminate();
    await waitFor(
      () => {
        const next = a.tunnels.session(agent.agentId);
        return next && next !== first && next.mux.state === 'open';
      },
      { timeoutMs: 15_000, intervalMs: 50 },
    );
    // The status row may still say ONLINE from the first tunnel: what proves the terminal is back is a
    // command served through the new one (its terminals are re-registered once the list is pushed again).
    const dispatcher = h.dispatcher();
    const reply = await waitFor(
      async () => {
        const r = await dispatcher.dispatch({ kind: 'terminal.refresh_info', tenantId: agent.tenantId, terminalId: t });
        return r.ok ? r : undefined;
      },
      { timeoutMs: 15_000, intervalMs: 50, what: 'a command served through the new tunnel' },
    );
    expect(reply).toMatchObject({ ok: true, result: { instance: 'conn-a' } });
    expect((await h.terminalStatus(t)).status).toBe('ONLINE');
  });

  it("reads a terminal's info at set-up only when the stored one is stale (a reconnect storm does not interrogate every terminal again)", async () => {
    let reads = 0;
    const driverFactory = () => ({
      protocol: 'joinproto' as const,
      execute: async () => ({ state: 'failed' as const, reason: 'not used' }),
      cancel: async () => 'not_running' as const,
      recover: async () => ({ state: 'unknown' as const }),
      terminalInfo: async () => ({ model: 'T-100', reads: ++reads }),
      close: async () => undefined,
    });
    const c = await h.connector('conn-info', {}, { driverFactory: driverFactory as never });
    const agent = await h.enrolledAgent(c.url);
    const t = await h.terminal(agent, { kind: 'tcp', host: '127.0.0.1', port: (await newTerminal()).port });
    const dispatcher = h.dispatcher();
    /** Connects the agent, waits for the terminal ONLINE, then a refresh through the terminal's queue (after any set-up read). */
    const connectAndRefresh = async () => {
      await h.owner.terminal.update({ where: { id: t }, data: { status: 'OFFLINE' } });
      const running = h.runAgent(c.url, agent.credential);
      await waitFor(async () => (await h.terminalStatus(t)).status === 'ONLINE', { timeoutMs: 15_000, intervalMs: 50, what: 'terminal online' });
      expect(await dispatcher.dispatch({ kind: 'terminal.refresh_info', tenantId: agent.tenantId, terminalId: t })).toMatchObject({ ok: true });
      running.stop();
      await waitFor(() => c.tunnels.session(agent.agentId) === undefined, { timeoutMs: 10_000, intervalMs: 50, what: 'tunnel closed' });
    };

    // Never read: the set-up reads it (1), then the explicit refresh (2).
    await connectAndRefresh();
    expect(reads).toBe(2);
    const stored = await h.owner.terminal.findUniqueOrThrow({ where: { id: t }, select: { info: true, infoReadAt: true } });
    expect(stored.info).toEqual({ model: 'T-100', reads: 2 });
    expect(stored.infoReadAt).toBeInstanceOf(Date);

    // Fresh: the reconnect probes the link but does not read the info; only the explicit refresh does.
    await connectAndRefresh();
    expect(reads).toBe(3);

    // Older than CONNECTOR_TERMINAL_INFO_MAX_AGE_MS (6 h by default): read again at set-up.
    await h.owner.terminal.update({ where: { id: t }, data: { infoReadAt: new Date(Date.now() - 7 * 60 * 60 * 1000) } });
    await connectAndRefresh();
    expect(reads).toBe(5);
    await h.stopConnector(c);
  });

  it('fails over: instance stopped → the agent reconnects to the other one, terminals come back online, commands follow', async () => {
    const c = await h.connector('conn-c');
    const proxy = await failoverProxy(() => [c.port, b.port]);
    terminals.push(proxy);
    const proxyUrl = `http://127.0.0.1:${proxy.port}`;
    const agent = await h.enrolledAgent(proxyUrl);
    const t = await h.terminal(agent, { kind: 'tcp', host: '127.0.0.1', port: (await newTerminal()).port });
    h.runAgent(proxyUrl, agent.credential);
    await waitFor(async () => (await h.terminalStatus(t)).status === 'ONLINE', { timeoutMs: 15_000, intervalMs: 50 });
    const dispatcher = h.dispatcher();
    expect(await dispatcher.dispatch({ kind: 'terminal.refresh_info', tenantId: agent.tenantId, terminalId: t })).toMatchObject({
      ok: true,
      result: { instance: 'conn-c' },
    });

    await h.stopConnector(c);
    await waitFor(() => b.tunnels.session(agent.agentId)?.mux.state === 'open', { timeoutMs: 15_000, intervalMs: 50, what: 'agent on conn-b' });
    await waitFor(async () => (await h.terminalStatus(t)).status === 'ONLINE', { timeoutMs: 10_000, intervalMs: 50, what: 'terminal back online' });
    await waitFor(async () => (await h.redis.get(`${h.prefix}:owner:agent:${agent.agentId}`)) === 'conn-b', { timeoutMs: 15_000, intervalMs: 50 });
    expect(await dispatcher.dispatch({ kind: 'terminal.refresh_info', tenantId: agent.tenantId, terminalId: t })).toMatchObject({
      ok: true,
      result: { instance: 'conn-b' },
    });
    const offline = await h.events(agent.tenantId, 'agent.offline');
    const online = await h.events(agent.tenantId, 'agent.online');
    expect(online.map((e) => (e.data as { instance: string }).instance)).toEqual(['conn-c', 'conn-b']);
    expect(offline.length).toBeLessThanOrEqual(1);
  });

  it('serves 50 terminals behind one agent', async () => {
    const agent = await h.enrolledAgent(b.url);
    const ids: string[] = [];
    for (let i = 0; i < 50; i += 1) ids.push(await h.terminal(agent, { kind: 'tcp', host: '127.0.0.1', port: (await newTerminal()).port }));
    const running = h.runAgent(b.url, agent.credential);
    await waitFor(() => running.bridge.terminalList.length === 50, { timeoutMs: 10_000, intervalMs: 50, what: 'list of 50' });
    await waitFor(async () => (await h.owner.terminal.count({ where: { agentId: agent.agentId, status: 'ONLINE' } })) === 50, {
      timeoutMs: 20_000,
      intervalMs: 50,
      what: '50 online',
    });
    const dispatcher = h.dispatcher();
    const replies = await Promise.all(ids.map((terminalId) => dispatcher.dispatch({ kind: 'terminal.refresh_info', tenantId: agent.tenantId, terminalId })));
    expect(replies.every((r) => r.ok)).toBe(true);
  });
});
