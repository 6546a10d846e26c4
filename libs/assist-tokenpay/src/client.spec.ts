import { generateKeyPairSync } from 'node:crypto';
import { inspect } from 'node:util';
// Relative path because jest.preset.js maps `@payorch/testing/*` to `(\.*)` (dots only); see docs.
import { SANDBOX_MERCHANT, TEST_MERCHANT_PRIVATE_KEY_PEM, startAssistSandbox, type AssistSandbox } from '@payorch/testing/assist-sandbox';
import { AssistTokenPayClient, type AssistClientOptions, type TokenPayOutcome } from './client';
import { AssistValidationError } from './errors';
import { createRsaMd5Signer } from './signature';
import { APPLE_PAY_TOKEN, GOOGLE_PAY_TOKEN, SAMSUNG_PAY_TOKEN, orderObject, validRequest } from './testing/fixtures';

let sandbox: AssistSandbox;
let seq = 0;
const nextOrder = () => `T-${Date.now()}-${++seq}`;
const signer = createRsaMd5Signer(TEST_MERCHANT_PRIVATE_KEY_PEM);

function clientFor(overrides: Partial<AssistClientOptions> = {}) {
  return new AssistTokenPayClient({
    ...SANDBOX_MERCHANT,
    baseUrl: sandbox.url,
    signer,
    timeoutMs: 2_000,
    orderStateTimeoutMs: 1_000,
    retryDelayMs: 0,
    ...overrides,
  });
}

function pay(amount: string, overrides: Parameters<typeof validRequest>[0] = {}, client = clientFor()) {
  return client.pay(validRequest({ orderNumber: nextOrder(), orderAmount: amount, ...overrides }));
}

/** The outcome variant whose `status` union contains S. */
type Narrow<S, T = TokenPayOutcome> = T extends { status: infer U } ? (S extends U ? T : never) : never;

function expectStatus<S extends TokenPayOutcome['status']>(outcome: TokenPayOutcome, status: S): Narrow<S> {
  expect(outcome.status).toBe(status);
  return outcome as Narrow<S>;
}

beforeEach(async () => {
  sandbox = await startAssistSandbox();
});
afterEach(async () => {
  await sandbox.close();
});

describe(`${AssistTokenPayClient.name} against the sandbox: outcomes`, () => {
  it.each([
    [1, APPLE_PAY_TOKEN, 'ApplePay'],
    [2, GOOGLE_PAY_TOKEN, 'GooglePay'],
    [3, SAMSUNG_PAY_TOKEN, 'SamsungPay'],
  ] as const)('.00 approves a one-stage payment with TokenType %s', async (tokenType, paymentToken, meanType) => {
    const outcome = expectStatus(await pay('10.00', { tokenType, paymentToken }), 'approved');
    expect(outcome).toMatchObject({ source: 'tokenpay', testMode: false });
    expect(outcome.order.operations[0]).toMatchObject({ type: 'Approve', state: 'Success', responseCode: 'AS000', meanType });
    expect(sandbox.stats.charges).toBe(1);
  });

  it('.00 with Delay=1 is authorized (Delayed, two-stage)', async () => {
    const outcome = expectStatus(await pay('10.00', { delay: 1 }), 'authorized');
    expect(outcome.order.state).toBe('Delayed');
  });

  it('.01 is declined and charges nothing', async () => {
    const outcome = expectStatus(await pay('10.01'), 'declined');
    expect(outcome.order.operations[0]).toMatchObject({ state: 'Failure' });
    expect(sandbox.stats.charges).toBe(0);
  });

  it('.02 is in process, then resolved as approved through the order state', async () => {
    const outcome = expectStatus(await pay('10.02'), 'in_process');
    const resolved = await clientFor().resolveOrder(outcome.orderNumber, { orderAmount: '10.02', orderCurrency: 'RUB' });
    expect(resolved).toMatchObject({ status: 'approved', source: 'orderstate' });
    expect(sandbox.stats.charges).toBe(1);
  });

  it('.03 with a non-tokenized Google Pay card requires CVC2/3-DS via continueurl, then resolves', async () => {
    const outcome = expectStatus(await pay('10.03', { tokenType: 2, paymentToken: GOOGLE_PAY_TOKEN }), 'requires_action');
    expect(outcome.continueUrl).toMatch(new RegExp(`^${sandbox.url}/pay/pay\\.cfm\\?CFSID=`));
    expect(outcome.order.operations[0]).toMatchObject({ state: 'New', responseCode: 'AS300', meanType: 'VISA', meanNumber: '411111****1111' });
    expect(await clientFor().resolveOrder(outcome.orderNumber)).toMatchObject({ status: 'in_process' });
    expect((await fetch(outcome.continueUrl)).status).toBe(200);
    expect(await clientFor().resolveOrder(outcome.orderNumber)).toMatchObject({ status: 'approved' });
  });

  it('.03 with Apple Pay is a plain approval', async () => {
    expectStatus(await pay('10.03'), 'approved');
  });

  it('.04 is rejected with a clear limit error, no order created', async () => {
    const outcome = expectStatus(await pay('10.04'), 'rejected');
    expect(outcome.error).toMatchObject({ code: 'LIMIT_EXCEEDED', firstCode: 17, secondCode: 211, message: 'Limit error (Object: limit) [17/211]' });
    expect(sandbox.orders.size).toBe(0);
  });

  it('.05 (internal error after the charge) is unknown, never failed, and resolves as approved', async () => {
    const outcome = expectStatus(await pay('10.05'), 'unknown');
    expect(outcome.error).toMatchObject({ code: 'INTERNAL_ERROR', firstCode: 2 });
    expect(await clientFor().resolveOrder(outcome.orderNumber)).toMatchObject({ status: 'approved' });
    expect(sandbox.stats.charges).toBe(1);
  });

  it('surfaces test mode', async () => {
    await sandbox.close();
    sandbox = await startAssistSandbox({ testMode: true });
    const outcome = expectStatus(await pay('10.00'), 'approved');
    expect(outcome.testMode).toBe(true);
  });

  it("sends a non-minimal amount and accepts the server's own amount string", async () => {
    const outcome = expectStatus(await pay('10,5'), 'approved');
    expect(outcome.order.amount).toBe('10.50');
  });
});

describe(`${AssistTokenPayClient.name} against the sandbox: refusals`, () => {
  it('wrong password → rejected AUTHENTICATION_FAILED 7/141', async () => {
    const outcome = expectStatus(await pay('10.00', {}, clientFor({ password: 'wrongPass123' })), 'rejected');
    expect(outcome.error).toMatchObject({ code: 'AUTHENTICATION_FAILED', firstCode: 7, secondCode: 141 });
  });

  it('no signature where required → rejected ENCRYPTION_ERROR 9/5', async () => {
    const outcome = expectStatus(await pay('10.00', {}, clientFor({ signer: undefined })), 'rejected');
    expect(outcome.error).toMatchObject({ code: 'ENCRYPTION_ERROR', firstCode: 9, secondCode: 5 });
  });

  it('a signature by another key → rejected 9/5', async () => {
    const { privateKey } = generateKeyPairSync('rsa', { modulusLength: 1024 });
    const outcome = expectStatus(await pay('10.00', {}, clientFor({ signer: createRsaMd5Signer(privateKey) })), 'rejected');
    expect(outcome.error.code).toBe('ENCRYPTION_ERROR');
  });

  it('an invalid request throws AssistValidationError and sends nothing', async () => {
    await expect(pay('10.00', { email: 'nope' })).rejects.toThrow(AssistValidationError);
    expect(sandbox.stats.tokenpayRequests).toBe(0);
  });
});

describe(`${AssistTokenPayClient.name}: lost answers and safe retries`, () => {
  it('hang + client timeout → unknown; resolved via order state; a re-sent request is refused as a duplicate, not a second charge', async () => {
    sandbox.setMode('hang', { times: 1 });
    const client = clientFor({ timeoutMs: 300 });
    const request = validRequest({ orderNumber: nextOrder(), orderAmount: '25.00' });

    const lost = expectStatus(await client.pay(request), 'unknown');
    expect(lost.error).toMatchObject({ code: 'TIMEOUT' });
    expect(sandbox.stats.charges).toBe(1);

    const resolved = await client.resolveOrder(request.orderNumber, request);
    expect(resolved).toMatchObject({ status: 'approved', source: 'orderstate' });

    // The refusal is the answer to this request; the existing order is handed over, not made its outcome.
    const again = expectStatus(await client.pay(request), 'duplicate');
    expect(again.error).toMatchObject({ firstCode: 11, code: 'DUPLICATE_OBJECT' });
    expect(again.existing).toMatchObject({ status: 'approved', source: 'orderstate', order: { orderNumber: request.orderNumber, amount: '25.00' } });
    expect(sandbox.stats.charges).toBe(1);
    expect(sandbox.orders.get(request.orderNumber)?.charges).toBe(1);
  });

  it('a duplicate OrderNumber used with another amount hands over the existing order as it is, without an integrity alert', async () => {
    const alerts: string[] = [];
    const client = clientFor({ onIntegrityFailure: (error) => alerts.push(error.code) });
    const orderNumber = nextOrder();
    expectStatus(await client.pay(validRequest({ orderNumber, orderAmount: '10.00' })), 'approved');

    const other = expectStatus(await client.pay(validRequest({ orderNumber, orderAmount: '99.00' })), 'duplicate');
    expect(other.existing).toMatchObject({ status: 'approved', order: { amount: '10.00' } });
    expect(alerts).toEqual([]);
    expect(sandbox.stats.charges).toBe(1);
  });

  it('HTTP 500 → unknown (never failed); the order is then not_found', async () => {
    sandbox.setMode('http500', { times: 1 });
    const outcome = expectStatus(await pay('10.00'), 'unknown');
    expect(outcome.error).toMatchObject({ code: 'HTTP_STATUS', httpStatus: 500 });
    expect(await clientFor().resolveOrder(outcome.orderNumber)).toEqual({ status: 'not_found', orderNumber: outcome.orderNumber });
  });

  it('resolveOrder: only 10/201 (no such order) is not_found; a firstcode 10 about another object is unknown', async () => {
    const paid = expectStatus(await pay('10.00'), 'approved');
    // The sandbox answers an unknown Merchant_ID with 10/200 ("Объект Предприятие"): the settings changed, not the order.
    // Before, any firstcode 10 was not_found, and past the grace period the job rejected a paid payment.
    expect(await clientFor({ merchantId: '679472' }).resolveOrder(paid.orderNumber)).toMatchObject({
      status: 'unknown',
      error: { code: 'OBJECT_NOT_FOUND', firstCode: 10, secondCode: 200 },
    });
    for (const secondcode of ['0', '216', '221']) {
      const client = new AssistTokenPayClient({
        ...SANDBOX_MERCHANT,
        baseUrl: 'https://assist.example',
        fetch: async () => new Response(JSON.stringify({ firstcode: '10', secondcode })),
      });
      expect(await client.resolveOrder(paid.orderNumber)).toMatchObject({ status: 'unknown', error: { firstCode: 10, secondCode: Number(secondcode) } });
    }
    const never = nextOrder();
    expect(await clientFor().resolveOrder(never)).toEqual({ status: 'not_found', orderNumber: never });
  });

  it('connection refused → unknown NETWORK', async () => {
    const url = sandbox.url;
    await sandbox.close();
    const client = new AssistTokenPayClient({ ...SANDBOX_MERCHANT, baseUrl: url, signer, timeoutMs: 1_000 });
    const outcome = expectStatus(await client.pay(validRequest()), 'unknown');
    expect(outcome.error.code).toBe('NETWORK');
    sandbox = await startAssistSandbox();
  });

  it('a slow answer within the timeout is used', async () => {
    sandbox.setMode('slow', { delayMs: 200, times: 1 });
    expectStatus(await pay('10.00', {}, clientFor({ timeoutMs: 1_000 })), 'approved');
  });

  it('order-state lookups are retried after a transport failure', async () => {
    const outcome = expectStatus(await pay('10.00'), 'approved');
    sandbox.setMode('http500', { endpoint: 'orderstate', times: 1 });
    expect(await clientFor().resolveOrder(outcome.orderNumber)).toMatchObject({ status: 'approved' });
    expect(sandbox.stats.orderstateRequests).toBe(2);
  });

  it('an order state that never answers stays unknown after the configured attempts', async () => {
    const outcome = expectStatus(await pay('10.00'), 'approved');
    sandbox.setMode('hang', { endpoint: 'orderstate' });
    const resolved = await clientFor({ orderStateTimeoutMs: 150, orderStateAttempts: 2 }).resolveOrder(outcome.orderNumber);
    expect(resolved).toMatchObject({ status: 'unknown', error: { code: 'TIMEOUT' } });
    expect(sandbox.stats.orderstateRequests).toBe(2);
  });
});

describe(`${AssistTokenPayClient.name}: untrusted answers`, () => {
  it('a bad checkvalue is rejected (unknown + alert), then the order is resolved with a verified answer', async () => {
    const alerts: string[] = [];
    const client = clientFor({ onIntegrityFailure: (error, context) => alerts.push(`${error.code}@${context.endpoint}`) });
    sandbox.setMode('bad-checkvalue', { times: 1 });
    const outcome = expectStatus(await pay('10.00', {}, client), 'unknown');
    expect(outcome.error.code).toBe('CHECKVALUE_MISMATCH');
    expect(alerts).toEqual(['CHECKVALUE_MISMATCH@/pay/tokenpay.cfm']);
    expect(await client.resolveOrder(outcome.orderNumber)).toMatchObject({ status: 'approved' });
  });

  it('a bad checkvalue on the order state is rejected and alerted', async () => {
    const alerts: string[] = [];
    const client = clientFor({ onIntegrityFailure: (error, context) => alerts.push(`${error.code}@${context.endpoint}`) });
    const outcome = expectStatus(await pay('10.00', {}, client), 'approved');
    sandbox.setMode('bad-checkvalue', { endpoint: 'orderstate' });
    expect(await client.resolveOrder(outcome.orderNumber)).toMatchObject({ status: 'unknown', error: { code: 'CHECKVALUE_MISMATCH' } });
    expect(alerts).toEqual(['CHECKVALUE_MISMATCH@/orderstate/orderstate.cfm']);
  });

  it('a verified answer about another order is not trusted (ORDER_MISMATCH)', async () => {
    const alerts: string[] = [];
    const client = new AssistTokenPayClient({
      ...SANDBOX_MERCHANT,
      baseUrl: 'https://assist.example',
      fetch: async () => new Response(JSON.stringify({ order: orderObject({ ordernumber: 'SOMEONE-ELSE' }) })),
      onIntegrityFailure: (error) => alerts.push(error.code),
    });
    const outcome = expectStatus(await client.pay(validRequest()), 'unknown');
    expect(outcome.error.code).toBe('ORDER_MISMATCH');
    expect(alerts).toEqual(['ORDER_MISMATCH']);
  });

  it('an oversized answer is refused as unknown', async () => {
    const client = new AssistTokenPayClient({
      ...SANDBOX_MERCHANT,
      baseUrl: 'https://assist.example',
      maxResponseBytes: 1_000,
      fetch: async () => new Response('x'.repeat(5_000)),
    });
    expect(await client.pay(validRequest())).toMatchObject({ status: 'unknown', error: { code: 'RESPONSE_TOO_LARGE' } });
  });
});

describe(`${AssistTokenPayClient.name}: configuration and secrets`, () => {
  it.each([
    ['http://assist.example', 'INSECURE_URL'],
    ['not a url', 'INVALID_FORMAT'],
  ])('refuses base URL %s', (baseUrl, code) => {
    expect(() => new AssistTokenPayClient({ ...SANDBOX_MERCHANT, baseUrl })).toThrow(expect.objectContaining({ field: 'baseUrl', code }));
  });

  it('refuses a missing salt', () => {
    expect(() => new AssistTokenPayClient({ ...SANDBOX_MERCHANT, salt: '', baseUrl: sandbox.url })).toThrow(
      expect.objectContaining({ field: 'salt', code: 'REQUIRED' }),
    );
  });

  it('never exposes the password, salt or token through the client, outcomes or errors', async () => {
    const client = clientFor();
    const outcomes = [await client.pay(validRequest({ orderNumber: nextOrder() }))];
    sandbox.setMode('bad-checkvalue', { times: 1 });
    outcomes.push(await client.pay(validRequest({ orderNumber: nextOrder() })));
    const text = inspect(client, { depth: 5 }) + JSON.stringify(outcomes) + inspect(outcomes, { depth: 8 });
    for (const secret of [SANDBOX_MERCHANT.password, SANDBOX_MERCHANT.salt, APPLE_PAY_TOKEN, 'ZHVtbXktZW5jcnlwdGVkLWRhdGE=']) {
      expect(text).not.toContain(secret);
    }
  });
});
