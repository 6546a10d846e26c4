import { randomUUID } from 'node:crypto';

import { waitFor } from '@payorch/testing';
import { JoinprotoTerminalSimulator, ProcessingHostSimulator } from '@payorch/testing/joinproto-sim';

import { EgressRelayPort } from '../../apps/device-connector/src/relay/egress-relay-port';
import { RelayPortFactory } from '../../apps/device-connector/src/relay/relay-port.factory';
import { GatewaySession, idem } from './support/gateway-session';
import { type RunningConnector, silent, TunnelHarness } from './support/tunnel-harness';

const hooks = { beforeSend: async () => undefined, onProgress: () => undefined };

/**
 * Joinproto relay egress end to end: a terminal simulator in offline mode behind the agent reaches
 * its processing host only through the connector's egress-checked relay (91–94), opened from the cloud.
 */
describe('relay egress through the tunnel', () => {
  const h = new TunnelHarness();
  let connector: RunningConnector;
  let host: ProcessingHostSimulator;
  let hostPort: number;
  const sims: JoinprotoTerminalSimulator[] = [];

  beforeAll(async () => {
    await h.start();
    connector = await h.connector('relay-1', {}, { driverFactory: undefined });
    host = new ProcessingHostSimulator({ answerPaddingBytes: 3000 });
    hostPort = (await host.listen()).port;
  });

  afterAll(async () => {
    await h.stop();
    await Promise.all(sims.map((s) => s.close()));
    await host.close();
  });

  async function offlineTerminal(processingHost: string) {
    const agent = await h.enrolledAgent(connector.url);
    const sim = new JoinprotoTerminalSimulator({ mode: 'offline', processingHost });
    sims.push(sim);
    const { port } = await sim.listen();
    const terminalId = await h.terminal(agent, { kind: 'tcp', host: '127.0.0.1', port });
    h.runAgent(connector.url, agent.credential);
    await waitFor(async () => (await h.terminalStatus(terminalId)).status === 'ONLINE', { timeoutMs: 15_000, intervalMs: 50 });
    const handle = await waitFor(() => connector.hub.find(agent.tenantId, terminalId), { timeoutMs: 15_000, intervalMs: 50 });
    return { agent, sim, terminalId, driver: handle.driver! };
  }

  it('relays a purchase to an allowed processing host and records the session', async () => {
    const { agent, sim, terminalId, driver } = await offlineTerminal(`127.0.0.1:${hostPort}`);
    await h.owner.egressRule.create({ data: { tenantId: agent.tenantId, cidr: '127.0.0.1/32', port: hostPort } });

    const outcome = await driver.execute({ operationId: randomUUID(), type: 'purchase', amount: 1500, currency: 'RUB' }, hooks);
    expect(outcome.state).toBe('approved');
    expect(host.requests).toHaveLength(1);
    expect(sim.sentRequests.OpenConnectionRequest).toBe(1);
    expect(sim.sentRequests.ReceiveDataRequest).toBeGreaterThan(1);
    // DF01 came from the terminal's persisted counter.
    expect((await h.owner.terminal.findUniqueOrThrow({ where: { id: terminalId } })).protocolSequence).toBeGreaterThan(0);

    const session = await waitFor(
      async () => {
        const rows = await h.owner.relaySession.findMany({ where: { terminalId } });
        return rows.length === 1 && rows[0]!.endedAt ? rows[0] : undefined;
      },
      { timeoutMs: 15_000, intervalMs: 50 },
    );
    expect(session).toMatchObject({ host: '127.0.0.1', port: hostPort, resolvedAddress: '127.0.0.1', tenantId: agent.tenantId });
    expect(['closed', 'peer_closed']).toContain(session.outcome);
    expect(Number(session.bytesToHost)).toBeGreaterThan(0);
    expect(Number(session.bytesFromHost)).toBeGreaterThan(3000);
  });

  it('denies a host outside the allowlist, audits it and publishes relay.denied', async () => {
    const { agent, sim, terminalId, driver } = await offlineTerminal(`127.0.0.1:${hostPort}`);
    // Allowed by name, but the name is not what the terminal asks for; and no rule for the address.
    await h.owner.egressRule.create({ data: { tenantId: agent.tenantId, host: 'processing.example.com', port: hostPort } });

    const outcome = await driver.execute({ operationId: randomUUID(), type: 'purchase', amount: 1500, currency: 'RUB' }, hooks);
    expect(outcome.state).not.toBe('approved');
    expect(sim.tillErrors.join(' ')).toContain('Address not allowed by till');
    const rows = await h.owner.relaySession.findMany({ where: { terminalId } });
    expect(rows).toHaveLength(1);
    expect(rows[0]).toMatchObject({ outcome: 'denied', host: '127.0.0.1', port: hostPort, bytesToHost: 0n });
    const events = await h.events(agent.tenantId, 'relay.denied');
    expect(events).toHaveLength(1);
    expect(events[0]!.data).toMatchObject({ terminalId, host: '127.0.0.1', port: hostPort });
  });

  it('never reaches a loopback address through a DNS-name rule, and bounds bytes and sessions per terminal', async () => {
    const agent = await h.enrolledAgent(connector.url);
    const terminalId = await h.terminal(agent, { kind: 'tcp', host: '127.0.0.1', port: 9 });
    await h.owner.egressRule.create({ data: { tenantId: agent.tenantId, host: 'localhost', port: hostPort } });
    const limits = { ...connector.app.get(RelayPortFactory).limits, maxBytes: 2048, maxConnectionsPerTerminal: 1 };
    const owner = { tenantId: agent.tenantId, agentId: agent.agentId, terminalId };
    const port = new EgressRelayPort(owner, h.appDb, limits, silent, connector.app.get(RelayPortFactory).policy, async () => [{ address: '127.0.0.1' }]);
    await expect(port.open({ protocol: 'tcp', host: 'localhost', port: hostPort, address: `localhost:${hostPort}` })).rejects.toMatchObject({ code: 'DENIED' });
    const denied = await h.owner.relaySession.findFirstOrThrow({ where: { terminalId } });
    // The operator's log says loopback; the tenant's row does not tell what the platform's DNS answered for a name.
    expect(denied).toMatchObject({ reason: expect.stringContaining('does not resolve to an address'), resolvedAddress: null });

    await h.owner.egressRule.create({ data: { tenantId: agent.tenantId, cidr: '127.0.0.0/8', port: hostPort } });
    const id = await port.open({ protocol: 'tcp', host: 'localhost', port: hostPort, address: `localhost:${hostPort}` });
    await expect(port.open({ protocol: 'tcp', host: '127.0.0.1', port: hostPort, address: `127.0.0.1:${hostPort}` })).rejects.toMatchObject({ code: 'DENIED' });
    await expect(port.send(id, new Uint8Array(4096))).rejects.toMatchObject({ code: 'CLOSED' });
    await port.closeAll();
    const sessions = await h.owner.relaySession.findMany({ where: { terminalId }, orderBy: { startedAt: 'asc' } });
    expect(sessions.map((s) => s.outcome)).toEqual(['denied', 'limit_bytes', 'denied']);
  });
});

describe('egress rules API (/v1/egress-rules)', () => {
  const session = new GatewaySession();
  beforeAll(() => session.start());
  afterAll(() => session.stop());

  it('creates, lists, updates and deletes rules with validated host / CIDR / port', async () => {
    const { apiKey } = await session.tenant();
    const auth = { Authorization: `Bearer ${apiKey}` };
    const byCidr = await session
      .http()
      .post('/v1/egress-rules')
      .set(auth)
      .set('Idempotency-Key', idem())
      .send({ cidr: '203.0.114.77/24', port: 443, description: 'acquirer' });
    expect(byCidr.status).toBe(201);
    expect(byCidr.body).toMatchObject({ cidr: '203.0.114.0/24', host: null, port: 443 });
    const byHost = await session.http().post('/v1/egress-rules').set(auth).set('Idempotency-Key', idem()).send({ host: 'Processing.Example.com', port: 7000 });
    expect(byHost.body.host).toBe('processing.example.com');

    for (const bad of [
      { host: 'a.example', cidr: '10.0.0.0/8', port: 1 },
      { cidr: '10.0.0.0/33', port: 1 },
      { host: 'bad host', port: 1 },
      { host: 'a.example', port: 70000 },
      { port: 1 },
    ]) {
      const res = await session.http().post('/v1/egress-rules').set(auth).set('Idempotency-Key', idem()).send(bad);
      expect(res.status).toBe(400);
      expect(res.body.error.code).toBe('VALIDATION_FAILED');
    }
    const patched = await session.http().patch(`/v1/egress-rules/${byHost.body.id}`).set(auth).set('Idempotency-Key', idem()).send({ port: 7001 });
    expect(patched.body.port).toBe(7001);
    const both = await session.http().patch(`/v1/egress-rules/${byHost.body.id}`).set(auth).set('Idempotency-Key', idem()).send({ cidr: '10.0.0.0/8' });
    expect(both.status).toBe(400);
    const list = await session.http().get('/v1/egress-rules').set(auth);
    expect(list.body.data.map((r: { id: string }) => r.id).sort()).toEqual([byCidr.body.id, byHost.body.id].sort());
    expect((await session.http().delete(`/v1/egress-rules/${byCidr.body.id}`).set(auth).set('Idempotency-Key', idem())).status).toBe(204);
    expect((await session.http().get(`/v1/egress-rules/${byCidr.body.id}`).set(auth)).status).toBe(404);
  });

  it("needs the egress scopes and hides other tenants' rules", async () => {
    const owner = await session.tenant();
    const rule = await session
      .http()
      .post('/v1/egress-rules')
      .set({ Authorization: `Bearer ${owner.apiKey}` })
      .set('Idempotency-Key', idem())
      .send({ host: 'a.example', port: 1 });
    const reader = await session.tenant(undefined, ['egress:read']);
    const denied = await session
      .http()
      .post('/v1/egress-rules')
      .set({ Authorization: `Bearer ${reader.apiKey}` })
      .set('Idempotency-Key', idem())
      .send({ host: 'a.example', port: 1 });
    expect(denied.status).toBe(403);
    expect(
      (
        await session
          .http()
          .get(`/v1/egress-rules/${rule.body.id}`)
          .set({ Authorization: `Bearer ${reader.apiKey}` })
      ).status,
    ).toBe(404);
    const viaRls = await session.appDb.withTenant(reader.tenantId, (tx) => tx.egressRule.findUnique({ where: { id: rule.body.id } }));
    expect(viaRls).toBeNull();
  });
});
