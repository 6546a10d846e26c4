import type { AddressInfo } from 'node:net';

import type { INestApplication } from '@nestjs/common';
import { Redis } from 'ioredis';

import { busKeys, CONSUMER_GROUP, databaseAgentResolver, RedisTerminalCommandDispatcher } from '@payorch/command-bus';
import { connectorConfigSchema, loadConfig, workerConfigSchema } from '@payorch/config';
import { createDriver } from '@payorch/drivers';
import { createLogger } from '@payorch/logging';
import { waitFor } from '@payorch/testing';
import { JoinprotoTerminalSimulator } from '@payorch/testing/joinproto-sim';
import { DEFAULT_ADMIN_PASSWORD, JpaySimulator } from '@payorch/testing/jpay-sim';
import { SsiEcrSimulator } from '@payorch/testing/ssi-ecr-sim';

import { createConnectorApp } from '../../apps/device-connector/src/bootstrap';
import { startInProcessAgent } from './support/tunnel-harness';
import { createWorkerApp } from '../../apps/settlement-worker/src/bootstrap';
import { GatewaySession, idem } from './support/gateway-session';

const silent = createLogger({ name: 'test', level: 'silent' });

/**
 * The whole path with nothing in-process faked: POS → gateway (POST /v1/terminals/{id}/operations)
 * → Redis command bus → device connector → WebSocket tunnel → agent → terminal simulator → back.
 */
describe('terminal operations through the whole stack', () => {
  const session = new GatewaySession();
  let connector: INestApplication;
  let connectorUrl: string;
  let auth: { Authorization: string };
  let agentStop: () => void;
  let credential: string;
  let tenantId: string;
  const joinproto = new JoinprotoTerminalSimulator({ cardTimeoutMs: 30 });
  const jpay = new JpaySimulator({ dialect: 'aqsi', keepaliveIntervalMs: 2 });
  const ssi = new SsiEcrSimulator({ port: 0 });
  const terminals: Record<'JOINPROTO' | 'JPAY' | 'SSI_ECR', string> = { JOINPROTO: '', JPAY: '', SSI_ECR: '' };

  const startAgent = (credential: string) => {
    return startInProcessAgent(connectorUrl, credential).stop;
  };

  const post = (path: string, body: object, key = idem()) => session.http().post(path).set(auth).set('Idempotency-Key', key).send(body);

  beforeAll(async () => {
    await session.start();
    const config = loadConfig('device-connector', connectorConfigSchema, {
      DATABASE_APP_URL: session.testDb.appUrl,
      REDIS_KEY_PREFIX: session.config.REDIS_KEY_PREFIX,
      PAYORCH_MASTER_KEY: session.config.PAYORCH_MASTER_KEY,
      CONNECTOR_INSTANCE_ID: 'full-stack-1',
      LOG_LEVEL: 'silent',
    });
    // Production drivers; only their timers are shortened so the test does not wait for minutes:
    // JPAY gives up on a silent terminal after 5 s, SSI polls GetStatus every 50 ms.
    connector = await createConnectorApp(config, silent, {
      driverFactory: (driverConfig) =>
        createDriver({
          ...driverConfig,
          options: {
            ...driverConfig.options,
            ...(driverConfig.protocol === 'JPAY' ? { commandTimeoutMs: 5_000 } : {}),
            ...(driverConfig.protocol === 'SSI_ECR' ? { pollIntervalMs: 50 } : {}),
          },
        }),
    });
    await connector.listen(0, '127.0.0.1');
    connectorUrl = `http://127.0.0.1:${(connector.getHttpServer().address() as AddressInfo).port}`;

    const tenant = await session.tenant();
    auth = { Authorization: `Bearer ${tenant.apiKey}` };
    tenantId = tenant.tenantId;
    const store = await post('/v1/stores', { name: 'Shop', timeZone: 'Europe/Moscow' });
    const agent = await post('/v1/agents', { name: 'Till 1', storeId: store.body.id });
    const enrolled = await fetch(`${connectorUrl}/agent/enroll`, {
      method: 'POST',
      headers: { 'Content-Type': 'application/json' },
      body: JSON.stringify({ token: agent.body.enrollmentToken }),
    });
    credential = ((await enrolled.json()) as { credential: string }).credential;

    const ports = { JOINPROTO: (await joinproto.listen(0)).port, JPAY: await jpay.listen(0), SSI_ECR: (await ssi.start()).port };
    for (const protocol of ['JOINPROTO', 'JPAY', 'SSI_ECR'] as const) {
      const created = await post('/v1/terminals', {
        name: protocol,
        storeId: store.body.id,
        agentId: agent.body.agent.id,
        protocol: protocol.toLowerCase(), // the API casing (docs/api-changes.md); the labels here are the protocols' names
        connection: { kind: 'tcp', host: '127.0.0.1', port: ports[protocol] },
        ...(protocol === 'JPAY' ? { credentials: { adminPassword: DEFAULT_ADMIN_PASSWORD } } : {}),
      });
      if (created.status !== 201) throw new Error(`terminal setup failed: ${JSON.stringify(created.body)}`);
      terminals[protocol] = created.body.id;
    }
    agentStop = startAgent(credential);
    for (const id of Object.values(terminals)) {
      await waitFor(async () => (await session.http().get(`/v1/terminals/${id}`).set(auth)).body.status === 'online', {
        timeoutMs: 20_000,
        intervalMs: 50,
        what: `terminal ${id} online`,
      });
    }
  }, 60_000);

  afterAll(async () => {
    agentStop?.();
    await connector?.close();
    await Promise.allSettled([joinproto.close(), jpay.close(), ssi.stop()]);
    await session.stop();
  });

  /** `operation.recover` over the command bus, as the worker's recovery job sends it. */
  async function recoverOverBus(terminalId: string, operationId: string) {
    // The dispatcher closes the reader it duplicated, not the connection it was given.
    const redis = new Redis(session.config.REDIS_URL);
    const dispatcher = new RedisTerminalCommandDispatcher({
      redis,
      prefix: session.config.REDIS_KEY_PREFIX,
      resolveAgent: databaseAgentResolver(session.appDb),
    });
    try {
      return await dispatcher.dispatch({ kind: 'operation.recover', tenantId, terminalId, operationId });
    } finally {
      await dispatcher.close();
      await redis.quit();
    }
  }

  /** Commands read by a connector and not answered yet, over every connector request stream. */
  async function busPending(): Promise<number> {
    const redis = new Redis(session.config.REDIS_URL);
    try {
      const streams = await redis.keys(busKeys(session.config.REDIS_KEY_PREFIX).requests('*'));
      let pending = 0;
      for (const stream of streams) pending += Number(((await redis.xpending(stream, CONSUMER_GROUP)) as [number])[0]);
      return pending;
    } finally {
      await redis.quit();
    }
  }

  const pay = (protocol: keyof typeof terminals, body: object, key?: string) =>
    post(`/v1/terminals/${terminals[protocol]}/operations?wait=20000`, { currency: 'RUB', ...body }, key);

  describe.each(['JOINPROTO', 'JPAY', 'SSI_ECR'] as const)('%s', (protocol) => {
    it('approves a purchase, then refunds it with the stored references', async () => {
      const purchase = await pay(protocol, { type: 'purchase', amount: 12_300 });
      expect(purchase.status).toBe(201);
      expect(purchase.body).toMatchObject({ state: 'approved', amount: 12_300, type: 'purchase' });
      expect(purchase.body.maskedPan ?? '').not.toMatch(/^\d{13,19}$/);

      const refund = await pay(protocol, { type: 'refund', amount: 12_300, originalOperationId: purchase.body.id });
      expect(refund.body).toMatchObject({ state: 'approved', type: 'refund', originalOperationId: purchase.body.id });

      const events = await session.http().get(`/v1/operations/${purchase.body.id}`).set(auth);
      expect(events.body.state).toBe('approved');
    });

    it('reports a decline as declined', async () => {
      const declined = await pay(protocol, { type: 'purchase', amount: 10_051 });
      expect(declined.body.state).toBe('declined');
    });
  });

  /** Per protocol: the simulator amounts of its documented outcome tables (libs/testing/src/*-sim/README.md). */
  const scenarios = [
    { protocol: 'JOINPROTO', timeout: { amount: 10_077, state: 'canceled' }, waitsForCard: 10_055, preauth: true },
    { protocol: 'JPAY', timeout: { amount: 10_060, state: 'unknown' }, waitsForCard: 10_054, preauth: false },
    { protocol: 'SSI_ECR', timeout: { amount: 10_055, state: 'canceled' }, waitsForCard: 10_055, preauth: true },
  ] as const;

  const until = (id: string, done: (state: string) => boolean) =>
    waitFor(
      async () => {
        const res = await session.http().get(`/v1/operations/${id}`).set(auth);
        return done(res.body.state) ? res.body : undefined;
      },
      { timeoutMs: 30_000, intervalMs: 50, what: `operation ${id} settled` },
    );

  describe.each(scenarios)('$protocol scenarios', ({ protocol, timeout, waitsForCard, preauth }) => {
    it(`ends a purchase the card never came for as ${timeout.state}, never failed`, async () => {
      const op = await pay(protocol, { type: 'purchase', amount: timeout.amount });
      const final = await until(op.body.id, (s) => !['pending', 'sent', 'in_progress'].includes(s));
      expect(final.state).toBe(timeout.state);
      if (final.state !== 'unknown') return;
      // Until it is recovered the terminal takes no new work; then recovery (what the worker's job sends over the bus) frees it.
      expect((await post(`/v1/terminals/${terminals[protocol]}/operations`, { type: 'purchase', amount: 100, currency: 'RUB' })).body.error).toMatchObject({
        code: 'TERMINAL_RECOVERING',
      });
      expect(await recoverOverBus(terminals[protocol], op.body.id)).toEqual({ ok: true, result: expect.anything() });
      expect((await session.http().get(`/v1/operations/${op.body.id}`).set(auth)).body).toMatchObject({ state: 'approved', amount: timeout.amount });
    });

    it('cancels a purchase while the terminal waits for the card', async () => {
      const op = await post(`/v1/terminals/${terminals[protocol]}/operations`, { type: 'purchase', amount: waitsForCard, currency: 'RUB' }).then((r) => r.body);
      await until(op.id, (s) => s === 'in_progress' || s === 'sent');
      // The connector answered `operation.execute` when it queued it: nothing waits on the bus for the card (issue 15).
      expect(await busPending()).toBe(0);
      const cancel = await waitFor(
        async () => {
          const res = await session.http().post(`/v1/operations/${op.id}/cancel`).set(auth).set('Idempotency-Key', idem());
          return res.status === 202 ? res : undefined;
        },
        { timeoutMs: 10_000, intervalMs: 50, what: 'cancel accepted' },
      );
      expect(cancel.status).toBe(202);
      expect((await until(op.id, (s) => s === 'canceled')).state).toBe('canceled');
    });

    it('voids an approved purchase with its stored references', async () => {
      const purchase = await pay(protocol, { type: 'purchase', amount: 2_100 });
      expect(purchase.body.state).toBe('approved');
      const voided = await pay(protocol, { type: 'void', originalOperationId: purchase.body.id });
      // A full void records the original's amount (reconciliation counts it).
      expect(voided.body).toMatchObject({ state: 'approved', type: 'void', amount: 2_100 });
    });

    it(preauth ? 'holds with a preauthorisation and captures it' : 'refuses preauthorisation up front with 422 naming the protocol', async () => {
      const hold = await pay(protocol, { type: 'preauth', amount: 9_000 });
      if (!preauth) {
        expect(hold.status).toBe(422);
        expect(hold.body.error.message).toContain(protocol);
        return;
      }
      expect(hold.body.state).toBe('approved');
      const capture = await pay(protocol, { type: 'preauth_capture', amount: 8_000, originalOperationId: hold.body.id });
      expect(capture.body).toMatchObject({ state: 'approved', type: 'preauth_capture' });
    });
  });

  it('executes a retried request once: same Idempotency-Key → the same operation, one purchase at the terminal', async () => {
    const key = idem();
    const before = joinproto.journal.length;
    const first = await pay('JOINPROTO', { type: 'purchase', amount: 4_200 }, key);
    const again = await pay('JOINPROTO', { type: 'purchase', amount: 4_200 }, key);
    expect(first.body.state).toBe('approved');
    expect(again.body.id).toBe(first.body.id);
    expect(joinproto.journal.length - before).toBe(1);
  });

  it("marks an operation unknown when the tunnel is cut mid-transaction, then recovers the terminal's true outcome", async () => {
    // JPAY kopecks 60: the terminal approves and logs the payment, then stays silent.
    const started = await post(`/v1/terminals/${terminals.JPAY}/operations`, { type: 'purchase', amount: 5_060, currency: 'RUB' }).then((r) => r.body);
    await waitFor(async () => jpay.ledger.log.some((e) => e.amount === 5_060), { timeoutMs: 10_000, intervalMs: 50, what: 'terminal logged the payment' });
    agentStop();
    const unknown = await waitFor(
      async () => {
        const res = await session.http().get(`/v1/operations/${started.id}`).set(auth);
        return res.body.state === 'unknown' ? res.body : undefined;
      },
      { timeoutMs: 20_000, intervalMs: 50, what: 'operation unknown' },
    );
    expect(unknown.state).toBe('unknown');
    // The tunnel cut, not the driver's 5 s silence timeout, decided it.
    expect(unknown.stateReason).not.toMatch(/timeout/i);

    const status = async () => (await session.http().get(`/v1/terminals/${terminals.JPAY}`).set(auth)).body.status;
    await waitFor(async () => (await status()) === 'offline', { timeoutMs: 20_000, intervalMs: 50, what: 'terminal offline after the cut' });
    agentStop = startAgent(credential);
    await waitFor(async () => (await status()) === 'online', { timeoutMs: 20_000, intervalMs: 50, what: 'terminal back online' });
    // What the worker's recovery job does: `operation.recover` over the command bus.
    const reply = await recoverOverBus(terminals.JPAY, started.id);
    expect(reply).toEqual({ ok: true, result: expect.anything() });
    const recovered = await session.http().get(`/v1/operations/${started.id}`).set(auth);
    expect(recovered.body).toMatchObject({ state: 'approved', amount: 5_060 });
    expect(jpay.ledger.log.filter((e) => e.amount === 5_060)).toHaveLength(1);
  });

  it('publishes each committed event of the operation once to the tenant live channel (gateway and connector)', async () => {
    const subscriber = new Redis(session.config.REDIS_URL);
    const seen: { id: string; type: string; subjectId: string }[] = [];
    try {
      await subscriber.subscribe(`${session.config.REDIS_KEY_PREFIX}:events:${tenantId}`);
      subscriber.on('message', (_channel, message) => seen.push(JSON.parse(message)));
      const op = await pay('JOINPROTO', { type: 'purchase', amount: 3_300 });
      expect(op.body).toMatchObject({ state: 'approved', stateReason: null });
      const mine = await waitFor(
        () => {
          const events = seen.filter((e) => e.subjectId === op.body.id);
          return events.some((e) => e.type === 'operation.completed') ? events : undefined;
        },
        { timeoutMs: 5_000, intervalMs: 50, what: 'operation.completed on the live channel' },
      );
      expect(mine.map((e) => e.type)).toContain('operation.created');
      expect(new Set(mine.map((e) => e.id)).size).toBe(mine.length);
    } finally {
      subscriber.disconnect();
    }
  });

  it('closes the day through the command bus and the connector, and reconciles it with our operations', async () => {
    expect((await pay('SSI_ECR', { type: 'purchase', amount: 1_500 })).body.state).toBe('approved');
    const worker = await createWorkerApp(
      loadConfig('settlement-worker', workerConfigSchema, {
        DATABASE_APP_URL: session.testDb.appUrl,
        REDIS_URL: session.config.REDIS_URL,
        REDIS_KEY_PREFIX: session.config.REDIS_KEY_PREFIX,
        PAYORCH_MASTER_KEY: session.config.PAYORCH_MASTER_KEY,
        SETTLEMENT_RETRY_BASE_MS: '100',
        SETTLEMENT_SYNC_INTERVAL_MS: '600000',
        LOG_LEVEL: 'silent',
      }),
      silent,
    );
    await worker.init();
    try {
      const res = await post(`/v1/terminals/${terminals.SSI_ECR}/settlements`, {});
      expect(res.status).toBe(202);
      const done = await waitFor(
        async () => {
          const s = await session.http().get(`/v1/settlements/${res.body.id}`).set(auth);
          return ['completed', 'failed'].includes(s.body.status) ? s.body : undefined;
        },
        { timeoutMs: 30_000, intervalMs: 50, what: 'settlement finished' },
      );
      expect(done.status).toBe('completed');
      // The SSI terminal's Z report and our approved operations since the last settlement agree.
      expect(done.hasDiscrepancies).toBe(false);
      expect(done.terminalTotals.net).toBe(done.ourTotals.net);
      expect(done.terminalTotals.buckets.sale.count).toBeGreaterThan(0);
      const settled = await session.owner.terminalOperation.count({ where: { terminalId: terminals.SSI_ECR, settlementId: res.body.id } });
      expect(settled).toBeGreaterThan(0);
    } finally {
      await worker.close();
    }
  });

  it('refuses another tenant: its key cannot read or drive these terminals and operations', async () => {
    const other = { Authorization: `Bearer ${(await session.tenant()).apiKey}` };
    const op = await pay('SSI_ECR', { type: 'purchase', amount: 700 });
    expect((await session.http().get(`/v1/operations/${op.body.id}`).set(other)).status).toBe(404);
    const drive = await session
      .http()
      .post(`/v1/terminals/${terminals.SSI_ECR}/operations`)
      .set(other)
      .set('Idempotency-Key', idem())
      .send({ type: 'purchase', amount: 100, currency: 'RUB' });
    expect(drive.status).toBe(404);
  });
});
