import { type AssistSandbox, SANDBOX_MERCHANT, startAssistSandbox, TEST_MERCHANT_PRIVATE_KEY_PEM } from '@payorch/testing/assist-sandbox';

import { type Caller, ControllerSuite, expectError, expectIdsChecked, expectInvalid, expectStatus, expectWritesForbidden } from '../support/controller-suite';
import { idem } from '../support/gateway-session';

const APPLE_PAY_TOKEN = {
  version: 'EC_v1',
  data: 'ZGF0YQ==',
  signature: 'c2ln',
  header: { ephemeralPublicKey: 'ZHVtbXk=', publicKeyHash: 'ZHVtbXk=', transactionId: 't1' },
};

/**
 * A person's verdict on a wallet payment or operation the system cannot resolve, through HTTP (no worker runs here, so
 * what is `unknown` stays so): docs/wallet-payments.md, "Human resolution".
 */
describe('WalletPaymentsController: human resolution (POST v1/wallet-payments/:id/resolve, …/operations/:operationId/resolve)', () => {
  const suite = new ControllerSuite();
  let sandbox: AssistSandbox;
  const merchants = new Map<string, string>();

  const payment = (as: Caller, amount: number, extra: Record<string, unknown> = {}) => ({
    merchantId: merchants.get(as.tenantId),
    amount,
    currency: 'RUB',
    tokenType: 'apple_pay',
    token: APPLE_PAY_TOKEN,
    customer: { lastname: 'Ivanov', firstname: 'Ivan', email: 'ivan@example.com' },
    ...extra,
  });
  /** Charged by the sandbox but answered 2/1 (amounts ending in 05): `unknown`. */
  async function unknownPayment(as: Caller = suite.a, extra: Record<string, unknown> = {}): Promise<Record<string, any>> {
    const paid = await suite.create('/v1/wallet-payments', payment(as, 10_005, extra), as);
    expect(paid).toMatchObject({ state: 'unknown', error: { code: 'INTERNAL_ERROR' } });
    return paid;
  }
  /** A two-stage payment whose capture's answer was lost: the operation is `unknown`. */
  async function unknownCapture(as: Caller = suite.a): Promise<{ paymentId: string; operationId: string; billNumber: string; errorCode: string }> {
    const held = await suite.create('/v1/wallet-payments', payment(as, 10_000, { twoStage: true }), as);
    sandbox.setMode('lost-answer', { endpoint: 'charge', times: 1 });
    const res = await suite.call('post', `/v1/wallet-payments/${held.id}/capture`, { as, body: { amount: 4_000 } });
    expectStatus(res, 200);
    expect(res.body).toMatchObject({ state: 'authorized', operations: [{ kind: 'capture', state: 'unknown' }] });
    expect(res.body.error).toBeNull();
    return { paymentId: held.id, operationId: res.body.operations[0].id, billNumber: held.assist.billNumber, errorCode: res.body.operations[0].error.code };
  }
  const resolve = (id: string, body: unknown, options: { as?: Caller; idempotencyKey?: string | false } = {}) =>
    suite.call('post', `/v1/wallet-payments/${id}/resolve`, { body, ...options });
  const resolveOperation = (paymentId: string, operationId: string, body: unknown, options: { as?: Caller; idempotencyKey?: string | false } = {}) =>
    suite.call('post', `/v1/wallet-payments/${paymentId}/operations/${operationId}/resolve`, { body, ...options });

  beforeAll(async () => {
    sandbox = await startAssistSandbox();
    await suite.start({ ASSIST_TIMEOUT_MS: '2000' });
    const settings = { name: 'Sandbox', serverUrl: sandbox.url, ...SANDBOX_MERCHANT, privateKeyPem: TEST_MERCHANT_PRIVATE_KEY_PEM };
    for (const as of [suite.a, suite.b]) merchants.set(as.tenantId, (await suite.create('/v1/assist-merchants', settings, as)).id);
  });
  afterAll(async () => {
    await suite.stop();
    await sandbox?.close();
  });

  it('lists what needs a person, resolves a payment (200), replays its key, and answers 409 once it is resolved', async () => {
    const open = await unknownPayment();
    const listed = await suite.call('get', '/v1/wallet-payments', { query: { state: 'unknown', errorCode: 'INTERNAL_ERROR' } });
    expectStatus(listed, 200);
    expect(listed.body.data.map((p: { id: string }) => p.id)).toContain(open.id);
    const none = await suite.call('get', '/v1/wallet-payments', { query: { state: 'unknown', errorCode: 'ORDER_NOT_PROVEN' } });
    expect(none.body.data.map((p: { id: string }) => p.id)).not.toContain(open.id);

    expect(open.resolution).toBeNull();
    const key = idem();
    const body = { state: 'approved', note: 'Assist back office: Approved', billNumber: sandbox.orders.get(open.orderNumber)!.billnumber };
    const res = await resolve(open.id, body, { idempotencyKey: key });
    expectStatus(res, 200);
    expect(res.body).toMatchObject({
      id: open.id,
      state: 'approved',
      error: null,
      amounts: { authorized: 10_005, captured: 10_005, released: 0, refunded: 0 },
      assist: { billNumber: body.billNumber, source: 'manual' },
    });
    // Who decided, on the payment itself: GET tells a person's `approved` from one Assist answered.
    const resolution = {
      by: 'human',
      actor: { type: 'api_key', id: expect.any(String) },
      note: body.note,
      billNumber: body.billNumber,
      at: res.body.completedAt,
    };
    expect(res.body.resolution).toEqual(resolution);
    expect((await suite.call('get', `/v1/wallet-payments/${open.id}`)).body.resolution).toEqual(resolution);
    const replay = await resolve(open.id, body, { idempotencyKey: key });
    expectStatus(replay, 200);
    expect(replay.headers['idempotent-replayed']).toBe('true');
    expect(replay.body).toEqual(res.body);
    expectError(await resolve(open.id, { ...body, note: 'another verdict' }, { idempotencyKey: key }), 409, 'IDEMPOTENCY_KEY_REUSED');

    const again = await resolve(open.id, { state: 'declined', note: 'checked again' });
    expectError(again, 409, 'WALLET_PAYMENT_NOT_UNKNOWN');
    expect(again.body.error.details).toEqual({ state: 'approved' });
    const approved = await suite.create('/v1/wallet-payments', payment(suite.a, 10_000));
    expect(approved).toMatchObject({ state: 'approved', resolution: null });
    expectError(await resolve(approved.id, { state: 'declined', note: 'checked' }), 409, 'WALLET_PAYMENT_NOT_UNKNOWN');

    const audit = await suite.call('get', '/v1/audit-log', { query: { action: 'wallet_payment.resolve', resourceId: open.id } });
    expectStatus(audit, 200);
    expect(audit.body.data).toHaveLength(1);
    expect(audit.body.data[0].details).toMatchObject({ state: 'approved', note: body.note, billNumber: body.billNumber });
    // The same person as the audit row names (the API key that resolved it).
    expect(res.body.resolution.actor).toEqual({ type: audit.body.data[0].actorType, id: audit.body.data[0].actorId });
  });

  it('answers a paid verdict that does not fit the payment with 422 WALLET_RESOLUTION_STATE_MISMATCH', async () => {
    const held = await unknownPayment(suite.a, { twoStage: true });
    const res = await resolve(held.id, { state: 'approved', note: 'back office: Delayed' });
    expectError(res, 422, 'WALLET_RESOLUTION_STATE_MISMATCH');
    expect(res.body.error.details).toEqual({ state: 'approved', twoStage: true });
    const ok = await resolve(held.id, { state: 'authorized', note: 'back office: Delayed' });
    expectStatus(ok, 200);
    expect(ok.body).toMatchObject({ state: 'authorized', amounts: { authorized: 10_005, captured: 0 } });
  });

  it('validates the bodies with 400 naming the field; the payment and the operation stay unknown', async () => {
    const open = await unknownPayment();
    for (const [body, field] of [
      [{ state: 'approved' }, 'note'],
      [{ state: 'approved', note: 'ok' }, 'note'],
      [{ state: 'approved', note: 'x'.repeat(1001) }, 'note'],
      [{ state: 'paid', note: 'checked' }, 'state'],
      [{ state: 'APPROVED', note: 'checked' }, 'state'],
      [{ state: 'canceled', note: 'checked' }, 'state'],
      [{ state: 'rejected', note: 'checked', billNumber: '5899110200000001' }, 'billNumber'],
      [{ state: 'approved', note: 'checked', billNumber: '5899-1102' }, 'billNumber'],
      [{ state: 'approved', note: 'checked', amount: 10_005 }, '(body)'],
    ] as const) {
      expectInvalid(await resolve(open.id, body), field);
    }
    expectError(await resolve(open.id, { state: 'approved', note: 'checked' }, { idempotencyKey: false }), 400, 'IDEMPOTENCY_KEY_REQUIRED');

    const { paymentId, operationId } = await unknownCapture();
    for (const [body, field] of [
      [{ state: 'approved', note: 'checked' }, 'state'],
      [{ state: 'succeeded' }, 'note'],
      [{ state: 'succeeded', note: 'checked', billNumber: '5899110200000001' }, 'billNumber'],
    ] as const) {
      expectInvalid(await resolveOperation(paymentId, operationId, body), field);
    }
    expect((await suite.call('get', `/v1/wallet-payments/${open.id}`)).body).toMatchObject({ state: 'unknown' });
    expect((await suite.call('get', `/v1/wallet-payments/${paymentId}`)).body).toMatchObject({ state: 'authorized', operations: [{ state: 'unknown' }] });
  });

  it('resolves an unknown capture (200): the payment moves with it; 409 once it is resolved', async () => {
    const { paymentId, operationId, billNumber, errorCode } = await unknownCapture();
    const listed = await suite.call('get', '/v1/wallet-payments', { query: { operationState: 'unknown' } });
    expect(listed.body.data.map((p: { id: string }) => p.id)).toContain(paymentId);
    // The payment has no error of its own: its operation's code finds it (as OPERATION_NOT_PROVEN would).
    const byCode = await suite.call('get', '/v1/wallet-payments', { query: { errorCode } });
    expect(byCode.body.data.map((p: { id: string }) => p.id)).toContain(paymentId);

    const note = 'back office: Charge Success, card 4111-1111-1111-1111';
    const res = await resolveOperation(paymentId, operationId, { state: 'succeeded', note, billNumber: `${billNumber}.2` });
    expectStatus(res, 200);
    expect(res.body).toMatchObject({
      id: paymentId,
      state: 'partially_captured',
      amounts: { authorized: 10_000, captured: 4_000, released: 0, refunded: 0 },
      resolution: null,
      operations: [{ id: operationId, state: 'succeeded', assistBillNumber: `${billNumber}.2` }],
    });
    // The verdict is the operation's (the payment moved with it), its note masked as everywhere else.
    const resolution = {
      by: 'human',
      actor: { type: 'api_key', id: expect.any(String) },
      note: 'back office: Charge Success, card 411111******1111',
      billNumber: `${billNumber}.2`,
      at: res.body.operations[0].completedAt,
    };
    expect(res.body.operations[0].resolution).toEqual(resolution);
    expect((await suite.call('get', `/v1/wallet-payments/${paymentId}`)).body.operations[0].resolution).toEqual(resolution);
    expect(JSON.stringify(res.body)).not.toContain('4111-1111-1111-1111');
    const again = await resolveOperation(paymentId, operationId, { state: 'failed', note: 'checked again' });
    expectError(again, 409, 'WALLET_OPERATION_NOT_UNKNOWN');
    expect(again.body.error.details).toEqual({ state: 'succeeded' });
    const after = await suite.call('get', '/v1/wallet-payments', { query: { operationState: 'unknown' } });
    expect(after.body.data.map((p: { id: string }) => p.id)).not.toContain(paymentId);
  });

  it("answers 404 for another tenant's payment or operation (and an unknown id), 403 for a read-only key; theirs stay unknown", async () => {
    const theirs = await unknownPayment(suite.b);
    const theirCapture = await unknownCapture(suite.b);
    const mine = await unknownCapture();
    await expectIdsChecked(
      suite,
      [
        { method: 'post', path: (id) => `/v1/wallet-payments/${id}/resolve`, body: { state: 'declined', note: 'checked' } },
        {
          method: 'post',
          path: (id) => `/v1/wallet-payments/${id}/operations/${theirCapture.operationId}/resolve`,
          body: { state: 'failed', note: 'checked' },
        },
        // An operation id that is none of A's payment's.
        { method: 'post', path: (id) => `/v1/wallet-payments/${mine.paymentId}/operations/${id}/resolve`, body: { state: 'failed', note: 'checked' } },
      ],
      { otherTenants: theirs.id },
    );
    expectError(await resolveOperation(mine.paymentId, theirCapture.operationId, { state: 'failed', note: 'checked' }), 404, 'NOT_FOUND');
    expectError(await resolveOperation(theirCapture.paymentId, theirCapture.operationId, { state: 'failed', note: 'checked' }), 404, 'NOT_FOUND');
    await expectWritesForbidden(
      suite,
      [
        { method: 'post', path: `/v1/wallet-payments/${theirs.id}/resolve`, body: { state: 'declined', note: 'checked' } },
        { method: 'post', path: `/v1/wallet-payments/${mine.paymentId}/operations/${mine.operationId}/resolve`, body: { state: 'failed', note: 'checked' } },
      ],
      'wallet:write',
    );
    expect((await suite.call('get', `/v1/wallet-payments/${theirs.id}`, { as: suite.b })).body).toMatchObject({ state: 'unknown' });
    expect((await suite.call('get', `/v1/wallet-payments/${theirCapture.paymentId}`, { as: suite.b })).body).toMatchObject({
      operations: [{ state: 'unknown' }],
    });
    expect((await suite.call('get', `/v1/wallet-payments/${mine.paymentId}`)).body).toMatchObject({ operations: [{ state: 'unknown' }] });
  });
});
