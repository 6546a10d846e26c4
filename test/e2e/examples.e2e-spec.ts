import { spawn } from 'node:child_process';
import { createHmac } from 'node:crypto';
import path from 'node:path';

import type { INestApplication } from '@nestjs/common';

import { createWorkerApp } from '../../apps/settlement-worker/src/bootstrap';
import type { PayorchEvent } from '@payorch/client';
import { loadConfig, workerConfigSchema } from '@payorch/config';
import type { TerminalCommand, TerminalCommandReply } from '@payorch/domain';
import { createLogger } from '@payorch/logging';
import { waitFor } from '@payorch/testing';
import { SANDBOX_MERCHANT, startAssistSandbox, TEST_MERCHANT_PRIVATE_KEY_PEM } from '@payorch/testing/assist-sandbox';
import { JoinprotoTerminalSimulator } from '@payorch/testing/joinproto-sim';

import { followOperations } from '../../examples/live-dashboard/dashboard';
import { runPos } from '../../examples/node-pos/pos';
import { payWithWallet } from '../../examples/wallet-payment/pay';
import { startReceiver } from '../../examples/webhook-receiver/receiver';
import { GatewaySession, idem } from './support/gateway-session';
import { InProcessDispatcher } from './support/in-process-dispatcher';

const ROOT = path.resolve(__dirname, '../..');

/** Every terminal the examples create is routed to the one simulated Joinproto terminal (no agent, no connector). */
class SimulatedFleet extends InProcessDispatcher {
  port = 0;
  override dispatch(command: TerminalCommand): Promise<TerminalCommandReply> {
    this.route(command.terminalId, { port: this.port, options: { commandTimeoutMs: 2000 } });
    return super.dispatch(command);
  }
}

function run(command: string, args: string[], env: Record<string, string>): Promise<{ code: number | null; stdout: string; stderr: string }> {
  return new Promise((resolve, reject) => {
    const child = spawn(command, args, { cwd: ROOT, env: { ...process.env, ...env } });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
    child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
    child.on('error', reject);
    child.on('close', (code) => resolve({ code, stdout, stderr }));
  });
}

describe('examples/ against a started gateway and a simulated terminal', () => {
  const session = new GatewaySession();
  let fleet: SimulatedFleet;
  let joinproto: JoinprotoTerminalSimulator;
  let baseUrl: string;
  let apiKey: string;

  beforeAll(async () => {
    session.dispatcherFactory = (appUrl, publish) => (fleet = new SimulatedFleet(appUrl, publish));
    await session.start();
    apiKey = (await session.tenant()).apiKey;
    baseUrl = (await session.app.getUrl()).replace('[::1]', '127.0.0.1');
    joinproto = new JoinprotoTerminalSimulator({ cardTimeoutMs: 30 });
    fleet.port = (await joinproto.listen(0)).port;
  });
  afterAll(async () => {
    await fleet.close();
    await joinproto.close();
    await session.stop();
  });

  it('curl-walkthrough: store → agent → terminal → approved purchase → approved refund → receipt', async () => {
    const res = await run('bash', ['examples/curl-walkthrough/walkthrough.sh'], {
      PAYORCH_URL: baseUrl,
      PAYORCH_API_KEY: apiKey,
      TERMINAL_HOST: '127.0.0.1',
      TERMINAL_PORT: String(fleet.port),
    });
    expect({ code: res.code, stderr: res.stderr }).toEqual({ code: 0, stderr: '' });
    expect(res.stdout).toMatch(/agent [0-9a-f-]{36} \(pending_enrollment\)/);
    expect(res.stdout).toMatch(/payorch-agent enroll --connector <connector URL> --token \S+/);
    expect(res.stdout).toMatch(/purchase [0-9a-f-]{36}: approved/);
    expect(res.stdout).toMatch(/refund [0-9a-f-]{36}: approved/);
    const purchaseId = /purchase ([0-9a-f-]{36}): approved/.exec(res.stdout)![1]!;
    const receipt = await session
      .http()
      .get(`/v1/operations/${purchaseId}/receipt`)
      .set({ Authorization: `Bearer ${apiKey}` });
    expect(res.stdout.trimEnd().endsWith(receipt.body.text.trimEnd())).toBe(true);
  });

  it('curl-walkthrough: an error answer stops the script with the error envelope', async () => {
    const res = await run('bash', ['examples/curl-walkthrough/walkthrough.sh'], { PAYORCH_URL: baseUrl, PAYORCH_API_KEY: 'pok_wrong' });
    expect(res.code).toBe(1);
    expect(res.stderr).toContain('POST /v1/stores → 401 {"error":{"code":"UNAUTHENTICATED"');
  });

  it('node-pos: an approved purchase with its receipt and refund through @payorch/client', async () => {
    const auth = { Authorization: `Bearer ${apiKey}` };
    const store = await session.http().post('/v1/stores').set(auth).set('Idempotency-Key', idem()).send({ name: 'POS', timeZone: 'UTC' });
    const terminal = await session
      .http()
      .post('/v1/terminals')
      .set(auth)
      .set('Idempotency-Key', idem())
      .send({ name: 'Till', storeId: store.body.id, protocol: 'joinproto', connection: { kind: 'tcp', host: '127.0.0.1', port: fleet.port } });
    const lines: string[] = [];
    const result = await runPos({ baseUrl, apiKey, terminalId: terminal.body.id, amount: 2500, refund: true, log: (l) => lines.push(l) });
    expect(result.purchase).toMatchObject({ state: 'approved', amount: 2500, type: 'purchase' });
    expect(result.receipt?.text).toEqual(expect.any(String));
    expect(result.refund).toMatchObject({ state: 'approved', type: 'refund', originalOperationId: result.purchase.id });
    expect(lines[0]).toBe('terminal Till (joinproto, unknown)');
    expect(lines).toContain(`refund ${result.refund!.id}: approved`);
  });

  it('live-dashboard: prints the operation events of a payment from the live stream, then stops', async () => {
    const { tenantId, apiKey: key } = await session.tenant();
    const auth = { Authorization: `Bearer ${key}` };
    const store = await session.http().post('/v1/stores').set(auth).set('Idempotency-Key', idem()).send({ name: 'Board', timeZone: 'UTC' });
    const terminal = await session
      .http()
      .post('/v1/terminals')
      .set(auth)
      .set('Idempotency-Key', idem())
      .send({ name: 'Till', storeId: store.body.id, protocol: 'joinproto', connection: { kind: 'tcp', host: '127.0.0.1', port: fleet.port } });
    // Resume after the terminal's creation (as after a restart): the payment's events are shown whether they
    // commit before or after the stream is open.
    const created = await waitFor(
      () => session.owner.domainEvent.findFirst({ where: { tenantId, type: 'terminal.created', seq: { not: null } } }).then((e) => e ?? undefined),
      { what: 'terminal.created numbered' },
    );
    const lines: string[] = [];
    const controller = new AbortController();
    const following = followOperations({ baseUrl, apiKey: key, lastEventId: created.id, signal: controller.signal, log: (l) => lines.push(l) });

    const paid = await session
      .http()
      .post(`/v1/terminals/${terminal.body.id}/operations?wait=5000`)
      .set(auth)
      .set('Idempotency-Key', idem())
      .send({ type: 'purchase', amount: 1200, currency: 'RUB' });
    expect(paid.body.state).toBe('approved');
    const completion = await waitFor(() => lines.find((l) => l.includes(`operation.completed ${paid.body.id} approved 1200 RUB`)), {
      what: 'the dashboard printing the completion',
    });
    expect(completion).toMatch(/^\S+Z operation\.completed [0-9a-f-]{36} approved 1200 RUB .*\(event [0-9a-f-]{36}\)$/);
    expect(lines.some((l) => l.includes(`operation.created ${paid.body.id}`))).toBe(true);
    expect(lines.every((l) => / operation\.\w+ /.test(l))).toBe(true);
    controller.abort();
    await expect(following).resolves.toBeUndefined();
  });

  it('wallet-payment: an Apple Pay token paid through the Assist sandbox, and a decline', async () => {
    const sandbox = await startAssistSandbox();
    try {
      const auth = { Authorization: `Bearer ${apiKey}` };
      const merchant = await session.http().post('/v1/assist-merchants').set(auth).set('Idempotency-Key', idem()).send({
        name: 'Shop',
        serverUrl: sandbox.url,
        merchantId: SANDBOX_MERCHANT.merchantId,
        login: SANDBOX_MERCHANT.login,
        password: SANDBOX_MERCHANT.password,
        salt: SANDBOX_MERCHANT.salt,
        privateKeyPem: TEST_MERCHANT_PRIVATE_KEY_PEM,
      });
      expect(merchant.status).toBe(201);
      const token = {
        version: 'EC_v1',
        data: 'QXBwbGVQYXlUZXN0',
        signature: 'c2ln',
        header: { ephemeralPublicKey: 'ZHVtbXk=', publicKeyHash: 'ZHVtbXk=', transactionId: 'ex1' },
      };
      const customer = { lastname: 'Иванов', firstname: 'Иван', email: 'ivan@example.com' };
      const lines: string[] = [];
      const charges = sandbox.stats.charges;
      const approved = await payWithWallet({
        baseUrl,
        apiKey,
        merchantId: merchant.body.id,
        amount: 10_000,
        tokenType: 'apple_pay',
        token,
        customer,
        log: (l) => lines.push(l),
      });
      expect(approved).toMatchObject({ state: 'approved', amount: 10_000, currency: 'RUB', assist: { orderState: 'Approved' } });
      expect(sandbox.stats.charges).toBe(charges + 1);
      expect(lines).toEqual([`wallet payment ${approved.id}: approved (Assist Approved, order ${approved.orderNumber})`]);

      const declined = await payWithWallet({
        baseUrl,
        apiKey,
        merchantId: merchant.body.id,
        amount: 10_001,
        tokenType: 'apple_pay',
        token,
        customer,
        log: (l) => lines.push(l),
      });
      expect(declined.state).toBe('declined');
      expect(lines[1]).toBe(`wallet payment ${declined.id}: declined (Assist Declined, order ${declined.orderNumber})`);
      expect(sandbox.stats.charges).toBe(charges + 1);
    } finally {
      await sandbox.close();
    }
  });
});

describe('examples/webhook-receiver against a started gateway, the delivery worker and a simulated terminal', () => {
  const session = new GatewaySession();
  let fleet: SimulatedFleet;
  let joinproto: JoinprotoTerminalSimulator;
  let worker: INestApplication;

  beforeAll(async () => {
    session.dispatcherFactory = (appUrl, publish) => (fleet = new SimulatedFleet(appUrl, publish));
    await session.start({ WEBHOOK_ALLOW_HTTP: 'true' });
    joinproto = new JoinprotoTerminalSimulator({ cardTimeoutMs: 30 });
    fleet.port = (await joinproto.listen(0)).port;
    const config = loadConfig('settlement-worker', workerConfigSchema, {
      DATABASE_APP_URL: session.testDb.appUrl,
      REDIS_URL: session.config.REDIS_URL,
      REDIS_KEY_PREFIX: session.config.REDIS_KEY_PREFIX,
      LOG_LEVEL: 'silent',
      PAYORCH_MASTER_KEY: session.config.PAYORCH_MASTER_KEY,
      WEBHOOK_ALLOW_HTTP: 'true',
      EGRESS_ALLOW_CIDRS: '127.0.0.0/8',
      WEBHOOK_SWEEP_INTERVAL_MS: '600000',
      RECOVERY_INTERVAL_MS: '600000',
      SETTLEMENT_SYNC_INTERVAL_MS: '600000',
      WALLET_SWEEP_INTERVAL_MS: '600000',
    });
    worker = await createWorkerApp(config, createLogger({ name: 'test', level: 'silent' }));
    await worker.init();
  });
  afterAll(async () => {
    await worker.close();
    await fleet.close();
    await joinproto.close();
    await session.stop();
  });

  it('receives and verifies a signed operation.completed delivery; a forged or unsigned delivery gets 401', async () => {
    const auth = { Authorization: `Bearer ${(await session.tenant()).apiKey}` };
    const events: PayorchEvent[] = [];
    const lines: string[] = [];
    const hook = await session
      .http()
      .post('/v1/webhooks')
      .set(auth)
      .set('Idempotency-Key', idem())
      .send({ url: 'http://127.0.0.1:9/placeholder', eventTypes: ['operation.completed'] });
    expect(hook.status).toBe(201);
    const receiver = await startReceiver({ secret: hook.body.secret, onEvent: (e) => events.push(e), log: (l) => lines.push(l) });
    try {
      const moved = await session
        .http()
        .patch(`/v1/webhooks/${hook.body.id}`)
        .set(auth)
        .set('Idempotency-Key', idem())
        .send({ url: `${receiver.url}/payorch` });
      expect(moved.status).toBe(200);
      const store = await session.http().post('/v1/stores').set(auth).set('Idempotency-Key', idem()).send({ name: 'Hooks', timeZone: 'UTC' });
      const terminal = await session
        .http()
        .post('/v1/terminals')
        .set(auth)
        .set('Idempotency-Key', idem())
        .send({ name: 'Till', storeId: store.body.id, protocol: 'joinproto', connection: { kind: 'tcp', host: '127.0.0.1', port: fleet.port } });
      const paid = await session
        .http()
        .post(`/v1/terminals/${terminal.body.id}/operations?wait=5000`)
        .set(auth)
        .set('Idempotency-Key', idem())
        .send({ type: 'purchase', amount: 1700, currency: 'RUB' });
      expect(paid.body.state).toBe('approved');

      const event = await waitFor(() => events.find((e) => e.data.operationId === paid.body.id), { what: 'the receiver verifying the delivery' });
      expect(event).toMatchObject({ type: 'operation.completed', data: { state: 'approved', amount: 1700 } });
      expect(lines).toContain(`event ${event.id} operation.completed ${JSON.stringify(event.data)}`);
      const log = await waitFor(
        async () => {
          const res = await session.http().get(`/v1/webhooks/${hook.body.id}/deliveries`).set(auth);
          return (res.body.data as { eventId: string; status: string; lastStatusCode: number | null }[]).find(
            (d) => d.eventId === event.id && d.status === 'delivered',
          );
        },
        { what: 'the delivery logged as delivered' },
      );
      expect(log.lastStatusCode).toBe(204);

      const body = JSON.stringify({ ...event, data: { ...event.data, amount: 1 } });
      const t = Math.floor(Date.now() / 1000);
      const forged = `t=${t},v1=${createHmac('sha256', 'whsec_not-the-secret').update(`${t}.${body}`).digest('hex')}`;
      const post = (headers: Record<string, string>) =>
        fetch(`${receiver.url}/payorch`, { method: 'POST', headers: { 'Content-Type': 'application/json', ...headers }, body });
      expect((await post({ 'Payorch-Signature': forged })).status).toBe(401);
      expect((await post({})).status).toBe(401);
      // The genuine signature does not cover a tampered body either.
      const genuine = `t=${t},v1=${createHmac('sha256', hook.body.secret as string)
        .update(`${t}.${JSON.stringify(event)}`)
        .digest('hex')}`;
      expect((await post({ 'Payorch-Signature': genuine })).status).toBe(401);
      expect(events).toHaveLength(1);
    } finally {
      await receiver.close();
    }
  });
});
