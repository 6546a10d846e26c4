import { type ChildProcess, spawn } from 'node:child_process';
import { type AddressInfo, createServer } from 'node:net';

import { REPO_ROOT, testRedisUrl, tsEntryArgs, waitFor } from '@payorch/testing';

import { echoTerminal, failoverProxy, TunnelHarness } from './support/tunnel-harness';

async function freePort(): Promise<number> {
  const server = createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  await new Promise<void>((resolve) => server.close(() => resolve()));
  return port;
}

/** A connector instance as a real process, killed with SIGKILL: no graceful close, no ownership release. */
describe('tunnel failover after kill -9 of the owning connector process', () => {
  const h = new TunnelHarness();
  let child: ChildProcess | undefined;
  let stderr = '';

  beforeAll(() => h.start());
  afterAll(async () => {
    child?.kill('SIGKILL');
    await h.stop();
  });

  it('moves the agent to the surviving instance, brings terminals back online and routes commands there', async () => {
    const survivor = await h.connector('survivor');
    const port = await freePort();
    child = spawn(process.execPath, tsEntryArgs('apps/device-connector/src/main.ts'), {
      cwd: REPO_ROOT,
      stdio: ['ignore', 'ignore', 'pipe'],
      env: {
        ...process.env,
        DATABASE_APP_URL: h.testDb.appUrl,
        REDIS_URL: testRedisUrl(),
        REDIS_KEY_PREFIX: h.prefix,
        PAYORCH_MASTER_KEY: h.masterKey,
        CONNECTOR_INSTANCE_ID: 'doomed',
        CONNECTOR_PORT: String(port),
        CONNECTOR_OWNERSHIP_TTL_MS: '3000',
        LOG_LEVEL: 'warn',
      },
    });
    child.stderr!.on('data', (d) => (stderr += String(d)));
    await waitFor(async () => (await fetch(`http://127.0.0.1:${port}/health`).catch(() => null))?.ok, {
      timeoutMs: 30_000,
      intervalMs: 50,
      what: `child connector up (${stderr})`,
    });

    const proxy = await failoverProxy(() => [port, survivor.port]);
    const proxyUrl = `http://127.0.0.1:${proxy.port}`;
    const agent = await h.enrolledAgent(proxyUrl);
    const terminal = await echoTerminal();
    const terminalId = await h.terminal(agent, { kind: 'tcp', host: '127.0.0.1', port: terminal.port });
    h.runAgent(proxyUrl, agent.credential);
    await waitFor(async () => (await h.redis.get(`${h.prefix}:owner:agent:${agent.agentId}`)) === 'doomed', {
      timeoutMs: 15_000,
      intervalMs: 50,
      what: 'owned by the child',
    });
    await waitFor(async () => (await h.terminalStatus(terminalId)).status === 'ONLINE', { timeoutMs: 15_000, intervalMs: 50 });
    const dispatcher = h.dispatcher();
    expect(await dispatcher.dispatch({ kind: 'terminal.refresh_info', tenantId: agent.tenantId, terminalId })).toMatchObject({
      ok: true,
      result: { instance: 'doomed' },
    });

    child.kill('SIGKILL');
    await waitFor(() => survivor.tunnels.session(agent.agentId)?.mux.state === 'open', { timeoutMs: 20_000, intervalMs: 50, what: 'agent on the survivor' });
    await waitFor(async () => (await h.redis.get(`${h.prefix}:owner:agent:${agent.agentId}`)) === 'survivor', {
      timeoutMs: 10_000,
      intervalMs: 50,
      what: 'ownership taken over',
    });
    // The row may still say ONLINE from the killed instance; the survivor serves commands once it has
    // re-registered the agent's terminals, which is what this waits for.
    const reply = await waitFor(
      async () => {
        const r = await dispatcher.dispatch({ kind: 'terminal.refresh_info', tenantId: agent.tenantId, terminalId });
        return r.ok ? r : undefined;
      },
      { timeoutMs: 15_000, intervalMs: 50, what: 'a command served after failover' },
    );
    expect(reply).toMatchObject({ ok: true, result: { instance: 'survivor' } });
    expect((await h.terminalStatus(terminalId)).status).toBe('ONLINE');
    const instances = (await h.events(agent.tenantId, 'agent.online')).map((e) => (e.data as { instance: string }).instance);
    expect(instances).toEqual(['doomed', 'survivor']);

    await proxy.close();
    await terminal.close();
  });
});
