import { waitFor } from '@payorch/testing';
import { JoinprotoTerminalSimulator } from '@payorch/testing/joinproto-sim';

import { FINAL_WITHIN_MS } from './support/healing';
import { HealthWatch, ProcessStack } from './support/stack';

/**
 * Issue 15 for campaigns, with **real processes** (test/faults/support/stack.ts): a campaign step's command is
 * on the terminal when the device connector is killed (SIGKILL). The step dispatched it with `replyWhen:
 * 'queued'` and follows the operation's row, so it ends as soon as the restarted connector recovered the
 * operation (Joinproto 95 repeats the kept-back answer), not after the bus's 300 s `operation.execute`
 * deadline; the terminal executed the command once.
 */
describe('faults: connector kill -9 during a campaign step', () => {
  jest.setTimeout(90_000);
  const stack = new ProcessStack();
  let watch: HealthWatch;
  let auth: string;
  /** LoadKeys commands the terminal executed (the simulator journals financial commands only). */
  let loadKeys = 0;
  // LoadKeys: executed after 1.5 s and its answer kept back (95 can repeat it): the connector dies while the
  // driver still waits for it.
  const joinproto = new JoinprotoTerminalSimulator({
    processingDelayMs: 1_500,
    dropResponse: (request) => {
      if (request.type !== 'LoadKeysRequest') return false;
      loadKeys += 1;
      return true;
    },
  });
  let terminalId = '';

  const api = async (method: string, path: string, body?: object) => {
    const res = await fetch(`${stack.url('gateway')}${path}`, {
      method,
      headers: {
        Authorization: auth,
        'Content-Type': 'application/json',
        ...(body ? { 'Idempotency-Key': `cfault-${process.pid}-${Date.now()}-${Math.random()}` } : {}),
      },
      body: body ? JSON.stringify(body) : undefined,
      signal: AbortSignal.timeout(10_000),
    });
    return { status: res.status, body: (await res.json().catch(() => null)) as Record<string, unknown> & { id: string } };
  };

  beforeAll(async () => {
    try {
      await stack.start();
      const tenant = await stack.tenant();
      auth = `Bearer ${tenant.apiKey}`;
      const store = await api('POST', '/v1/stores', { name: 'Shop', timeZone: 'Europe/Moscow' });
      const agent = await api('POST', '/v1/agents', { name: 'Till 1', storeId: store.body.id });
      const created = await api('POST', '/v1/terminals', {
        name: 'joinproto',
        storeId: store.body.id,
        agentId: (agent.body.agent as { id: string }).id,
        protocol: 'joinproto',
        connection: { kind: 'tcp', host: '127.0.0.1', port: (await joinproto.listen(0)).port },
      });
      if (created.status !== 201) throw new Error(`terminal setup failed: ${JSON.stringify(created.body)}`);
      terminalId = created.body.id;
      await stack.enrollAgent(agent.body.enrollmentToken as string);
      await waitFor(async () => (await api('GET', `/v1/terminals/${terminalId}`)).body.status === 'online', {
        timeoutMs: 30_000,
        intervalMs: 100,
        what: 'terminal ONLINE',
        ignoreErrors: true,
      });
      watch = new HealthWatch({ gateway: stack.readyUrl('gateway'), connector: stack.readyUrl('connector'), worker: stack.readyUrl('worker') }).start();
    } catch (error) {
      throw new Error(`${(error as Error).message}\n${stack.logs()}`, { cause: error });
    }
  }, 90_000);

  afterAll(async () => {
    watch?.stop();
    await stack.stop();
    await joinproto.close();
  });

  it('the step ends through recovery once the connector is back, and the terminal ran the command once', async () => {
    const campaign = await api('POST', '/v1/campaigns', {
      name: 'keys',
      operation: { type: 'load_keys' },
      selector: { terminalIds: [terminalId] },
      policy: { waveSize: { percent: 100 } },
    });
    expect(campaign.status).toBe(201);
    await waitFor(() => loadKeys === 1, { timeoutMs: 20_000, intervalMs: 50, what: 'LoadKeys executed, its answer kept back' });

    const faultAt = Date.now();
    await stack.connector.kill('SIGKILL');
    await stack.connector.start();
    // Bounded by FINAL_WITHIN_MS (30 s) from here: far inside the bus's 300 s deadline a `replyWhen: 'done'`
    // dispatch would wait for.
    const done = await waitFor(
      async () => {
        const c = await api('GET', `/v1/campaigns/${campaign.body.id}`);
        return c.body.state === 'completed' ? c.body : undefined;
      },
      { timeoutMs: FINAL_WITHIN_MS, intervalMs: 200, what: 'campaign completed after the connector restart', ignoreErrors: true },
    ).catch((error: Error) => {
      throw new Error(`${error.message}\n${stack.logs()}`);
    });
    expect(done.counts).toMatchObject({ succeeded: 1, total: 1 });
    const targets = (await api('GET', `/v1/campaigns/${campaign.body.id}/targets`)).body.data as { operationId: string; attempts: number; state: string }[];
    expect(targets).toEqual([expect.objectContaining({ state: 'succeeded', attempts: 1 })]);
    // Recovered, not re-sent: the operation went through UNKNOWN, and the terminal executed LoadKeys once.
    const unknown = await stack.owner.operationEvent.count({ where: { operationId: targets[0]!.operationId, kind: 'transition', toState: 'UNKNOWN' } });
    expect(unknown).toBe(1);
    expect(loadKeys).toBe(1);
    expect(watch.since('connector', faultAt)).toContain(200);
  });
});
