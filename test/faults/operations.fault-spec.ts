import type { AddressInfo } from 'node:net';

import type { INestApplication } from '@nestjs/common';

import { connectorConfigSchema, loadConfig } from '@payorch/config';
import { createDriver } from '@payorch/drivers';
import { createLogger } from '@payorch/logging';
import { waitFor } from '@payorch/testing';
import { JoinprotoTerminalSimulator } from '@payorch/testing/joinproto-sim';
import { DEFAULT_ADMIN_PASSWORD, JpaySimulator } from '@payorch/testing/jpay-sim';
import { SsiEcrSimulator } from '@payorch/testing/ssi-ecr-sim';

import { createConnectorApp } from '../../apps/device-connector/src/bootstrap';
import { startInProcessAgent } from '../e2e/support/tunnel-harness';
import { GatewaySession, idem } from '../e2e/support/gateway-session';

const silent = createLogger({ name: 'test', level: 'silent' });
/** Issue 15: from the end of a fault to every affected operation final. */
const FINAL_WITHIN_MS = 30_000;
const FINAL = ['approved', 'declined', 'canceled', 'failed'];

type Protocol = 'JOINPROTO' | 'JPAY' | 'SSI_ECR';

/** Per round, amounts whose scenario loses the answer (Joinproto x_343, JPAY kopecks 60; SSI: approved). */
const amountsOf = (round: number): Record<Protocol, number> => ({ JOINPROTO: round * 1_000 + 343, JPAY: round * 1_000 + 60, SSI_ECR: round * 1_000 + 500 });

/**
 * No operation left behind: faults of the agent and the connector in the middle of payments, on the
 * whole stack (gateway → Redis command bus → connector → tunnel → agent → simulators). No settlement
 * worker runs here, so nothing is resolved by the 30 s / 10 min sweeps: what resolves the operations is
 * the connector's recovery when the agent's tunnel comes back.
 */
describe('faults: no operation left behind', () => {
  const session = new GatewaySession();
  let connector: INestApplication;
  let connectorUrl: string;
  let auth: { Authorization: string };
  let agentStop: () => void = () => undefined;
  let credential: string;
  let tenantId: string;
  let storeId: string;
  // Joinproto x_343: the terminal approves, its answer is lost. JPAY kopecks 60: approved and logged, then silence.
  const joinproto = new JoinprotoTerminalSimulator({ cardTimeoutMs: 30, dropResponse: (r) => 'amount' in r && r.amount % 1000 === 343 });
  const jpay = new JpaySimulator({ dialect: 'aqsi', keepaliveIntervalMs: 2 });
  // The SSI terminal goes on by itself (one step every 150 ms) whether or not anyone polls it.
  const ssi = new SsiEcrSimulator({ port: 0, advance: { mode: 'timed', stepMs: 150 } });
  const terminals: Record<Protocol, string> = { JOINPROTO: '', JPAY: '', SSI_ECR: '' };

  const startAgent = () => {
    agentStop = startInProcessAgent(connectorUrl, credential).stop;
  };
  const post = (path: string, body: object) => session.http().post(path).set(auth).set('Idempotency-Key', idem()).send(body);
  const operation = async (id: string) => (await session.http().get(`/v1/operations/${id}`).set(auth)).body as { state: string; stateReason: string | null };
  const status = async (protocol: Protocol) => (await session.http().get(`/v1/terminals/${terminals[protocol]}`).set(auth)).body.status as string;
  const allOnline = () =>
    waitFor(async () => (await Promise.all((Object.keys(terminals) as Protocol[]).map(status))).every((s) => s === 'online'), {
      timeoutMs: 20_000,
      intervalMs: 50,
      what: 'terminals online',
    });

  beforeAll(async () => {
    await session.start();
    const config = loadConfig('device-connector', connectorConfigSchema, {
      DATABASE_APP_URL: session.testDb.appUrl,
      REDIS_KEY_PREFIX: session.config.REDIS_KEY_PREFIX,
      PAYORCH_MASTER_KEY: session.config.PAYORCH_MASTER_KEY,
      CONNECTOR_INSTANCE_ID: 'faults-1',
      LOG_LEVEL: 'silent',
    });
    // Production drivers and their production waits (SSI: 120 s reconnect window, JPAY: 180 s silence),
    // except SSI polling every 50 ms.
    connector = await createConnectorApp(config, silent, {
      driverFactory: (driverConfig) =>
        createDriver({ ...driverConfig, options: { ...driverConfig.options, ...(driverConfig.protocol === 'SSI_ECR' ? { pollIntervalMs: 50 } : {}) } }),
    });
    await connector.listen(0, '127.0.0.1');
    connectorUrl = `http://127.0.0.1:${(connector.getHttpServer().address() as AddressInfo).port}`;

    const tenant = await session.tenant();
    auth = { Authorization: `Bearer ${tenant.apiKey}` };
    tenantId = tenant.tenantId;
    storeId = (await post('/v1/stores', { name: 'Shop', timeZone: 'Europe/Moscow' })).body.id;
    const agent = await post('/v1/agents', { name: 'Till 1', storeId });
    const enrolled = await fetch(`${connectorUrl}/agent/enroll`, {
      method: 'POST',
      headers: { 'Content-Type': 'application/json' },
      body: JSON.stringify({ token: agent.body.enrollmentToken }),
    });
    credential = ((await enrolled.json()) as { credential: string }).credential;
    const ports: Record<Protocol, number> = { JOINPROTO: (await joinproto.listen(0)).port, JPAY: await jpay.listen(0), SSI_ECR: (await ssi.start()).port };
    for (const protocol of Object.keys(terminals) as Protocol[]) {
      const created = await post('/v1/terminals', {
        name: protocol,
        storeId,
        agentId: agent.body.agent.id,
        protocol: protocol.toLowerCase(), // API casing; the labels here are the protocols' names
        connection: { kind: 'tcp', host: '127.0.0.1', port: ports[protocol] },
        ...(protocol === 'JPAY' ? { credentials: { adminPassword: DEFAULT_ADMIN_PASSWORD } } : {}),
      });
      if (created.status !== 201) throw new Error(`terminal setup failed: ${JSON.stringify(created.body)}`);
      terminals[protocol] = created.body.id;
    }
    startAgent();
    await allOnline();
  }, 60_000);

  afterAll(async () => {
    agentStop();
    await connector?.close();
    await Promise.allSettled([joinproto.close(), jpay.close(), ssi.stop()]);
    await session.stop();
  });

  /** Starts a payment on each protocol whose outcome the cut will lose, once the terminal has it. */
  async function paymentsInFlight(round: number): Promise<Record<Protocol, string>> {
    const start = async (protocol: Protocol, amount: number) =>
      (await post(`/v1/terminals/${terminals[protocol]}/operations`, { type: 'purchase', amount, currency: 'RUB' })).body.id as string;
    const amounts = amountsOf(round);
    const ids = {
      JOINPROTO: await start('JOINPROTO', amounts.JOINPROTO),
      JPAY: await start('JPAY', amounts.JPAY),
      SSI_ECR: await start('SSI_ECR', amounts.SSI_ECR),
    };
    await waitFor(() => joinproto.journal.some((e) => e.amount === amounts.JOINPROTO), {
      timeoutMs: 10_000,
      intervalMs: 50,
      what: 'Joinproto terminal approved',
    });
    await waitFor(() => jpay.ledger.log.some((e) => e.amount === amounts.JPAY), {
      timeoutMs: 10_000,
      intervalMs: 50,
      what: 'JPAY terminal logged the payment',
    });
    await waitFor(async () => (await operation(ids.SSI_ECR)).state === 'in_progress' && ssi.status !== 'S00', {
      timeoutMs: 10_000,
      intervalMs: 50,
      what: 'SSI terminal working on it',
    });
    return ids;
  }

  it('agent crash mid-payment: unknown at once (no driver keeps polling), recovered as soon as the agent reconnects', async () => {
    const ids = await paymentsInFlight(1);
    agentStop(); // the fault
    const cutAt = Date.now();
    for (const id of Object.values(ids)) {
      await waitFor(async () => (await operation(id)).state === 'unknown', {
        timeoutMs: 10_000,
        intervalMs: 50,
        what: `operation ${id} unknown after the cut`,
      });
    }
    // Not the SSI runner's 120 s reconnect window nor JPAY's 180 s silence: closing the driver decided it.
    expect(Date.now() - cutAt).toBeLessThan(10_000);
    // Until it is recovered the terminal takes no new payment (it would overwrite the terminal's last result).
    const refused = await post(`/v1/terminals/${terminals.SSI_ECR}/operations`, { type: 'purchase', amount: 100, currency: 'RUB' });
    expect(refused.status).toBe(409);
    expect(refused.body.error.code).toBe('TERMINAL_RECOVERING');
    await waitFor(() => ssi.status === 'S00', { timeoutMs: 10_000, intervalMs: 50, what: 'SSI terminal finished by itself' });

    startAgent();
    const reconnectedAt = Date.now();
    const settled = await Promise.all(
      Object.values(ids).map((id) =>
        waitFor(
          async () => {
            const op = await operation(id);
            return FINAL.includes(op.state) ? { ...op, at: Date.now() } : undefined;
          },
          { timeoutMs: FINAL_WITHIN_MS, intervalMs: 50, what: `operation ${id} final after the reconnect` },
        ),
      ),
    );
    expect(settled.map((op) => op.state)).toEqual(['approved', 'approved', 'approved']);
    expect(Math.max(...settled.map((op) => op.at)) - reconnectedAt).toBeLessThanOrEqual(FINAL_WITHIN_MS);
    // Recovered, never executed twice.
    expect(joinproto.journal.filter((e) => e.amount === amountsOf(1).JOINPROTO)).toHaveLength(1);
    expect(jpay.ledger.log.filter((e) => e.amount === amountsOf(1).JPAY)).toHaveLength(1);
  }, 90_000);

  it('connector crash: rows left IN_PROGRESS and a PENDING never claimed are resolved when the agent reconnects, without a sweep', async () => {
    await allOnline();
    const ids = await paymentsInFlight(2);
    // A killed connector writes nothing more: the lost payments stay IN_PROGRESS, and a payment whose bus
    // message died with it stays PENDING (its gateway died too). Emulated here: cut the tunnel, then put
    // the rows back the way the killed process left them.
    agentStop();
    for (const id of Object.values(ids))
      await waitFor(async () => (await operation(id)).state === 'unknown', { timeoutMs: 10_000, intervalMs: 50, what: `operation ${id} settled by the cut` });
    await session.owner.terminalOperation.updateMany({
      where: { id: { in: Object.values(ids) } },
      data: { state: 'IN_PROGRESS', subStatus: 'processing', stateReason: null },
    });
    const orphan = await session.owner.terminalOperation.create({
      data: {
        tenantId,
        terminalId: terminals.JOINPROTO,
        storeId,
        type: 'PURCHASE',
        state: 'PENDING',
        amount: 777n,
        currency: 'RUB',
        idempotencyKey: idem(),
        requestHash: 'h',
        // Its bus message died with the connector a minute ago: past the command bus's delivery deadline, so the
        // connector's recovery knows no command of it can still come (RECOVERY_PENDING_AFTER_MS, 30 s).
        createdAt: new Date(Date.now() - 60_000),
        updatedAt: new Date(Date.now() - 60_000),
      },
    });
    await waitFor(() => ssi.status === 'S00', { timeoutMs: 10_000, intervalMs: 50, what: 'SSI terminal finished by itself' });

    startAgent();
    const reconnectedAt = Date.now();
    for (const id of Object.values(ids)) {
      const op = await waitFor(
        async () => {
          const current = await operation(id);
          return FINAL.includes(current.state) ? current : undefined;
        },
        { timeoutMs: FINAL_WITHIN_MS, intervalMs: 50, what: `operation ${id} final after the reconnect` },
      );
      expect(op.state).toBe('approved');
    }
    expect(await operation(orphan.id)).toMatchObject({ state: 'failed', stateReason: expect.stringContaining('never sent') });
    expect(Date.now() - reconnectedAt).toBeLessThanOrEqual(FINAL_WITHIN_MS);
    const marked = await session.owner.operationEvent.findMany({
      where: { operationId: { in: Object.values(ids) }, kind: 'transition', toState: 'UNKNOWN', fromState: 'IN_PROGRESS' },
    });
    expect(marked.filter((e) => (e.data as { by?: string } | null)?.by === 'agent_reconnect')).toHaveLength(3);
    expect(joinproto.journal.filter((e) => e.amount === 777)).toHaveLength(0);
  }, 90_000);
});
