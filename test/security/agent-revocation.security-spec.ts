import { type AddressInfo, createServer, type Server, type Socket } from 'node:net';

import { Redis } from 'ioredis';
import { Client } from 'pg';

import { databaseAgentResolver, RedisTerminalCommandDispatcher } from '@payorch/command-bus';
import { connectorConfigSchema, loadConfig } from '@payorch/config';
import { announceKeysChanged, redisEventSink } from '@payorch/operations';
import { waitFor } from '@payorch/testing';
import { JoinprotoTerminalSimulator } from '@payorch/testing/joinproto-sim';
import { AGENT_CLOSE_CODES } from '@payorch/tunnel';

import { LinkBridge } from '../../apps/agent/src/bridge/link-bridge';
import { AdminService } from '../../apps/api-gateway/src/admin/admin.service';
import { TunnelClient } from '../../apps/agent/src/bridge/tunnel-client';
import { createConnectorApp } from '../../apps/device-connector/src/bootstrap';
import { TerminalHub } from '../../apps/device-connector/src/terminals/terminal-hub';
import { AgentTunnelServer } from '../../apps/device-connector/src/tunnel/agent-tunnel.server';
import { GatewaySession, idem } from '../e2e/support/gateway-session';
import { silent } from '../e2e/support/tunnel-harness';

type Connector = Awaited<ReturnType<typeof startConnector>>;

async function startConnector(session: GatewaySession, instanceId: string) {
  const config = loadConfig('device-connector', connectorConfigSchema, {
    DATABASE_APP_URL: session.testDb.appUrl,
    REDIS_URL: session.config.REDIS_URL,
    REDIS_KEY_PREFIX: session.config.REDIS_KEY_PREFIX,
    PAYORCH_MASTER_KEY: session.config.PAYORCH_MASTER_KEY,
    CONNECTOR_INSTANCE_ID: instanceId,
    // The test's processing host listens on loopback; the operator allows exactly that address.
    EGRESS_ALLOW_CIDRS: '127.0.0.1/32',
    LOG_LEVEL: 'silent',
  });
  const app = await createConnectorApp(config, silent);
  await app.listen(0, '127.0.0.1');
  const url = `http://127.0.0.1:${(app.getHttpServer().address() as AddressInfo).port}`;
  return { app, instanceId, url, hub: app.get(TerminalHub), tunnels: app.get(AgentTunnelServer) };
}

/** A processing host that accepts the relay's connection and never answers: the relay session stays open. */
async function silentHost(): Promise<{ port: number; close: () => Promise<void> }> {
  const sockets = new Set<Socket>();
  const server: Server = createServer((socket) => {
    sockets.add(socket);
    socket.on('error', () => undefined);
    socket.on('close', () => sockets.delete(socket));
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return {
    port: (server.address() as AddressInfo).port,
    close: async () => {
      for (const socket of sockets) socket.destroy();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}

/**
 * Security finding 1 of issue 13: revocation must reach live connections. Revoking, deleting or
 * re-enrolling an agent closes its open tunnel with AGENT_REVOKED (4401) on whichever connector
 * instance holds it, within a second; disabling a terminal takes it out of service at once (no new command)
 * and closes that terminal's driver only, once the command running on it has ended. Relay sessions open at
 * that moment are cut and recorded; payments in flight on a cut tunnel become `unknown`, one on a disabled
 * terminal ends as the terminal answers it.
 */
describe('live revocation of agents and terminals (docs/security.md: revocation)', () => {
  const session = new GatewaySession();
  let a: Connector;
  let b: Connector;
  let host: Awaited<ReturnType<typeof silentHost>>;
  let redis: Redis;
  let dispatcher: RedisTerminalCommandDispatcher;
  const sims: JoinprotoTerminalSimulator[] = [];
  const agents: Array<{ stop(): void }> = [];

  beforeAll(async () => {
    await session.start();
    a = await startConnector(session, 'revoke-a');
    b = await startConnector(session, 'revoke-b');
    host = await silentHost();
    redis = new Redis(session.config.REDIS_URL);
    dispatcher = new RedisTerminalCommandDispatcher({
      redis,
      prefix: session.config.REDIS_KEY_PREFIX,
      resolveAgent: databaseAgentResolver(session.appDb),
      blockMs: 200,
    });
  }, 60_000);

  afterAll(async () => {
    for (const agent of agents) agent.stop();
    await dispatcher.close();
    await Promise.allSettled([a.app.close(), b.app.close()]);
    await Promise.allSettled([...sims.map((sim) => sim.close()), host.close()]);
    redis.disconnect();
    await session.stop();
  });

  /** A tenant with a store and an agent enrolled at `connector`, all through the public APIs. */
  async function shop(connector: Connector) {
    const { tenantId, apiKey } = await session.tenant();
    const auth = { Authorization: `Bearer ${apiKey}` };
    const post = (path: string, body: object = {}) => session.http().post(path).set(auth).set('Idempotency-Key', idem()).send(body);
    const storeId = (await post('/v1/stores', { name: 'Shop', timeZone: 'UTC' })).body.id as string;
    const created = await post('/v1/agents', { name: 'Till', storeId });
    const agentId = created.body.agent.id as string;
    const credential = await enroll(connector, created.body.enrollmentToken as string);
    await post('/v1/egress-rules', { cidr: '127.0.0.1/32', port: host.port });
    return { tenantId, auth, post, storeId, agentId, credential };
  }

  async function enroll(connector: Connector, token: string): Promise<string> {
    const res = await fetch(`${connector.url}/agent/enroll`, {
      method: 'POST',
      headers: { 'Content-Type': 'application/json' },
      body: JSON.stringify({ token }),
    });
    return ((await res.json()) as { credential: string }).credential;
  }

  /** A Joinproto terminal of the shop; `offline`: it reaches its processing host only through the relay, and that host never answers. */
  async function terminal(s: Awaited<ReturnType<typeof shop>>, mode: 'online' | 'offline' = 'online'): Promise<string> {
    const sim = new JoinprotoTerminalSimulator({ mode, processingHost: `127.0.0.1:${host.port}`, cardTimeoutMs: 30 });
    sims.push(sim);
    const { port } = await sim.listen(0);
    const res = await s.post('/v1/terminals', {
      name: `T${sims.length}`,
      storeId: s.storeId,
      agentId: s.agentId,
      protocol: 'joinproto',
      connection: { kind: 'tcp', host: '127.0.0.1', port },
    });
    expect(res.status).toBe(201);
    return res.body.id as string;
  }

  /** The agent CLI's TunnelClient + LinkBridge, recording every WebSocket close it sees and its fatal error (401). */
  function runAgent(connector: Connector, credential: string) {
    const closes: Array<{ code: number; at: number }> = [];
    let fatal: Error | undefined;
    const bridge = new LinkBridge({ logger: silent, acceptTimeoutMs: 10_000 });
    const client = new TunnelClient({
      connector: connector.url,
      credential,
      logger: silent,
      baseDelayMs: 50,
      maxDelayMs: 200,
      onSocket: (ws) => {
        bridge.attach(ws);
        ws.on('close', (code) => closes.push({ code, at: Date.now() }));
      },
    });
    void client.start().then((error) => (fatal = error));
    const agent = {
      bridge,
      closes,
      fatal: () => fatal,
      stop: () => {
        client.stop();
        bridge.close();
      },
    };
    agents.push(agent);
    return agent;
  }

  const status = async (s: Awaited<ReturnType<typeof shop>>, terminalId: string) =>
    (await session.http().get(`/v1/terminals/${terminalId}`).set(s.auth)).body.status as string;

  const online = (s: Awaited<ReturnType<typeof shop>>, connector: Connector, terminalId: string) =>
    waitFor(async () => (await status(s, terminalId)) === 'online' && connector.hub.find(s.tenantId, terminalId), {
      timeoutMs: 15_000,
      intervalMs: 50,
      what: `terminal ${terminalId} online`,
    });

  const revokedCloses = (agent: ReturnType<typeof runAgent>) => agent.closes.filter((c) => c.code === AGENT_CLOSE_CODES.AGENT_REVOKED);

  /** Starts a purchase on an offline-mode terminal and waits until its relay session to the silent host is open. */
  async function purchaseWithOpenRelay(s: Awaited<ReturnType<typeof shop>>, terminalId: string): Promise<string> {
    const started = await s.post(`/v1/terminals/${terminalId}/operations`, { type: 'purchase', amount: 1_500, currency: 'RUB' });
    expect(started.status).toBeLessThan(300);
    await waitFor(() => session.owner.relaySession.findFirst({ where: { terminalId, outcome: 'open', endedAt: null } }), {
      timeoutMs: 10_000,
      intervalMs: 50,
      what: 'relay session open',
    });
    return started.body.id as string;
  }

  async function auditRows(tenantId: string, action: string, resourceId: string) {
    return session.owner.auditLog.findMany({ where: { tenantId, action, resourceId } });
  }

  it('revoking an agent closes its tunnel with AGENT_REVOKED within 1 s, cuts its relay session and payment, and the old credential is refused', async () => {
    const s = await shop(a);
    const terminalId = await terminal(s, 'offline');
    const agent = runAgent(a, s.credential);
    await online(s, a, terminalId);
    const operationId = await purchaseWithOpenRelay(s, terminalId);

    const started = Date.now();
    const revoked = await s.post(`/v1/agents/${s.agentId}/revoke`);
    expect(revoked.status).toBe(200);
    const close = await waitFor(() => revokedCloses(agent)[0], { timeoutMs: 2_000, intervalMs: 50, what: 'tunnel closed with AGENT_REVOKED' });
    expect(close.at - started).toBeLessThan(1_000);

    // The relay session open at that moment is cut and recorded as such.
    const relay = await waitFor(
      async () => {
        const row = await session.owner.relaySession.findFirstOrThrow({ where: { terminalId } });
        return row.endedAt ? row : undefined;
      },
      { timeoutMs: 5_000, intervalMs: 50, what: 'relay session ended' },
    );
    expect(relay.outcome).toBe('revoked');
    // The payment in flight follows the normal path for a cut tunnel: unknown (then recovery), never failed.
    const operation = await waitFor(
      async () => {
        const res = await session.http().get(`/v1/operations/${operationId}`).set(s.auth);
        return res.body.state === 'unknown' ? res.body : undefined;
      },
      { timeoutMs: 10_000, intervalMs: 50, what: 'operation unknown' },
    );
    expect(operation.stateReason ?? '').not.toMatch(/timeout/i);
    // The connector that cut it wrote the audit row.
    const audit = await waitFor(() => auditRows(s.tenantId, 'agent.tunnel_revoked', s.agentId).then((r) => r[0]), {
      timeoutMs: 5_000,
      intervalMs: 50,
      what: 'audit row',
    });
    expect(audit).toMatchObject({ actorType: 'system', actorId: 'revoke-a', details: { reason: 'revoked', relaySessions: 1, terminals: [terminalId] } });

    // The terminal cannot be driven any more: no handle, and the command bus finds no owner.
    expect(a.hub.find(s.tenantId, terminalId)).toBeUndefined();
    const reply = await waitFor(
      async () => {
        const r = await dispatcher.dispatch({ kind: 'terminal.refresh_info', tenantId: s.tenantId, terminalId });
        return r.ok ? undefined : r;
      },
      { timeoutMs: 5_000, intervalMs: 50, what: 'commands refused' },
    );
    expect(reply).toMatchObject({ ok: false, code: 'TERMINAL_OFFLINE' });
    // The agent retries with the old credential and is refused at the upgrade (401): it stops for good.
    const fatal = await waitFor(() => agent.fatal(), { timeoutMs: 5_000, intervalMs: 50, what: 'reconnect refused' });
    expect(fatal.message).toContain('HTTP 401');
    expect(a.tunnels.session(s.agentId)).toBeUndefined();
    expect(revokedCloses(agent)).toHaveLength(1);
  });

  it("disabling a terminal closes that terminal's driver and relay session only; the tunnel and the other terminals stay up", async () => {
    const s = await shop(a);
    const disabled = await terminal(s, 'offline');
    const kept = await terminal(s, 'online');
    const agent = runAgent(a, s.credential);
    await online(s, a, disabled);
    await online(s, a, kept);
    const mux = a.tunnels.session(s.agentId)!.mux;
    const operationId = await purchaseWithOpenRelay(s, disabled);

    const started = Date.now();
    const patched = await session.http().patch(`/v1/terminals/${disabled}`).set(s.auth).set('Idempotency-Key', idem()).send({ disabled: true });
    expect(patched.body.status).toBe('disabled');
    await waitFor(() => !a.hub.find(s.tenantId, disabled), { timeoutMs: 2_000, intervalMs: 50, what: 'driver closed' });
    expect(Date.now() - started).toBeLessThan(1_000);

    const relay = await waitFor(
      async () => {
        const row = await session.owner.relaySession.findFirstOrThrow({ where: { terminalId: disabled } });
        return row.endedAt ? row : undefined;
      },
      { timeoutMs: 5_000, intervalMs: 50, what: 'relay session ended' },
    );
    expect(relay.outcome).toBe('revoked');
    // The payment running on it is not cut with its driver (before: `unknown`, for recovery to ask the terminal): it
    // ends as the terminal answers it — here a failure, the terminal's processing host being reachable only through
    // the relay just cut — and only then does the driver close.
    const operation = await waitFor(
      async () => {
        const res = await session.http().get(`/v1/operations/${operationId}`).set(s.auth);
        return ['pending', 'sent', 'in_progress'].includes(res.body.state) ? undefined : res.body;
      },
      { timeoutMs: 10_000, intervalMs: 50, what: 'operation over' },
    );
    expect(operation).toMatchObject({ state: 'failed', responseMessage: expect.any(String) });
    await waitFor(() => a.hub.drainingCount === 0, { timeoutMs: 5_000, intervalMs: 50, what: "the disabled terminal's driver closed" });
    expect(
      await waitFor(() => auditRows(s.tenantId, 'terminal.driver_closed', disabled).then((r) => (r.length > 0 ? r : undefined)), {
        timeoutMs: 5_000,
        intervalMs: 50,
        what: 'audit row',
      }),
    ).toEqual([expect.objectContaining({ actorType: 'system', actorId: 'revoke-a' })]);
    // The agent was told: it no longer serves links to the disabled terminal.
    await waitFor(() => agent.bridge.terminalList.every((t) => t.terminalId !== disabled), {
      timeoutMs: 2_000,
      intervalMs: 50,
      what: 'terminal list without it',
    });
    expect((await dispatcher.dispatch({ kind: 'terminal.refresh_info', tenantId: s.tenantId, terminalId: disabled })).ok).toBe(false);

    // Same tunnel, other terminal still driven.
    expect(a.tunnels.session(s.agentId)?.mux).toBe(mux);
    expect(mux.state).toBe('open');
    expect(agent.closes).toEqual([]);
    const paid = await s.post(`/v1/terminals/${kept}/operations?wait=20000`, { type: 'purchase', amount: 2_000, currency: 'RUB' });
    expect(paid.body.state).toBe('approved');
  });

  it('pushes a terminal created while its agent is connected to the agent, which drives it at once', async () => {
    const s = await shop(a);
    const first = await terminal(s, 'online');
    const agent = runAgent(a, s.credential);
    await online(s, a, first);

    const added = await terminal(s, 'online');
    await online(s, a, added);
    expect(agent.bridge.terminalList.map((t) => t.terminalId).sort()).toEqual([first, added].sort());
    const paid = await s.post(`/v1/terminals/${added}/operations?wait=20000`, { type: 'purchase', amount: 2_100, currency: 'RUB' });
    expect(paid.body.state).toBe('approved');
    expect(agent.closes).toEqual([]);
  });

  it('with two connector instances, the one holding the agent closes it; the other does nothing', async () => {
    const s = await shop(b);
    const terminalId = await terminal(s, 'online');
    const agent = runAgent(b, s.credential);
    await online(s, b, terminalId);
    expect(await redis.get(`${session.config.REDIS_KEY_PREFIX}:owner:agent:${s.agentId}`)).toBe('revoke-b');

    const started = Date.now();
    expect((await s.post(`/v1/agents/${s.agentId}/revoke`)).status).toBe(200);
    const close = await waitFor(() => revokedCloses(agent)[0], { timeoutMs: 2_000, intervalMs: 50, what: 'tunnel closed with AGENT_REVOKED' });
    expect(close.at - started).toBeLessThan(1_000);
    await waitFor(() => agent.fatal(), { timeoutMs: 5_000, intervalMs: 50, what: 'reconnect refused' });
    const rows = await waitFor(
      async () => {
        const found = await auditRows(s.tenantId, 'agent.tunnel_revoked', s.agentId);
        return found.length > 0 ? found : undefined;
      },
      { timeoutMs: 5_000, intervalMs: 50, what: 'audit row' },
    );
    expect(rows.map((r) => r.actorId)).toEqual(['revoke-b']);
    expect(a.tunnels.session(s.agentId)).toBeUndefined();
  });

  it('deleting a connected agent closes its tunnel with AGENT_REVOKED', async () => {
    const s = await shop(a);
    const agent = runAgent(a, s.credential);
    await waitFor(() => a.tunnels.session(s.agentId)?.mux.state === 'open', { timeoutMs: 10_000, intervalMs: 50, what: 'agent connected' });

    const started = Date.now();
    expect((await session.http().delete(`/v1/agents/${s.agentId}`).set(s.auth).set('Idempotency-Key', idem())).status).toBe(204);
    const close = await waitFor(() => revokedCloses(agent)[0], { timeoutMs: 2_000, intervalMs: 50, what: 'tunnel closed with AGENT_REVOKED' });
    expect(close.at - started).toBeLessThan(1_000);
    expect(
      await waitFor(() => auditRows(s.tenantId, 'agent.tunnel_revoked', s.agentId).then((r) => r[0]), { timeoutMs: 5_000, intervalMs: 50, what: 'audit row' }),
    ).toMatchObject({
      details: { reason: 'deleted' },
    });
    expect((await waitFor(() => agent.fatal(), { timeoutMs: 5_000, intervalMs: 50, what: 'reconnect refused' })).message).toContain('HTTP 401');
  });

  it('disabling a tenant closes its agents on every connector within 1 s; its API keys and agent credentials authenticate nothing until it is enabled', async () => {
    const s = await shop(a);
    const other = await shop(b);
    const agent = runAgent(a, s.credential);
    const bystander = runAgent(b, other.credential);
    await waitFor(() => a.tunnels.session(s.agentId)?.mux.state === 'open', { timeoutMs: 10_000, intervalMs: 50, what: 'agent connected' });
    await waitFor(() => b.tunnels.session(other.agentId)?.mux.state === 'open', { timeoutMs: 10_000, intervalMs: 50, what: 'other tenant connected' });
    // The operator's CLI publishes committed events on Redis (REDIS_URL), as the gateway does.
    const publisher = new Redis(session.config.REDIS_URL);
    const admin = new AdminService(
      session.owner,
      'security-test',
      redisEventSink(publisher, session.config.REDIS_KEY_PREFIX),
      announceKeysChanged(publisher, session.config.REDIS_KEY_PREFIX),
    );
    try {
      const started = Date.now();
      expect(await admin.setTenantStatus(s.tenantId, 'DISABLED')).toMatchObject({ status: 'DISABLED' });
      const close = await waitFor(() => revokedCloses(agent)[0], { timeoutMs: 2_000, intervalMs: 50, what: 'tunnel closed with AGENT_REVOKED' });
      expect(close.at - started).toBeLessThan(1_000);
      expect((await waitFor(() => agent.fatal(), { timeoutMs: 5_000, intervalMs: 50, what: 'reconnect refused' })).message).toContain('HTTP 401');
      expect(
        await waitFor(() => auditRows(s.tenantId, 'agent.tunnel_revoked', s.agentId).then((r) => r[0]), {
          timeoutMs: 5_000,
          intervalMs: 50,
          what: 'audit row',
        }),
      ).toMatchObject({
        details: { reason: 'tenant_disabled' },
      });
      // Its API key is refused like an unknown one; another tenant is untouched.
      expect((await session.http().get('/v1/stores').set(s.auth)).status).toBe(401);
      expect((await session.http().get('/v1/stores').set(other.auth)).status).toBe(200);
      expect(b.tunnels.session(other.agentId)?.mux.state).toBe('open');
      expect(revokedCloses(bystander)).toEqual([]);

      await admin.setTenantStatus(s.tenantId, 'ACTIVE');
      expect((await session.http().get('/v1/stores').set(s.auth)).status).toBe(200);
      const again = runAgent(a, s.credential);
      await waitFor(() => a.tunnels.session(s.agentId)?.mux.state === 'open', { timeoutMs: 10_000, intervalMs: 50, what: 'agent back after enable' });
      expect(again.fatal()).toBeUndefined();
    } finally {
      publisher.disconnect();
    }
  });

  it('re-enrolling an agent (credential rotation) closes the tunnel held on the previous credential', async () => {
    const s = await shop(a);
    const previous = runAgent(a, s.credential);
    await waitFor(() => a.tunnels.session(s.agentId)?.mux.state === 'open', { timeoutMs: 10_000, intervalMs: 50, what: 'agent connected' });

    const token = (await s.post(`/v1/agents/${s.agentId}/enrollment-token`)).body.enrollmentToken as string;
    const started = Date.now();
    const rotated = await enroll(a, token);
    const close = await waitFor(() => revokedCloses(previous)[0], { timeoutMs: 2_000, intervalMs: 50, what: 'old tunnel closed with AGENT_REVOKED' });
    expect(close.at - started).toBeLessThan(1_000);
    expect((await waitFor(() => previous.fatal(), { timeoutMs: 5_000, intervalMs: 50, what: 'old credential refused' })).message).toContain('HTTP 401');
    expect(
      await waitFor(() => auditRows(s.tenantId, 'agent.tunnel_revoked', s.agentId).then((r) => r[0]), { timeoutMs: 5_000, intervalMs: 50, what: 'audit row' }),
    ).toMatchObject({ details: { reason: 'credential_replaced' } });

    const current = runAgent(a, rotated);
    await waitFor(() => a.tunnels.session(s.agentId)?.mux.state === 'open', { timeoutMs: 10_000, intervalMs: 50, what: 'agent back on the new credential' });
    expect(current.closes).toEqual([]);
  });

  it('re-checks every held agent against PostgreSQL when its Redis subscription reconnects (a revocation whose message was lost)', async () => {
    const s = await shop(a);
    const agent = runAgent(a, s.credential);
    await waitFor(() => a.tunnels.session(s.agentId)?.mux.state === 'open', { timeoutMs: 10_000, intervalMs: 50, what: 'agent connected' });
    // Revoked in PostgreSQL without any message (as if Redis had lost it).
    await session.owner.agent.update({ where: { id: s.agentId }, data: { status: 'REVOKED', credentialHash: null, credentialPrefix: null } });

    // Drop this connector's subscriber connection (only that one, found by its client name).
    const clients = (await redis.client('LIST')) as string;
    const line = clients.split('\n').find((l) => / name=payorch-access-revoke-a /.test(` ${l} `));
    const id = /(?:^|\s)id=(\d+)/.exec(line ?? '')?.[1];
    expect(id).toBeDefined();
    await redis.client('KILL', 'ID', id!);

    await waitFor(() => revokedCloses(agent)[0], { timeoutMs: 5_000, intervalMs: 50, what: 'tunnel closed with AGENT_REVOKED after the resubscription' });
    // The audit row is written right after the close: wait for it rather than racing it.
    const audit = await waitFor(() => auditRows(s.tenantId, 'agent.tunnel_revoked', s.agentId).then((rows) => rows[0]), {
      timeoutMs: 5_000,
      intervalMs: 50,
      what: 'audit row',
    });
    expect(audit).toMatchObject({ actorId: 'revoke-a', details: { reason: 'revoked' } });
  });
  it("re-checks a tenant's held agents with one read for all of them, and cuts only those revoked (issue 19: one transaction per agent every 30 s)", async () => {
    const s = await shop(a);
    const more = [];
    for (const name of ['Till 2', 'Till 3']) {
      const created = await s.post('/v1/agents', { name, storeId: s.storeId });
      more.push({ agentId: created.body.agent.id as string, credential: await enroll(a, created.body.enrollmentToken as string) });
    }
    const all = [{ agentId: s.agentId, credential: s.credential }, ...more];
    const running = all.map((x) => ({ ...x, agent: runAgent(a, x.credential) }));
    for (const x of running)
      await waitFor(() => a.tunnels.session(x.agentId)?.mux.state === 'open' && a.hub.terminalsOf(x.agentId), {
        timeoutMs: 10_000,
        intervalMs: 50,
        what: 'agents connected',
      });
    // Their set-ups are done (each runs in its agent's chain, which reconcile() waits behind): an agent without terminals
    // has an empty terminal list before its set-up ran too, and a set-up's read of two agents at once fell in the window.
    for (const x of running) await a.hub.reconcile(x.agentId);

    const agentReads = async (run: () => Promise<void>) => {
      const query = jest.spyOn(Client.prototype, 'query');
      try {
        await run();
        return query.mock.calls
          .map(([q]) => (typeof q === 'string' ? q : ((q as { text?: string } | undefined)?.text ?? '')))
          .filter((text) => /FROM "(public"\.")?Agent"/.test(text)).length;
      } finally {
        query.mockRestore();
      }
    };
    expect(await agentReads(() => a.hub.reconcileAll(s.tenantId))).toBe(1);
    expect(running.every((x) => a.tunnels.session(x.agentId)?.mux.state === 'open')).toBe(true);

    // Two revoked in PostgreSQL without any message: the next re-check (still one read) cuts exactly those two.
    await session.owner.agent.updateMany({
      where: { id: { in: [more[0]!.agentId, more[1]!.agentId] } },
      data: { status: 'REVOKED', credentialHash: null, credentialPrefix: null },
    });
    expect(await agentReads(() => a.hub.reconcileAll(s.tenantId))).toBe(1);
    await waitFor(() => revokedCloses(running[1]!.agent)[0] && revokedCloses(running[2]!.agent)[0], {
      timeoutMs: 5_000,
      intervalMs: 50,
      what: 'the two revoked agents cut',
    });
    expect(a.tunnels.session(s.agentId)?.mux.state).toBe('open');
    expect(revokedCloses(running[0]!.agent)).toEqual([]);
  });
  it('never enforces a batched re-check read before a fresher one that was enforced meanwhile (a terminal added during the read stays)', async () => {
    const s = await shop(a);
    const first = await terminal(s);
    const agent = runAgent(a, s.credential);
    await online(s, a, first);

    // The batch's read is held back after it ran (what it read is the state before the second terminal)…
    const hub = a.hub as unknown as { readNow: (tenantId: string, agentIds: string[]) => Promise<unknown> };
    const readNow = hub.readNow.bind(a.hub);
    let release!: () => void;
    const released = new Promise<void>((resolve) => (release = resolve));
    // Only the read the batched re-check makes (synchronously, as reconcileAll starts) is held: a live event's re-check
    // arriving meanwhile reads as usual.
    let holding = false;
    let held = false;
    let readDone!: () => void;
    const readComplete = new Promise<void>((resolve) => (readDone = resolve));
    const spy = jest.spyOn(hub, 'readNow').mockImplementation(async (tenantId, agentIds) => {
      if (!holding) return readNow(tenantId, agentIds);
      holding = false;
      held = true;
      const read = await readNow(tenantId, agentIds);
      readDone();
      await released;
      return read;
    });
    try {
      holding = true;
      const recheck = a.hub.reconcileAll(s.tenantId);
      holding = false;
      expect(held).toBe(true);
      await readComplete;
      // …while a terminal is added: its live event re-checks the agent alone, and the fleet takes it at once.
      const second = await terminal(s);
      await waitFor(() => a.hub.terminalsOf(s.agentId).includes(second) || undefined, { timeoutMs: 5_000, intervalMs: 20, what: 'second terminal taken' });
      release();
      await recheck;
      expect(a.hub.terminalsOf(s.agentId).sort()).toEqual([first, second].sort());
      expect(await auditRows(s.tenantId, 'terminal.driver_closed', second)).toEqual([]);
      expect(agent.closes).toEqual([]);
    } finally {
      release();
      spy.mockRestore();
    }
  });
});
