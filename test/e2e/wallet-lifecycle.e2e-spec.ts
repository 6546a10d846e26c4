import { getQueueToken } from '@nestjs/bullmq';
import type { INestApplication } from '@nestjs/common';
import type { Queue } from 'bullmq';

import { createWorkerApp } from '../../apps/settlement-worker/src/bootstrap';
import { loadConfig, workerConfigSchema } from '@payorch/config';
import { QUEUES } from '@payorch/domain';
import { createLogger } from '@payorch/logging';
import { waitFor } from '@payorch/testing';
import { resolveJobId } from '@payorch/wallet-payments';
import { type AssistSandbox, SANDBOX_MERCHANT, startAssistSandbox, TEST_MERCHANT_PRIVATE_KEY_PEM } from '@payorch/testing/assist-sandbox';

import { GatewaySession, idem } from './support/gateway-session';

const TOKEN = {
  version: 'EC_v1',
  data: 'QXBwbGVQYXlFbmNyeXB0ZWREYXRhRm9yVGVzdHM=',
  signature: 'ZHVtbXktc2lnbmF0dXJl',
  header: { ephemeralPublicKey: 'ZHVtbXk=', publicKeyHash: 'ZHVtbXk=', transactionId: 'abc123' },
};
const customer = { lastname: 'Иванов', firstname: 'Иван', email: 'ivan@example.com' };

type Body = Record<string, any>;

/**
 * Issue 17: capture, cancel and refund of wallet payments, full and partial, through the gateway, the worker's
 * resolution job and the Assist sandbox — exactly once on the wire.
 */
describe('wallet payment lifecycle (capture / cancel / refund, real Postgres + Redis + sandbox)', () => {
  const session = new GatewaySession();
  let sandbox: AssistSandbox;
  let worker: INestApplication;
  let auth: { Authorization: string };
  let merchantId: string;

  const pay = async (amount: number, twoStage: boolean): Promise<Body> => {
    const res = await session
      .http()
      .post('/v1/wallet-payments')
      .set(auth)
      .set('Idempotency-Key', idem())
      .send({ merchantId, amount, currency: 'RUB', tokenType: 'apple_pay', token: TOKEN, customer, twoStage });
    expect(res.status).toBe(201);
    expect(res.body.state).toBe(twoStage ? 'authorized' : 'approved');
    return res.body as Body;
  };

  const operate = (id: string, action: 'capture' | 'cancel', body: Record<string, unknown> = {}, key = idem(), headers = auth) =>
    session.http().post(`/v1/wallet-payments/${id}/${action}`).set(headers).set('Idempotency-Key', key).send(body);

  const get = async (id: string): Promise<Body> => {
    const res = await session.http().get(`/v1/wallet-payments/${id}`).set(auth);
    expect(res.status).toBe(200);
    return res.body as Body;
  };

  const paymentWhen = (id: string, until: (body: Body) => boolean) =>
    waitFor(
      async () => {
        const body = await get(id);
        return until(body) && body;
      },
      { timeoutMs: 15_000, intervalMs: 100, what: `payment ${id} in the expected state` },
    );

  const eventsOf = async (id: string) =>
    (await session.owner.domainEvent.findMany({ where: { subjectId: id }, orderBy: { createdAt: 'asc' } })).map((e) => e.type);

  /** The sandbox's journal: the operations on the order, by Assist type code. */
  const journal = (orderNumber: string) => (sandbox.orders.get(orderNumber)?.operations ?? []).map((op) => `${op.operationtype}:${op.amount}`);

  beforeAll(async () => {
    sandbox = await startAssistSandbox();
    await session.start({ ASSIST_TIMEOUT_MS: '1000', WALLET_RESOLVE_DELAY_MS: '100', WALLET_RESOLVE_BACKOFF_MS: '200', WALLET_RESOLVE_ATTEMPTS: '20' });
    const workerConfig = loadConfig('settlement-worker', workerConfigSchema, {
      DATABASE_APP_URL: session.testDb.appUrl,
      REDIS_URL: session.config.REDIS_URL,
      REDIS_KEY_PREFIX: session.config.REDIS_KEY_PREFIX,
      PAYORCH_MASTER_KEY: session.config.PAYORCH_MASTER_KEY,
      LOG_LEVEL: 'silent',
      EGRESS_ALLOW_CIDRS: '127.0.0.0/8, ::1',
      WORKER_CONCURRENCY: '2',
      ASSIST_ORDERSTATE_TIMEOUT_MS: '1000',
      WALLET_SWEEP_INTERVAL_MS: '600000',
      WALLET_SWEEP_OLDER_THAN_MS: '600000',
    });
    worker = await createWorkerApp(workerConfig, createLogger({ name: 'test', level: 'silent' }));
    await worker.init();
    const tenant = await session.tenant();
    auth = { Authorization: `Bearer ${tenant.apiKey}` };
    const created = await session.http().post('/v1/assist-merchants').set(auth).set('Idempotency-Key', idem()).send({
      name: 'Shop at Assist',
      serverUrl: sandbox.url,
      merchantId: SANDBOX_MERCHANT.merchantId,
      login: SANDBOX_MERCHANT.login,
      password: SANDBOX_MERCHANT.password,
      salt: SANDBOX_MERCHANT.salt,
      privateKeyPem: TEST_MERCHANT_PRIVATE_KEY_PEM,
    });
    if (created.status !== 201) throw new Error(`merchant settings not created: ${JSON.stringify(created.body)}`);
    merchantId = created.body.id;
  });

  afterAll(async () => {
    await worker?.close();
    await session.stop();
    await sandbox?.close();
  });

  describe('transitions', () => {
    it('full capture: AUTHORIZED → APPROVED, with the Charge operation and wallet_payment.captured', async () => {
      const p = await pay(10000, true);
      expect(p.amounts).toEqual({ authorized: 10000, captured: 0, refunded: 0, released: 0 });
      const res = await operate(p.id, 'capture');
      expect(res.status).toBe(200);
      expect(res.body).toMatchObject({ state: 'approved', amounts: { authorized: 10000, captured: 10000, refunded: 0, released: 0 } });
      expect(res.body.operations).toEqual([
        expect.objectContaining({
          kind: 'capture',
          amount: 10000,
          state: 'succeeded',
          assistBillNumber: `${p.assist.billNumber}.2`,
          assist: expect.objectContaining({ type: 'Charge', state: 'Success', responseCode: 'AS000', amount: '100.00' }),
          error: null,
        }),
      ]);
      expect(journal(p.orderNumber)).toEqual(['100:100.00', '200:100.00']);
      expect(await eventsOf(p.id)).toEqual(['wallet_payment.created', 'wallet_payment.updated', 'wallet_payment.updated', 'wallet_payment.captured']);
    });

    it('partial capture, then cancel of the remainder, then refund of what was captured', async () => {
      const p = await pay(10000, true);
      const captured = await operate(p.id, 'capture', { amount: 4000 });
      expect(captured.body).toMatchObject({ state: 'partially_captured', amounts: { authorized: 10000, captured: 4000, released: 0, refunded: 0 } });
      expect(sandbox.orders.get(p.orderNumber)?.state).toBe('PartialDelayed');

      const released = await operate(p.id, 'cancel');
      expect(released.status).toBe(200);
      expect(released.body).toMatchObject({ state: 'approved', amounts: { captured: 4000, released: 6000, refunded: 0 } });
      expect(released.body.operations.map((o: Body) => [o.kind, o.amount, o.state])).toEqual([
        ['capture', 4000, 'succeeded'],
        ['cancel_authorization', 6000, 'succeeded'],
      ]);

      const refunded = await operate(p.id, 'cancel');
      expect(refunded.body).toMatchObject({ state: 'refunded', amounts: { captured: 4000, released: 6000, refunded: 4000 } });
      expect(journal(p.orderNumber)).toEqual(['100:100.00', '200:40.00', '300:60.00', '300:40.00']);
      expect(sandbox.orders.get(p.orderNumber)?.state).toBe('Canceled');
      expect((await eventsOf(p.id)).slice(3)).toEqual(['wallet_payment.partially_captured', 'wallet_payment.partially_canceled', 'wallet_payment.refunded']);
    });

    it('two partial captures up to the authorised amount', async () => {
      const p = await pay(10000, true);
      expect((await operate(p.id, 'capture', { amount: 3000 })).body.state).toBe('partially_captured');
      const over = await operate(p.id, 'capture', { amount: 7001 });
      expect(over.status).toBe(422);
      expect(over.body.error).toMatchObject({ code: 'WALLET_AMOUNT_EXCEEDS_AUTHORIZED', details: { amount: 7001, available: 7000 } });
      const rest = await operate(p.id, 'capture', { amount: 7000 });
      expect(rest.body).toMatchObject({ state: 'approved', amounts: { captured: 10000 } });
    });

    it('release of the whole authorisation: AUTHORIZED → CANCELED; a cancelled payment is neither captured nor cancelled again', async () => {
      const p = await pay(10000, true);
      const res = await operate(p.id, 'cancel');
      expect(res.body).toMatchObject({ state: 'canceled', amounts: { authorized: 10000, captured: 0, released: 10000, refunded: 0 } });
      expect((await eventsOf(p.id)).at(-1)).toBe('wallet_payment.canceled');
      for (const action of ['capture', 'cancel'] as const) {
        const again = await operate(p.id, action);
        expect(again.status).toBe(409);
        expect(again.body.error.code).toBe('WALLET_PAYMENT_ALREADY_CANCELED');
      }
      expect(journal(p.orderNumber)).toEqual(['100:100.00', '300:100.00']);
    });

    it('refund after a one-stage payment, repeated partial refunds up to the captured amount', async () => {
      const p = await pay(10000, false);
      const capture = await operate(p.id, 'capture');
      expect(capture.status).toBe(409);
      expect(capture.body.error.code).toBe('WALLET_PAYMENT_ONE_STAGE');

      expect((await operate(p.id, 'cancel', { amount: 3000 })).body).toMatchObject({ state: 'partially_refunded', amounts: { refunded: 3000 } });
      expect((await operate(p.id, 'cancel', { amount: 3000 })).body).toMatchObject({ state: 'partially_refunded', amounts: { refunded: 6000 } });
      const over = await operate(p.id, 'cancel', { amount: 4001 });
      expect(over.status).toBe(422);
      expect(over.body.error).toMatchObject({ code: 'WALLET_AMOUNT_EXCEEDS_CAPTURED', details: { available: 4000 } });
      expect((await operate(p.id, 'cancel', { amount: 4000 })).body).toMatchObject({ state: 'refunded', amounts: { captured: 10000, refunded: 10000 } });
      expect((await eventsOf(p.id)).slice(3)).toEqual(['wallet_payment.partially_refunded', 'wallet_payment.partially_refunded', 'wallet_payment.refunded']);
      expect(sandbox.orders.get(p.orderNumber)?.state).toBe('Canceled');
    });

    it('refuses bad input with a clear 4xx in the one error envelope', async () => {
      const p = await pay(10000, true);
      const zero = await operate(p.id, 'capture', { amount: 0 });
      expect(zero.status).toBe(400);
      expect(zero.body.error.code).toBe('VALIDATION_FAILED');
      const extra = await operate(p.id, 'capture', { amount: 10, note: 'x' });
      expect(extra.status).toBe(400);
      const noKey = await session.http().post(`/v1/wallet-payments/${p.id}/capture`).set(auth).send({});
      expect(noKey.status).toBe(400);
      expect(noKey.body.error.code).toBe('IDEMPOTENCY_KEY_REQUIRED');
      const missing = await operate('00000000-0000-4000-8000-000000000000', 'capture');
      expect(missing.status).toBe(404);
      const declined = await session
        .http()
        .post('/v1/wallet-payments')
        .set(auth)
        .set('Idempotency-Key', idem())
        .send({ merchantId, amount: 10001, currency: 'RUB', tokenType: 'apple_pay', token: TOKEN, customer });
      const refused = await operate(declined.body.id, 'cancel');
      expect(refused.status).toBe(409);
      expect(refused.body.error.code).toBe('WALLET_PAYMENT_NOT_CANCELABLE');
    });

    it('replays the same Idempotency-Key and body, refuses the key for another body', async () => {
      const p = await pay(10000, true);
      const key = idem();
      const first = await operate(p.id, 'capture', { amount: 1000 }, key);
      const again = await operate(p.id, 'capture', { amount: 1000 }, key);
      expect(again.status).toBe(200);
      expect(again.headers['idempotent-replayed']).toBe('true');
      expect(again.body.operations).toEqual(first.body.operations);
      const other = await operate(p.id, 'capture', { amount: 2000 }, key);
      expect(other.status).toBe(409);
      expect(other.body.error.code).toBe('IDEMPOTENCY_KEY_REUSED');
      expect(journal(p.orderNumber)).toEqual(['100:100.00', '200:10.00']);
    });
  });

  describe('exactly once on the wire', () => {
    it('a capture whose answer is lost is UNKNOWN, then resolved through orderstate without a second Charge', async () => {
      const p = await pay(10000, true);
      const before = sandbox.stats.chargeRequests;
      sandbox.setMode('lost-answer', { endpoint: 'charge', times: 1 });
      const res = await operate(p.id, 'capture', { amount: 2500 });
      expect(res.status).toBe(200);
      expect(res.body.state).toBe('authorized');
      expect(res.body.operations).toEqual([
        expect.objectContaining({ kind: 'capture', state: 'unknown', error: expect.objectContaining({ source: 'transport' }) }),
      ]);

      const resolved = await paymentWhen(p.id, (b) => b.operations[0].state !== 'unknown');
      expect(resolved).toMatchObject({ state: 'partially_captured', amounts: { captured: 2500 } });
      expect(resolved.operations[0]).toMatchObject({ state: 'succeeded', assistBillNumber: `${p.assist.billNumber}.2`, resolutionAttempts: 1 });
      expect(sandbox.stats.chargeRequests - before).toBe(1);
      expect(journal(p.orderNumber)).toEqual(['100:100.00', '200:25.00']);
    });

    it('a refund whose answer is lost is resolved without a second PaymentCancel, matched among several operations', async () => {
      const p = await pay(10000, false);
      await operate(p.id, 'cancel', { amount: 1000 });
      const before = sandbox.stats.cancelRequests;
      sandbox.setMode('lost-answer', { endpoint: 'cancel', times: 1 });
      const res = await operate(p.id, 'cancel', { amount: 1000 });
      expect(res.body.operations[1]).toMatchObject({ kind: 'refund', state: 'unknown' });

      const resolved = await paymentWhen(p.id, (b) => b.operations[1].state !== 'unknown');
      // Two cancels of the same amount on the order: the first is already ours, the second is the lost one.
      expect(resolved.operations.map((o: Body) => [o.state, o.assistBillNumber])).toEqual([
        ['succeeded', `${p.assist.billNumber}.2`],
        ['succeeded', `${p.assist.billNumber}.3`],
      ]);
      expect(resolved).toMatchObject({ state: 'partially_refunded', amounts: { refunded: 2000 } });
      expect(sandbox.stats.cancelRequests - before).toBe(1);
      expect(journal(p.orderNumber)).toEqual(['100:100.00', '300:10.00', '300:10.00']);
    });

    it('an answer failing its checkvalue is never trusted: UNKNOWN, then resolved from a verified orderstate', async () => {
      const p = await pay(10000, true);
      sandbox.setMode('bad-checkvalue', { endpoint: 'charge', times: 1 });
      const res = await operate(p.id, 'capture');
      expect(res.body.operations[0]).toMatchObject({ state: 'unknown', error: expect.objectContaining({ source: 'integrity', code: 'CHECKVALUE_MISMATCH' }) });
      expect(res.body.state).toBe('authorized');
      const resolved = await paymentWhen(p.id, (b) => b.state === 'approved');
      expect(resolved.operations[0].state).toBe('succeeded');
      expect(journal(p.orderNumber)).toEqual(['100:100.00', '200:100.00']);
    });

    it('a payment or operation id written in capitals is the same resource: the same request replays, a verdict finds it, the audit log lists it', async () => {
      // Swift's UUID().uuidString (an iOS backend paying Apple Pay tokens) writes UUIDs in capitals.
      const p = await pay(10000, true);
      const PAYMENT = p.id.toUpperCase();
      const key = idem();
      // Charged, but every answer fails its checkvalue: the capture stays unknown, for a person.
      sandbox.setMode('bad-checkvalue', { endpoint: 'all' });
      try {
        const first = await operate(PAYMENT, 'capture', { amount: 4000 }, key);
        expect(first.status).toBe(200);
        expect(first.body.operations).toEqual([expect.objectContaining({ kind: 'capture', state: 'unknown' })]);
        const operationId: string = first.body.operations[0].id;

        // The gateway's 24 h record is gone: the operation's own key and request hash answer the repeat.
        await session.owner.idempotencyRecord.deleteMany({ where: { key } });
        const again = await operate(PAYMENT, 'capture', { amount: 4000 }, key);
        expect([again.status, again.body.error?.code]).toEqual([200, undefined]);
        expect(again.body.operations).toEqual([expect.objectContaining({ id: operationId })]);

        const verdict = await session
          .http()
          .post(`/v1/wallet-payments/${PAYMENT}/operations/${operationId.toUpperCase()}/resolve`)
          .set(auth)
          .set('Idempotency-Key', idem())
          .send({ state: 'succeeded', note: 'back office: Charge 40.00 Success', billNumber: `${p.assist.billNumber}.2` });
        expect([verdict.status, verdict.body.error?.code]).toEqual([200, undefined]);
        expect(verdict.body).toMatchObject({ state: 'partially_captured', amounts: { captured: 4000 }, operations: [{ id: operationId, state: 'succeeded' }] });
      } finally {
        sandbox.setMode('normal', { endpoint: 'all' });
      }
      const audit = await session.http().get(`/v1/audit-log?resourceId=${p.id}`).set(auth);
      expect(audit.status).toBe(200);
      expect(audit.body.data.map((e: Body) => e.action).sort()).toEqual([
        'wallet_payment.capture',
        'wallet_payment.create',
        'wallet_payment.resolve_operation',
      ]);
      expect(journal(p.orderNumber)).toEqual(['100:100.00', '200:40.00']);
      // A UUID in the query is canonical too (common/zod canonicalUuid): the key's entries, found by its id in capitals.
      const keyId: string = audit.body.data[0].actorId;
      const byKey = await session.http().get(`/v1/audit-log?resourceId=${p.id}&apiKeyId=${keyId.toUpperCase()}`).set(auth);
      expect([byKey.status, byKey.body.data?.length]).toEqual([200, 3]);
      const both = await session.http().get(`/v1/audit-log?resourceId=${p.id}&actorId=${keyId}&apiKeyId=${keyId.toUpperCase()}`).set(auth);
      expect([both.status, both.body.data?.length]).toEqual([200, 3]);
    });

    describe("a person's verdict `succeeded` without a billnumber claims one of the order's records", () => {
      /** The sandbox journal's money per Assist operation type, in minor units (`200` Charge, `300` PaymentCancel). */
      const journalMinor = (orderNumber: string, type: '200' | '300') =>
        (sandbox.orders.get(orderNumber)?.operations ?? [])
          .filter((op) => op.operationtype === type)
          .reduce((sum, op) => sum + Math.round(Number(op.amount) * 100), 0);

      /**
       * Sends the operation while every answer about it (its own, and orderstate's) fails its checkvalue: Assist carries
       * it out, payorch cannot tell, the job never adopts anything — then a person settles it `succeeded` WITHOUT naming
       * its billnumber. Waits until the payment's resolution job is done with it, so the next operation gets its own job.
       */
      const settledByHandWithoutBillNumber = async (p: Body, action: 'capture' | 'cancel', amount: number): Promise<Body> => {
        sandbox.setMode('bad-checkvalue', { endpoint: 'all' });
        let operationId: string;
        try {
          const sent = await operate(p.id, action, { amount });
          expect(sent.status).toBe(200);
          const open = sent.body.operations.at(-1) as Body;
          expect(open).toMatchObject({ state: 'unknown', error: expect.objectContaining({ code: 'CHECKVALUE_MISMATCH' }) });
          operationId = open.id;
          const verdict = await session
            .http()
            .post(`/v1/wallet-payments/${p.id}/operations/${operationId}/resolve`)
            .set(auth)
            .set('Idempotency-Key', idem())
            .send({ state: 'succeeded', note: 'back office: listed as Success, billnumber not copied' });
          expect([verdict.status, verdict.body.error?.code]).toEqual([200, undefined]);
        } finally {
          sandbox.setMode('normal', { endpoint: 'all' });
        }
        const settled = await get(p.id);
        expect(settled.operations.find((o: Body) => o.id === operationId)).toMatchObject({ state: 'succeeded', assistBillNumber: null });
        const queue = worker.get<Queue>(getQueueToken(QUEUES.walletPayments), { strict: false });
        await waitFor(
          async () => {
            const job = await queue.getJob(resolveJobId(p.id));
            const state = await job?.getState();
            if (state === 'delayed') await job!.promote().catch(() => undefined);
            return state === undefined || state === 'completed';
          },
          { timeoutMs: 15_000, intervalMs: 50, what: `the resolution job of payment ${p.id} done` },
        );
        return settled;
      };

      /** Sends the operation with the request refused before Assist processes it (HTTP 500): it is `unknown`, and nothing moved. */
      const neverReachesAssist = async (p: Body, action: 'capture' | 'cancel', amount: number): Promise<Body> => {
        sandbox.setMode('http500', { endpoint: action === 'capture' ? 'charge' : 'cancel', times: 1 });
        const sent = await operate(p.id, action, { amount });
        expect(sent.status).toBe(200);
        const open = sent.body.operations.at(-1) as Body;
        expect(open).toMatchObject({ state: 'unknown', error: expect.objectContaining({ source: 'transport', code: 'HTTP_STATUS' }) });
        return open;
      };

      /** The job has read orderstate about it at least twice (or settled it). */
      const afterTheJob = async (paymentId: string, operationId: string): Promise<Body> => {
        const body = await paymentWhen(paymentId, (b) => {
          const op = b.operations.find((o: Body) => o.id === operationId);
          return op.state !== 'unknown' || op.resolutionAttempts >= 2;
        });
        return body;
      };

      it.each([
        { name: 'capture', twoStage: true, first: 'capture', then: 'capture', type: '200', column: 'captured' },
        { name: 'refund', twoStage: false, first: 'cancel', then: 'cancel', type: '300', column: 'refunded' },
        { name: 'release', twoStage: true, first: 'cancel', then: 'cancel', type: '300', column: 'released' },
      ] as const)(
        '$name: a later identical one that never reached Assist is not taken for the record the verdict stands for',
        async ({ twoStage, first, then, type, column }) => {
          const p = await pay(10000, twoStage);
          await settledByHandWithoutBillNumber(p, first, 3000);
          const open = await neverReachesAssist(p, then, 3000);

          const after = await afterTheJob(p.id, open.id);
          const second = after.operations.find((o: Body) => o.id === open.id);
          // Assist made one operation of 30.00: the person's verdict stands for it. The second never reached Assist.
          expect(journalMinor(p.orderNumber, type)).toBe(3000);
          expect(second).toMatchObject({ state: 'unknown', assistBillNumber: null });
          expect(after.amounts[column]).toBe(journalMinor(p.orderNumber, type));
        },
      );

      it('a hand-settled release and a refund of the same amount are both PaymentCancel records: the refund does not take the release', async () => {
        const p = await pay(10000, true);
        expect((await operate(p.id, 'capture', { amount: 7000 })).body.state).toBe('partially_captured');
        await settledByHandWithoutBillNumber(p, 'cancel', 3000); // releases the remaining 3000
        const open = await neverReachesAssist(p, 'cancel', 3000); // refunds 3000 of the 7000 captured
        expect(open.kind).toBe('refund');

        const after = await afterTheJob(p.id, open.id);
        expect(journalMinor(p.orderNumber, '300')).toBe(3000);
        expect(after.operations.find((o: Body) => o.id === open.id)).toMatchObject({ state: 'unknown' });
        expect(after.amounts).toEqual({ authorized: 10000, captured: 7000, released: 3000, refunded: 0 });
      });

      it('an identical operation answered by Assist takes one record; a third that never reached Assist takes none', async () => {
        const p = await pay(10000, true);
        await settledByHandWithoutBillNumber(p, 'capture', 3000);
        const answered = await operate(p.id, 'capture', { amount: 3000 });
        // Two Charges of 30.00 now: one is the verdict's, the other this one's (which is which does not change the money).
        expect(answered.body.operations[1]).toMatchObject({ state: 'succeeded', assistBillNumber: expect.stringMatching(/\.[23]$/) });
        expect(answered.body.amounts.captured).toBe(6000);

        const open = await neverReachesAssist(p, 'capture', 3000);
        const after = await afterTheJob(p.id, open.id);
        expect(journalMinor(p.orderNumber, '200')).toBe(6000);
        expect(after.operations.find((o: Body) => o.id === open.id)).toMatchObject({ state: 'unknown', assistBillNumber: null });
        expect(after.amounts.captured).toBe(6000);
      });
    });

    it('refuses a second operation while one is open (409 WALLET_OPERATION_IN_PROGRESS)', async () => {
      const p = await pay(10000, true);
      sandbox.setMode('hang', { endpoint: 'charge', times: 1 });
      // supertest sends on then(): start the request now, await its answer later.
      const first = operate(p.id, 'capture', { amount: 1000 }).then((r) => r);
      await paymentWhen(p.id, (b) => b.operations.length === 1);
      const second = await operate(p.id, 'cancel');
      expect(second.status).toBe(409);
      expect(second.body.error.code).toBe('WALLET_OPERATION_IN_PROGRESS');
      expect((await first).body.operations[0].state).toBe('unknown');
      // The hung request was carried out before hanging: orderstate finds it.
      await paymentWhen(p.id, (b) => b.state === 'partially_captured');
      expect(journal(p.orderNumber)).toEqual(['100:100.00', '200:10.00']);
    });

    it('10 concurrent identical captures make one operation; 10 concurrent different ones too', async () => {
      const p = await pay(10000, true);
      const before = sandbox.stats.chargeRequests;
      const key = idem();
      const same = await Promise.all(Array.from({ length: 10 }, () => operate(p.id, 'capture', { amount: 5000 }, key)));
      expect(same.every((r) => r.status === 200 || (r.status === 409 && r.body.error.code === 'IDEMPOTENCY_KEY_IN_PROGRESS'))).toBe(true);
      expect(same.filter((r) => r.status === 200).length).toBeGreaterThanOrEqual(1);

      const different = await Promise.all(Array.from({ length: 10 }, () => operate(p.id, 'capture', { amount: 5000 })));
      const ok = different.filter((r) => r.status === 200);
      if (ok.length !== 1) throw new Error(JSON.stringify(different.map((r) => [r.status, r.body.error?.code, r.body.error?.message])));
      expect(ok).toHaveLength(1);
      expect(
        different
          .filter((r) => r.status !== 200)
          .every((r) => ['WALLET_OPERATION_IN_PROGRESS', 'WALLET_AMOUNT_EXCEEDS_AUTHORIZED', 'WALLET_PAYMENT_NOT_CAPTURABLE'].includes(r.body.error.code)),
      ).toBe(true);
      const final = await get(p.id);
      expect(final).toMatchObject({ state: 'approved', amounts: { captured: 10000 } });
      expect(final.operations).toHaveLength(2);
      expect(sandbox.stats.chargeRequests - before).toBe(2);
    });
  });

  describe('daily wallet summary', () => {
    it('sums payments, captures, cancels, refunds and net per merchant and business day, as JSON and CSV', async () => {
      const other = await session.tenant();
      const otherAuth = { Authorization: `Bearer ${other.apiKey}` };
      const otherMerchant = await session.http().post('/v1/assist-merchants').set(otherAuth).set('Idempotency-Key', idem()).send({
        name: 'Other shop',
        serverUrl: sandbox.url,
        merchantId: SANDBOX_MERCHANT.merchantId,
        login: SANDBOX_MERCHANT.login,
        password: SANDBOX_MERCHANT.password,
        salt: SANDBOX_MERCHANT.salt,
        privateKeyPem: TEST_MERCHANT_PRIVATE_KEY_PEM,
      });
      const theirs = await session
        .http()
        .post('/v1/wallet-payments')
        .set(otherAuth)
        .set('Idempotency-Key', idem())
        .send({ merchantId: otherMerchant.body.id, amount: 70000, currency: 'RUB', tokenType: 'apple_pay', token: TOKEN, customer });
      expect(theirs.body.state).toBe('approved');

      const today = new Date().toISOString().slice(0, 10);
      const { body: all } = await session.http().get('/v1/wallet-payments').query({ limit: 200 }).set(auth);
      const expected = { payments: 0, paymentsAmount: 0, captured: 0, cancels: 0, released: 0, refunds: 0, refunded: 0 };
      for (const p of all.data as Body[]) {
        if (p.amounts.authorized === 0) continue;
        expected.payments += 1;
        expected.paymentsAmount += p.amount;
        expected.captured += p.amounts.captured;
        expected.released += p.amounts.released;
        expected.refunded += p.amounts.refunded;
        expected.cancels += p.operations.filter((o: Body) => o.kind === 'cancel_authorization' && o.state === 'succeeded').length;
        expected.refunds += p.operations.filter((o: Body) => o.kind === 'refund' && o.state === 'succeeded').length;
      }
      const res = await session.http().get('/v1/settlements/wallet-summaries').query({ from: today, to: today }).set(auth);
      expect(res.status).toBe(200);
      expect(res.body.data).toEqual([
        {
          merchantId,
          businessDate: today,
          currency: 'RUB',
          payments: { count: expected.payments, amount: expected.paymentsAmount },
          captures: { count: expect.any(Number), amount: expected.captured },
          cancels: { count: expected.cancels, amount: expected.released },
          refunds: { count: expected.refunds, amount: expected.refunded },
          net: expected.captured - expected.refunded,
        },
      ]);

      const csv = await session.http().get('/v1/settlements/wallet-summaries').query({ from: today, to: today, format: 'csv' }).set(auth);
      expect(csv.status).toBe(200);
      expect(csv.headers['content-type']).toMatch(/^text\/csv/);
      const lines = csv.text.trim().split('\n');
      expect(lines[0]).toBe('merchantId,businessDate,currency,payments,paymentsAmount,captures,capturesAmount,cancels,cancelsAmount,refunds,refundsAmount,net');
      expect(lines[1]).toContain(`${merchantId},${today},RUB,${expected.payments},${expected.paymentsAmount},`);
      expect(lines[1]?.endsWith(`,${expected.captured - expected.refunded}`)).toBe(true);

      const bad = await session.http().get('/v1/settlements/wallet-summaries').query({ from: 'yesterday', to: today }).set(auth);
      expect(bad.status).toBe(400);
      expect(bad.body.error.code).toBe('VALIDATION_FAILED');
    });

    it('answers the first and last days of the calendar it accepts (empty), in any time zone, never a 500', async () => {
      for (const [from, to] of [
        ['0001-01-01', '0001-01-02'],
        ['9999-12-30', '9999-12-31'],
      ]) {
        for (const timeZone of ['UTC', 'Pacific/Kiritimati', 'Pacific/Pago_Pago']) {
          const res = await session.http().get('/v1/settlements/wallet-summaries').query({ from, to, timeZone }).set(auth);
          expect([from, timeZone, res.status, res.body]).toEqual([from, timeZone, 200, { data: [] }]);
        }
      }
    });
  });

  describe('tenant isolation', () => {
    it("another tenant cannot capture, cancel or summarise this tenant's payments (404 / empty, enforced by RLS)", async () => {
      const p = await pay(10000, true);
      await operate(p.id, 'capture', { amount: 1000 });
      const other = await session.tenant();
      const otherAuth = { Authorization: `Bearer ${other.apiKey}` };
      for (const action of ['capture', 'cancel'] as const) {
        const res = await operate(p.id, action, {}, idem(), otherAuth);
        expect(res.status).toBe(404);
        expect(res.body.error.code).toBe('NOT_FOUND');
      }
      const today = new Date().toISOString().slice(0, 10);
      const summary = await session.http().get('/v1/settlements/wallet-summaries').query({ from: today, to: today }).set(otherAuth);
      expect(summary.body).toEqual({ data: [] });
      const seen = await session.appDb.withTenant(other.tenantId, (tx) => tx.walletPaymentOperation.findMany({ where: { paymentId: p.id } }));
      expect(seen).toEqual([]);
      const mine = await get(p.id);
      expect(mine).toMatchObject({ state: 'partially_captured', amounts: { captured: 1000 } });
      expect(mine.operations).toHaveLength(1);
    });
  });
});
