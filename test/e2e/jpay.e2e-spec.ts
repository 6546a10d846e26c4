import type { INestApplication } from '@nestjs/common';

import { createWorkerApp } from '../../apps/settlement-worker/src/bootstrap';
import { loadConfig, workerConfigSchema } from '@payorch/config';
import { createLogger } from '@payorch/logging';
import { waitFor } from '@payorch/testing';
import { DEFAULT_ADMIN_PASSWORD, JpaySimulator } from '@payorch/testing/jpay-sim';

import { GatewaySession, idem } from './support/gateway-session';
import { InProcessDispatcher } from './support/in-process-dispatcher';

/**
 * JPAY through the public API against the simulator: the encrypted link (§9), partial void in the jpay
 * dialect (§8.9), and an answer lost after the authorisation recovered from the terminal's report.
 */
describe('JPAY (public API, in-process dispatcher, simulator over TCP)', () => {
  const session = new GatewaySession();
  let dispatcher: InProcessDispatcher;
  let worker: INestApplication;
  let auth: { Authorization: string };
  let storeId: string;
  let secured: JpaySimulator;
  let plain: JpaySimulator;
  let securedTerminal: string;
  let jpayTerminal: string;

  const post = (path: string, body: object) => session.http().post(path).set(auth).set('Idempotency-Key', idem()).send(body);
  const pay = (terminalId: string, body: object) => post(`/v1/terminals/${terminalId}/operations?wait=5000`, body);
  const get = (id: string) => session.http().get(`/v1/operations/${id}`).set(auth);

  beforeAll(async () => {
    session.dispatcherFactory = (appUrl, publish) => (dispatcher = new InProcessDispatcher(appUrl, publish));
    await session.start();
    auth = { Authorization: `Bearer ${(await session.tenant()).apiKey}` };
    storeId = (await post('/v1/stores', { name: 'S', timeZone: 'UTC' })).body.id;
    const connection = { kind: 'tcp', host: '127.0.0.1', port: 1 };
    const credentials = { adminPassword: DEFAULT_ADMIN_PASSWORD };
    const created = await post('/v1/terminals', { name: 'secure', storeId, protocol: 'jpay', connection, credentials, encryption: { enabled: true } });
    if (created.status !== 201) throw new Error(`terminal not created: ${JSON.stringify(created.body)}`);
    securedTerminal = created.body.id;
    jpayTerminal = (await post('/v1/terminals', { name: 'jpay', storeId, protocol: 'jpay', dialect: 'jpay', connection, credentials })).body.id;

    secured = new JpaySimulator({ dialect: 'aqsi', keepaliveIntervalMs: 2 });
    dispatcher.route(securedTerminal, { port: await secured.listen(0), credentials });
    plain = new JpaySimulator({ dialect: 'jpay', keepaliveIntervalMs: 2 });
    dispatcher.route(jpayTerminal, { port: await plain.listen(0), credentials });

    const config = loadConfig('settlement-worker', workerConfigSchema, {
      DATABASE_APP_URL: session.testDb.appUrl,
      REDIS_URL: session.config.REDIS_URL,
      REDIS_KEY_PREFIX: session.config.REDIS_KEY_PREFIX,
      LOG_LEVEL: 'silent',
      PAYORCH_MASTER_KEY: session.config.PAYORCH_MASTER_KEY,
      RECOVERY_INTERVAL_MS: '150',
      RECOVERY_STUCK_AFTER_MS: '8000',
      RECOVERY_PENDING_AFTER_MS: '3000',
      RECOVERY_BACKOFF_BASE_MS: '50',
      RECOVERY_BACKOFF_MAX_MS: '100',
      RECOVERY_MAX_ATTEMPTS: '3',
      WEBHOOK_SWEEP_INTERVAL_MS: '600000',
      SETTLEMENT_SYNC_INTERVAL_MS: '600000',
      WALLET_SWEEP_INTERVAL_MS: '600000',
    });
    // The worker's recovery dispatches `operation.recover` through the same in-process dispatcher.
    worker = await createWorkerApp(config, createLogger({ name: 'test', level: 'silent' }), { dispatcher });
    await worker.init();
  });

  afterAll(async () => {
    await worker?.close();
    await dispatcher?.close();
    await secured?.close();
    await plain?.close();
    await session.stop();
  });

  it('pays and refunds over the encrypted link (ECDHE + AES-256-GCM, a key per session, nothing secret stored)', async () => {
    expect((await session.http().get(`/v1/terminals/${securedTerminal}`).set(auth)).body).toMatchObject({
      encryption: { enabled: true },
      hasCredentials: true,
    });
    const paid = await pay(securedTerminal, { type: 'purchase', amount: 2_500, currency: 'RUB' });
    expect(paid.body).toMatchObject({ state: 'approved', amount: 2_500, rrn: secured.ledger.log[0]!.rrn });
    const refund = await pay(securedTerminal, { type: 'refund', amount: 1_000, currency: 'RUB', originalOperationId: paid.body.id });
    expect(refund.body).toMatchObject({ state: 'approved', type: 'refund' });
    // Every financial command went encrypted, each inside a secure session that began with a clear login (client-handshake).
    const commands = secured.received.filter((c) => c.command === 'transaction');
    expect(commands).toEqual([
      { command: 'transaction', encrypted: true },
      { command: 'transaction', encrypted: true },
    ]);
    expect(secured.received.filter((c) => c.command === 'login').every((c) => !c.encrypted)).toBe(true);
    expect(secured.sessionKey).toBeUndefined();
    // The row holds a flag; the only secret is the sealed credentials envelope.
    const row = await session.owner.terminal.findUniqueOrThrow({ where: { id: securedTerminal } });
    expect(row.encryptionEnabled).toBe(true);
    expect(row.credentialsEncrypted).not.toContain(DEFAULT_ADMIN_PASSWORD);
  });

  it('partially voids a purchase in the jpay dialect (§8.9), then voids the rest', async () => {
    const paid = await pay(jpayTerminal, { type: 'purchase', amount: 10_000, currency: 'RUB' });
    expect(paid.body.state).toBe('approved');
    const partial = await pay(jpayTerminal, { type: 'partial_void', amount: 3_000, currency: 'RUB', originalOperationId: paid.body.id });
    expect(partial.status).toBe(201);
    expect(partial.body).toMatchObject({ state: 'approved', type: 'partial_void', amount: 3_000 });
    const rest = await pay(jpayTerminal, { type: 'void', currency: 'RUB', originalOperationId: paid.body.id });
    // Recorded as what the terminal reversed (before, the original's whole 10,000: totals counted 3,000 twice).
    expect(rest.body).toMatchObject({ state: 'approved', type: 'void', amount: 7_000 });
    const voids = plain.ledger.log.filter((e) => e.type === 'purchasereversal').map((e) => e.amount);
    expect(voids).toEqual([3_000, 7_000]);
    // Nothing is left to void.
    const again = await pay(jpayTerminal, { type: 'void', currency: 'RUB', originalOperationId: paid.body.id });
    expect(again.status).toBe(422);
    expect(again.body.error).toMatchObject({ code: 'AMOUNT_EXCEEDS_ORIGINAL', details: { remainingAmount: 0 } });
  });

  it('recovers an answer lost after the authorisation from the report: unknown → approved, executed exactly once', async () => {
    // Kopecks 58: the terminal approves and logs the payment, then drops the connection before answering.
    const reportsBefore = plain.received.filter((c) => c.command === 'report').length;
    const lost = await pay(jpayTerminal, { type: 'purchase', amount: 4_258, currency: 'RUB' });
    expect(lost.status).toBe(201);
    const done = await waitFor(
      async () => {
        const body = (await get(lost.body.id)).body;
        return body.state !== 'unknown' && body;
      },
      { timeoutMs: 10_000, intervalMs: 50, what: 'recovery from the report' },
    );
    const logged = plain.ledger.log.filter((e) => e.amount === 4_258);
    expect(logged).toHaveLength(1);
    expect(done).toMatchObject({ state: 'approved', amount: 4_258, rrn: logged[0]!.rrn, approvalCode: logged[0]!.authNumber });
    expect(plain.received.filter((c) => c.command === 'report').length).toBeGreaterThan(reportsBefore);
    // The executor recorded the lost answer as unknown; the recovery (report lookup) decided it.
    const steps = await session.owner.operationEvent.findMany({ where: { operationId: lost.body.id }, orderBy: { createdAt: 'asc' } });
    expect(steps.filter((s) => s.toState === 'UNKNOWN').map((s) => s.kind)).toEqual(['transition']);
    expect(steps.at(-1)).toMatchObject({ kind: 'recovered', fromState: 'UNKNOWN', toState: 'APPROVED' });
    const row = await session.owner.terminalOperation.findUniqueOrThrow({ where: { id: lost.body.id } });
    expect(row.protocolRefs).toMatchObject({ recoveredFrom: 'report', seq: logged[0]!.seq });
  });
});
