import { randomUUID } from 'node:crypto';

import type { INestApplication } from '@nestjs/common';

import { createWorkerApp } from '../../apps/settlement-worker/src/bootstrap';
import { transitionTarget } from '@payorch/campaigns';
import { loadConfig, type WorkerConfig, workerConfigSchema } from '@payorch/config';
import { createLogger } from '@payorch/logging';
import { insertOperation } from '@payorch/operations';
import { waitFor } from '@payorch/testing';
import { JoinprotoTerminalSimulator } from '@payorch/testing/joinproto-sim';
import { DEFAULT_ADMIN_PASSWORD, JpaySimulator } from '@payorch/testing/jpay-sim';
import { SsiEcrSimulator } from '@payorch/testing/ssi-ecr-sim';

import { GatewaySession, idem } from './support/gateway-session';
import { InProcessDispatcher } from './support/in-process-dispatcher';

/**
 * Fleet campaigns through the public API (issue 20): the gateway stores the campaign, the worker runs it as a
 * BullMQ flow (real Redis), each terminal step is a normal operation through the in-process dispatcher's terminal
 * queue against the simulators. The campaign clock is fake (an offset the tests move forward).
 */
describe('campaigns (public API, worker flows, in-process dispatcher, simulators)', () => {
  const session = new GatewaySession();
  let dispatcher: InProcessDispatcher;
  let worker: INestApplication;
  let workerConfig: WorkerConfig;
  const startWorker = async () => {
    worker = await createWorkerApp(workerConfig, createLogger({ name: 'test', level: 'silent' }), {
      // The gateway's dispatcher, without its close(): a worker shutting down must not take the terminals' drivers with it.
      dispatcher: { dispatch: (command) => dispatcher.dispatch(command) },
      campaignTiming: { now, pollMs: 25, maxSleepMs: 50 },
    });
    await worker.init();
  };
  let auth: { Authorization: string };
  let authB: { Authorization: string };
  let tenantId: string;
  let tenantB: string;
  let offsetMs = 0;
  const now = () => new Date(Date.now() + offsetMs);
  const sims: { close(): Promise<unknown> }[] = [];
  const t: Record<string, string> = {};
  const stores: Record<string, string> = {};

  const post = (path: string, body: object, as = auth) => session.http().post(path).set(as).set('Idempotency-Key', idem()).send(body);
  const get = (path: string, as = auth) => session.http().get(path).set(as);
  const campaign = (id: string) => get(`/v1/campaigns/${id}`).then((r) => r.body);
  const targets = async (id: string) => (await get(`/v1/campaigns/${id}/targets?limit=200`)).body.data as { terminalId: string; [k: string]: unknown }[];
  const targetOf = async (id: string, terminal: string) => (await targets(id)).find((x) => x.terminalId === terminal)!;
  const start = async (body: object) => {
    const res = await post('/v1/campaigns', { name: 'rollout', ...body });
    if (res.status !== 201) throw new Error(`campaign not created: ${res.status} ${JSON.stringify(res.body)}`);
    return res.body as { id: string; [k: string]: unknown };
  };
  const until = (id: string, what: (c: Record<string, unknown>) => boolean, label: string) =>
    waitFor(
      async () => {
        const c = await campaign(id);
        return what(c) ? c : undefined;
      },
      { what: label, timeoutMs: 20_000 },
    );

  beforeAll(async () => {
    session.dispatcherFactory = (appUrl, publish) => (dispatcher = new InProcessDispatcher(appUrl, publish));
    await session.start();
    const a = await session.tenant();
    auth = { Authorization: `Bearer ${a.apiKey}` };
    tenantId = a.tenantId;
    const b = await session.tenant();
    authB = { Authorization: `Bearer ${b.apiKey}` };
    tenantB = b.tenantId;
    const owner = session.owner;
    stores.moscow = (await owner.store.create({ data: { tenantId, name: 'Moscow', timeZone: 'Europe/Moscow' } })).id;
    stores.newYork = (await owner.store.create({ data: { tenantId, name: 'New York', timeZone: 'America/New_York' } })).id;
    const terminal = async (name: string, protocol: 'JOINPROTO' | 'JPAY' | 'SSI_ECR', store = stores.moscow!, extra: object = {}) => {
      const row = await owner.terminal.create({
        data: { tenantId, storeId: store, name, protocol, connection: { kind: 'tcp', host: '127.0.0.1', port: 1 }, ...extra },
      });
      return row.id;
    };
    const joinproto = async (name: string, options: ConstructorParameters<typeof JoinprotoTerminalSimulator>[0] = {}, store?: string) => {
      const id = await terminal(name, 'JOINPROTO', store);
      const sim = new JoinprotoTerminalSimulator({ cardTimeoutMs: 30, ...options });
      sims.push(sim);
      dispatcher.route(id, { port: (await sim.listen(0)).port, options: { commandTimeoutMs: 2_000 } });
      return id;
    };
    // Created in this order: selections are ordered by creation, so `bad` is the canary.
    t.bad = await joinproto('bad', { serviceResult: 'not ok' });
    t.j1 = await joinproto('j1');
    t.j2 = await joinproto('j2');
    t.j3 = await joinproto('j3');
    t.ny = await joinproto('ny', {}, stores.newYork);
    t.slow = await joinproto('slow');
    t.offline = await terminal('offline', 'JOINPROTO'); // never routed: TERMINAL_OFFLINE
    t.jpay = await terminal('jpay', 'JPAY', stores.moscow, { dialect: 'aqsi', credentialsEncrypted: 'sealed-elsewhere' });
    const jpay = new JpaySimulator({ dialect: 'aqsi', keepaliveIntervalMs: 2 });
    sims.push(jpay);
    dispatcher.route(t.jpay, { port: await jpay.listen(0), credentials: { adminPassword: DEFAULT_ADMIN_PASSWORD } });
    t.ssi = await terminal('ssi', 'SSI_ECR');
    const ssi = new SsiEcrSimulator({ port: 0 });
    sims.push({ close: () => ssi.stop() });
    dispatcher.route(t.ssi, { port: (await ssi.start()).port, options: { pollIntervalMs: 1 } });

    workerConfig = loadConfig('settlement-worker', workerConfigSchema, {
      DATABASE_APP_URL: session.testDb.appUrl,
      REDIS_URL: session.config.REDIS_URL,
      REDIS_KEY_PREFIX: session.config.REDIS_KEY_PREFIX,
      LOG_LEVEL: 'silent',
      PAYORCH_MASTER_KEY: session.config.PAYORCH_MASTER_KEY,
      WORKER_CONCURRENCY: '16',
      WEBHOOK_SWEEP_INTERVAL_MS: '600000',
      SETTLEMENT_SYNC_INTERVAL_MS: '600000',
      WALLET_SWEEP_INTERVAL_MS: '600000',
    });
    await startWorker();
  }, 60_000);

  afterAll(async () => {
    await worker?.close();
    await dispatcher?.close();
    await Promise.allSettled(sims.map((s) => s.close()));
    await session.stop();
  });

  it('rolls a command out per protocol; terminals whose protocol lacks it are skipped with the capability reason', async () => {
    const keys = await start({ operation: { type: 'load_keys' }, selector: { terminalIds: [t.j1, t.jpay, t.ssi] }, policy: { waveSize: { percent: 100 } } });
    expect(keys).toMatchObject({ state: 'running', operation: { type: 'load_keys', params: {} }, counts: { total: 3, skipped: 2 } });
    const done = await until(keys.id, (c) => c.state === 'completed', 'load_keys campaign completed');
    expect(done).toMatchObject({ counts: { succeeded: 1, skipped: 2, failed: 0, total: 3 }, waves: [{ index: 0, state: 'passed', canary: false }] });
    const j1 = await targetOf(keys.id, t.j1);
    expect(j1).toMatchObject({ state: 'succeeded', attempts: 1, answer: { state: 'approved', responseCode: '000' } });
    expect((await get(`/v1/operations/${j1.operationId as string}`)).body).toMatchObject({ type: 'load_keys', state: 'approved', terminalId: t.j1 });
    expect(await targetOf(keys.id, t.jpay)).toMatchObject({
      state: 'skipped',
      wave: null,
      lastError: 'UNSUPPORTED_OPERATION',
      reason: 'JPAY (dialect aqsi) does not support operation type "load_keys"',
    });
    expect(await targetOf(keys.id, t.ssi)).toMatchObject({ state: 'skipped', reason: 'SSI_ECR does not support operation type "load_keys"' });

    // The JPAY and SSI equivalent of a management command (X report); here Joinproto is the one without it.
    const reports = await start({ operation: { type: 'report_x' }, selector: { protocols: ['jpay', 'ssi_ecr', 'joinproto'], storeIds: [stores.moscow] } });
    const ended = await until(reports.id, (c) => c.state === 'completed', 'report_x campaign completed');
    expect(ended.counts).toMatchObject({ succeeded: 2, failed: 0 });
    expect(await targetOf(reports.id, t.jpay)).toMatchObject({ state: 'succeeded', answer: { state: 'approved' } });
    expect(await targetOf(reports.id, t.ssi)).toMatchObject({ state: 'succeeded', answer: { state: 'approved' } });
    expect(await targetOf(reports.id, t.j1)).toMatchObject({ state: 'skipped', reason: 'JOINPROTO does not support operation type "report_x"' });

    // Outcome as CSV, and the campaign.* events of the live stream / webhooks.
    const csv = await get(`/v1/campaigns/${keys.id}/targets?format=csv`);
    expect(csv.status).toBe(200);
    expect(csv.headers['content-type']).toContain('text/csv');
    const lines = csv.text.trim().split('\r\n');
    expect(lines[0]).toBe('terminalId,storeId,wave,state,attempts,operationId,responseCode,responseMessage,lastError,reason,completedAt');
    expect(lines).toHaveLength(4);
    expect(lines.find((l) => l.startsWith(t.j1!))).toContain(',0,succeeded,1,');
    const events = await session.owner.domainEvent.findMany({ where: { subjectId: keys.id }, orderBy: { createdAt: 'asc' } });
    expect(events.map((e) => e.type)).toEqual(['campaign.created', 'campaign.wave_started', 'campaign.wave_completed', 'campaign.completed']);
  });

  it('a failed canary stops the rollout: the other waves never start, and cancel skips them', async () => {
    const c = await start({
      operation: { type: 'update_app' },
      selector: { terminalIds: [t.bad, t.j2, t.j3] },
      policy: { canary: { count: 1 }, waveSize: { count: 1 }, failureThresholdPercent: 100 },
    });
    const paused = await until(c.id, (x) => x.state === 'paused', 'campaign paused by its canary');
    expect(paused).toMatchObject({
      pauseReason: 'canary_failed',
      waves: [{ index: 0, canary: true, state: 'halted' }, { state: 'pending' }, { state: 'pending' }],
    });
    expect(await targetOf(c.id, t.bad)).toMatchObject({ state: 'failed', lastError: '001', answer: { state: 'failed', responseCode: '001' } });
    for (const id of [t.j2, t.j3]) expect(await targetOf(c.id, id!)).toMatchObject({ state: 'pending', operationId: null, attempts: 0 });
    const updates = await session.owner.terminalOperation.count({ where: { type: 'UPDATE_APP', terminalId: { in: [t.j2!, t.j3!] } } });
    expect(updates).toBe(0);

    const canceled = await post(`/v1/campaigns/${c.id}/cancel`, {});
    expect(canceled.status).toBe(200);
    expect(canceled.body).toMatchObject({ state: 'canceled', counts: { failed: 1, skipped: 2, pending: 0 } });
    expect(await targetOf(c.id, t.j2!)).toMatchObject({ state: 'skipped', reason: 'campaign canceled' });
    const again = await post(`/v1/campaigns/${c.id}/resume`, {});
    expect(again.status).toBe(409);
    expect(again.body.error).toMatchObject({ code: 'CONFLICT', message: `campaign ${c.id} is canceled; it cannot be resumed` });
  });

  it('pauses itself when a wave passes the failure threshold; resuming runs the rest', async () => {
    const c = await start({
      operation: { type: 'update_app' },
      selector: { terminalIds: [t.bad, t.j2, t.j3] },
      policy: { waveSize: { count: 2 }, failureThresholdPercent: 40 },
    });
    // Wave 0 = [bad, j2]: bad's failure alone is 50% of the wave (> 40%), so it halts as soon as bad fails.
    const paused = await until(c.id, (x) => x.state === 'paused', 'campaign paused by the failure rate');
    expect(paused.pauseReason).toBe('failure_rate');
    const waves = paused.waves as { state: string; counts: Record<string, number> }[];
    expect(waves[0]).toMatchObject({ state: 'halted', counts: { failed: 1 } });
    expect(waves[1]).toMatchObject({ state: 'pending', counts: { pending: 1 } });
    expect(await targetOf(c.id, t.j3!)).toMatchObject({ state: 'pending', operationId: null });

    const resumed = await post(`/v1/campaigns/${c.id}/resume`, {});
    expect(resumed.body).toMatchObject({ state: 'running', pauseReason: null });
    const done = await until(c.id, (x) => x.state === 'completed', 'campaign completed after resume');
    expect(done).toMatchObject({ counts: { succeeded: 2, failed: 1 }, waves: [{ state: 'passed' }, { state: 'passed' }] });
  });

  it("respects each store's maintenance window in its own time zone (fake clock), and an operator pause", async () => {
    // Campaign clock at the next 23:30 UTC: 02:30 in Moscow (inside 02:00–04:00), 18:30 in New York (outside).
    const at = new Date(Date.now() + offsetMs);
    at.setUTCHours(23, 30, 0, 0);
    if (at.getTime() < Date.now() + offsetMs) at.setUTCDate(at.getUTCDate() + 1);
    offsetMs = at.getTime() - Date.now();
    const c = await start({
      operation: { type: 'load_keys' },
      selector: { terminalIds: [t.j1, t.ny] },
      policy: { waveSize: { percent: 100 }, maintenanceWindow: { start: '02:00', end: '04:00' } },
    });
    await waitFor(async () => (await targetOf(c.id, t.j1!)).state === 'succeeded', { what: 'Moscow terminal updated inside its window' });
    expect(await targetOf(c.id, t.ny!)).toMatchObject({ state: 'pending', operationId: null });

    const paused = await post(`/v1/campaigns/${c.id}/pause`, {});
    expect(paused.body).toMatchObject({ state: 'paused', pauseReason: 'operator' });
    expect((await post(`/v1/campaigns/${c.id}/pause`, {})).status).toBe(409);
    offsetMs += 8 * 3_600_000; // 07:30 UTC: 02:30 in New York
    const resumedAt = new Date();
    expect((await post(`/v1/campaigns/${c.id}/resume`, {})).body.state).toBe('running');
    await until(c.id, (x) => x.state === 'completed', 'campaign completed');
    const ny = await targetOf(c.id, t.ny!);
    expect(ny).toMatchObject({ state: 'succeeded' });
    expect(Date.parse(ny.startedAt as string)).toBeGreaterThanOrEqual(resumedAt.getTime() - 5);
  });

  it('retries an offline terminal until the deadline, then reports it failed with the reason; nothing is ever sent', async () => {
    // The campaign clock back at the real time: the gateway bounds a deadline's attempts by its own (real) clock, and the
    // window test above left the worker's up to 32 h ahead (its next 23:30 UTC, + 8 h): run between 23:30 and ~15:00 UTC,
    // a deadline 5 min after the worker's clock was refused (400, more than 1,000 attempts before it).
    offsetMs = 0;
    const deadline = new Date(Date.now() + offsetMs + 5 * 60_000);
    const c = await start({
      operation: { type: 'load_keys' },
      selector: { terminalIds: [t.offline] },
      policy: { waveSize: { percent: 100 }, retryDelaySeconds: 60, deadline: deadline.toISOString(), failureThresholdPercent: 100 },
    });
    const first = await waitFor(
      async () => {
        const x = await targetOf(c.id, t.offline!);
        return x.state === 'retrying' ? x : undefined;
      },
      { what: 'first attempt refused' },
    );
    expect(first).toMatchObject({ attempts: 1, lastError: 'TERMINAL_OFFLINE' });
    offsetMs += 61_000;
    await waitFor(async () => (await targetOf(c.id, t.offline!)).attempts === 2, { what: 'second attempt after the retry delay' });
    offsetMs += 10 * 60_000;
    const done = await until(c.id, (x) => x.state === 'completed', 'campaign completed');
    expect(done.counts).toMatchObject({ failed: 1, total: 1 });
    const target = await targetOf(c.id, t.offline!);
    expect(target).toMatchObject({ state: 'failed', lastError: 'TERMINAL_OFFLINE' });
    expect(target.reason).toMatch(/^TERMINAL_OFFLINE: still unavailable at the deadline/);
    const ops = await session.owner.terminalOperation.findMany({ where: { terminalId: t.offline! } });
    expect(ops.length).toBeGreaterThanOrEqual(2);
    expect(ops.every((o) => o.state === 'FAILED' && o.stateReason?.startsWith('not sent: TERMINAL_OFFLINE'))).toBe(true);
  });

  it('never interrupts a payment in progress: the step waits in the terminal queue', async () => {
    // Amount …55: the terminal waits for a card until interrupted (simulator scenario).
    const purchase = await post(`/v1/terminals/${t.slow}/operations`, { type: 'purchase', amount: 1055, currency: 'RUB' });
    expect(purchase.status).toBe(201);
    await waitFor(async () => (await get(`/v1/operations/${purchase.body.id as string}`)).body.state === 'in_progress', { what: 'purchase in progress' });
    const c = await start({ operation: { type: 'load_keys' }, selector: { terminalIds: [t.slow] }, policy: { waveSize: { percent: 100 } } });
    const running = await waitFor(
      async () => {
        const x = await targetOf(c.id, t.slow!);
        return x.state === 'running' ? x : undefined;
      },
      { what: 'campaign step queued behind the payment' },
    );
    // The step's operation waits in the terminal's queue: the payment is untouched.
    expect((await get(`/v1/operations/${running.operationId as string}`)).body.state).toBe('pending');
    expect((await get(`/v1/operations/${purchase.body.id as string}`)).body.state).toBe('in_progress');
    // The cashier gives up on the card; only then does the campaign's command reach the terminal.
    expect((await post(`/v1/operations/${purchase.body.id as string}/cancel`, {})).status).toBe(202);
    await until(c.id, (x) => x.state === 'completed', 'campaign completed after the payment');
    const paid = await session.owner.operationEvent.findMany({ where: { operationId: purchase.body.id }, orderBy: { createdAt: 'asc' } });
    const sent = await session.owner.operationEvent.findFirstOrThrow({ where: { operationId: running.operationId as string, toState: 'SENT' } });
    const purchaseEnded = paid.find((e) => e.fromState === 'IN_PROGRESS' && e.toState !== 'IN_PROGRESS')!;
    expect(purchaseEnded).toBeDefined();
    expect(sent.createdAt.getTime()).toBeGreaterThanOrEqual(purchaseEnded.createdAt.getTime());
    expect(await targetOf(c.id, t.slow!)).toMatchObject({ state: 'succeeded' });
  });

  it('labels on terminals and stores select terminals, in the terminal list and in campaigns', async () => {
    const patched = await session
      .http()
      .patch(`/v1/terminals/${t.j3}`)
      .set(auth)
      .set('Idempotency-Key', idem())
      .send({ labels: { tier: 'gold' } });
    expect(patched.status).toBe(200);
    expect(patched.body.labels).toEqual({ tier: 'gold' });
    const store = await session
      .http()
      .patch(`/v1/stores/${stores.newYork}`)
      .set(auth)
      .set('Idempotency-Key', idem())
      .send({ labels: { region: 'us' } });
    expect(store.body.labels).toEqual({ region: 'us' });
    const byStoreLabel = await get('/v1/terminals?label=region:us');
    expect(byStoreLabel.body.data.map((x: { id: string }) => x.id)).toEqual([t.ny]);
    const both = await get('/v1/terminals?label=tier:gold&label=region:us');
    expect(both.body.data).toEqual([]);
    const bad = await get('/v1/terminals?label=nocolon');
    expect(bad.status).toBe(400);
    expect(bad.body.error.code).toBe('VALIDATION_FAILED');
    const c = await start({ operation: { type: 'upload_logs' }, selector: { labels: { tier: 'gold' } }, policy: { waveSize: { count: 5 } } });
    expect(c.counts).toMatchObject({ total: 1, pending: 1 });
    expect((await targets(c.id)).map((x) => x.terminalId)).toEqual([t.j3]);
    await until(c.id, (x) => x.state === 'completed', 'upload_logs campaign completed');
  });

  it('a terminal a campaign targeted cannot be deleted: the campaign keeps its record (409 RESOURCE_IN_USE)', async () => {
    // Found in the eleventh session: deleting a terminal cascaded its campaign targets away, so a campaign's counts and
    // its per-terminal outcome (here a skip, which leaves no operation to block the delete) changed without a trace.
    const created = await post('/v1/terminals', {
      name: 'ssi, soon removed',
      storeId: stores.moscow,
      protocol: 'ssi_ecr',
      connection: { kind: 'tcp', host: '127.0.0.1', port: 9 },
    });
    expect(created.status).toBe(201);
    const terminalId = created.body.id as string;
    const keys = await start({ operation: { type: 'load_keys' }, selector: { terminalIds: [terminalId] } });
    const done = await until(keys.id, (c) => c.state === 'completed', 'the all-skipped campaign completed');
    expect(done).toMatchObject({ counts: { total: 1, skipped: 1 } });
    const removed = await session.http().delete(`/v1/terminals/${terminalId}`).set(auth).set('Idempotency-Key', idem());
    expect(removed.status).toBe(409);
    expect(removed.body.error.code).toBe('RESOURCE_IN_USE');
    expect(await campaign(keys.id)).toMatchObject({ counts: { total: 1, skipped: 1 } });
    expect(await targetOf(keys.id, terminalId)).toMatchObject({ state: 'skipped' });
    // Disabling it is the way to retire it.
    const disabled = await session.http().patch(`/v1/terminals/${terminalId}`).set(auth).set('Idempotency-Key', idem()).send({ disabled: true });
    expect(disabled.status).toBe(200);
  });

  it('refuses bad input with the error envelope', async () => {
    const noType = await post('/v1/campaigns', { name: 'x', operation: { type: 'purchase' }, selector: {} });
    expect(noType.status).toBe(400);
    expect(noType.body.error.code).toBe('VALIDATION_FAILED');
    expect(JSON.stringify(noType.body.error.details)).toContain('operation.type');
    const nothing = await post('/v1/campaigns', { name: 'x', operation: { type: 'load_keys' }, selector: { terminalIds: [randomUUID()] } });
    expect(nothing.status).toBe(422);
    expect(nothing.body.error).toMatchObject({ code: 'UNPROCESSABLE', message: 'selector: matches no terminal' });
    const past = await post('/v1/campaigns', { name: 'x', operation: { type: 'load_keys' }, selector: {}, policy: { deadline: '2020-01-01T00:00:00Z' } });
    expect(past.status).toBe(400);
    // The routes are in the served API description, with their named schemas and query parameters.
    const doc = (await session.http().get('/docs/openapi.json')).body;
    expect(Object.keys(doc.paths)).toEqual(
      expect.arrayContaining(['/v1/campaigns', '/v1/campaigns/{id}', '/v1/campaigns/{id}/targets', '/v1/campaigns/{id}/cancel']),
    );
    expect(doc.paths['/v1/campaigns/{id}/targets'].get.parameters.map((x: { name: string }) => x.name)).toEqual(
      expect.arrayContaining(['format', 'state', 'wave']),
    );
    expect(doc.paths['/v1/terminals'].get.parameters.map((x: { name: string }) => x.name)).toContain('label');
    const window = await post('/v1/campaigns', {
      name: 'x',
      operation: { type: 'load_keys' },
      selector: {},
      policy: { maintenanceWindow: { start: '25:00', end: '03:00' } },
    });
    expect(window.status).toBe(400);
  });

  it("tenant isolation: another tenant's campaigns are 404 on every route, and RLS hides them", async () => {
    const c = await start({ operation: { type: 'upload_logs' }, selector: { terminalIds: [t.j2] }, policy: { waveSize: { count: 1 } } });
    for (const path of [`/v1/campaigns/${c.id}`, `/v1/campaigns/${c.id}/targets`, `/v1/campaigns/${c.id}/targets?format=csv`]) {
      const res = await get(path, authB);
      expect(res.status).toBe(404);
      expect(res.body.error).toMatchObject({ code: 'NOT_FOUND', message: `campaign ${c.id} was not found` });
    }
    for (const action of ['pause', 'resume', 'cancel']) expect((await post(`/v1/campaigns/${c.id}/${action}`, {}, authB)).status).toBe(404);
    expect((await get('/v1/campaigns', authB)).body.data).toEqual([]);
    // B cannot address A's terminals either.
    const steal = await post('/v1/campaigns', { name: 'x', operation: { type: 'load_keys' }, selector: { terminalIds: [t.j1] } }, authB);
    expect(steal.status).toBe(422);
    // RLS, not a WHERE clause: the same reads through the tenant-scoped client see nothing.
    const seen = await session.appDb.withTenant(tenantB, async (tx) => ({
      campaign: await tx.campaign.findUnique({ where: { id: c.id } }),
      targets: await tx.campaignTarget.count({ where: { campaignId: c.id } }),
      waves: await tx.campaignWave.count({ where: { campaignId: c.id } }),
    }));
    expect(seen).toEqual({ campaign: null, targets: 0, waves: 0 });
    expect((await get('/v1/campaigns')).body.data.map((x: { id: string }) => x.id)).toContain(c.id);
    await until(c.id, (x) => x.state === 'completed', 'campaign completed');
  });

  it('a new worker resumes where a dead one stopped, without a second operation for a terminal', async () => {
    await worker.close(); // the worker "dies"; the campaign.run job waits in Redis
    const c = await start({ operation: { type: 'load_keys' }, selector: { terminalIds: [t.j1, t.j2] }, policy: { waveSize: { percent: 100 } } });
    // What the dead worker left behind: j1's step had created its operation and claimed the target, then died
    // before dispatching it (the claim's own writes, through the owners).
    const j1 = await targetOf(c.id, t.j1!);
    const opId = await session.appDb.withTenant(tenantId, async (tx) => {
      const { row } = await insertOperation(tx, {
        tenantId,
        terminalId: t.j1!,
        storeId: stores.moscow!,
        type: 'load_keys',
        idempotencyKey: `campaign:${j1.id as string}:1`,
        requestHash: `campaign:${c.id}`,
      });
      await transitionTarget(tx, { targetId: j1.id as string, from: ['PENDING'], to: 'RUNNING', set: { operationId: row.id }, countAttempt: true });
      return row.id;
    });
    await startWorker();
    const done = await until(c.id, (x) => x.state === 'completed', 'campaign completed by the new worker');
    expect(done.counts).toMatchObject({ succeeded: 2, total: 2 });
    expect(await targetOf(c.id, t.j1!)).toMatchObject({ state: 'succeeded', attempts: 1, operationId: opId });
    const ops = await session.owner.terminalOperation.findMany({ where: { idempotencyKey: { startsWith: `campaign:${j1.id as string}:` } } });
    expect(ops.map((o) => [o.id, o.state])).toEqual([[opId, 'APPROVED']]);
    expect(dispatcher.commands.filter((cmd) => cmd.kind === 'operation.execute' && 'operationId' in cmd && cmd.operationId === opId)).toHaveLength(1);
  });
});
