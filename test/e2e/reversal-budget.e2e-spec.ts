import { insertOperation } from '@payorch/operations';
import { waitFor } from '@payorch/testing';
import { JoinprotoTerminalSimulator } from '@payorch/testing/joinproto-sim';

import { ControllerSuite, expectError, expectStatus } from './support/controller-suite';
import { idem } from './support/gateway-session';
import { InProcessDispatcher } from './support/in-process-dispatcher';

/**
 * Reversals never give back more than the original took (found in the eleventh session): the gateway checked only that
 * the original was approved, of a compatible type and on the same terminal, so ten refunds of 300 of a 1,000 purchase
 * were all sent to the terminal (Joinproto's refund has no limit of its own), and a void after a partial refund
 * reversed the whole purchase again.
 */
describe('reversals are bounded by their original (POST /v1/terminals/{id}/operations)', () => {
  const suite = new ControllerSuite();
  let dispatcher: InProcessDispatcher;
  let sim: JoinprotoTerminalSimulator;
  let storeId: string;
  let terminalId: string;

  const post = (body: Record<string, unknown>, wait = 0, idempotencyKey = idem()) =>
    suite.call('post', `/v1/terminals/${terminalId}/operations`, { body, query: { wait }, idempotencyKey });
  const purchase = async (amount: number) => {
    const res = await post({ type: 'purchase', amount, currency: 'RUB' }, 5000);
    expectStatus(res, 201);
    expect(res.body.state).toBe('approved');
    return res.body.id as string;
  };
  const final = (id: string) =>
    waitFor(
      async () => {
        const res = await suite.call('get', `/v1/operations/${id}`);
        return ['approved', 'declined', 'failed', 'canceled'].includes(res.body.state) ? res.body : undefined;
      },
      { what: `operation ${id} final` },
    );

  beforeAll(async () => {
    suite.session.dispatcherFactory = (appUrl, publish) => (dispatcher = new InProcessDispatcher(appUrl, publish));
    await suite.start();
    storeId = (await suite.create('/v1/stores', { name: 'S', timeZone: 'UTC' })).id;
    terminalId = (await suite.create('/v1/terminals', { name: 'POS', storeId, protocol: 'joinproto', connection: { kind: 'tcp', host: '127.0.0.1', port: 9 } }))
      .id;
    sim = new JoinprotoTerminalSimulator({ cardTimeoutMs: 30 });
    dispatcher.route(terminalId, { port: (await sim.listen(0)).port });
  });
  afterAll(async () => {
    await suite.stop();
    await dispatcher?.close();
    await sim?.close();
  });

  it('ten concurrent refunds of 300 of a 1,000 purchase: three are taken, seven refused with what is left; only three reach the terminal', async () => {
    const original = await purchase(1000);
    const keys = Array.from({ length: 10 }, () => idem());
    const refund = { type: 'refund', amount: 300, currency: 'RUB', originalOperationId: original };
    const answers = await Promise.all(keys.map((key) => post(refund, 0, key)));
    const taken = answers.filter((res) => res.status === 201);
    const refused = answers.filter((res) => res.status !== 201);
    expect(taken.length).toBe(3);
    for (const res of refused) {
      expectError(res, 422, 'AMOUNT_EXCEEDS_ORIGINAL');
      expect(res.body.error.details).toMatchObject({
        field: 'amount',
        originalOperationId: original,
        originalAmount: 1000,
        reversedAmount: 900,
        remainingAmount: 100,
      });
    }
    for (const res of taken) expect(await final(res.body.id)).toMatchObject({ state: 'approved', amount: 300 });
    expect(sim.journal.filter((e) => e.command === 'RefundRequest' && e.amount === 300)).toHaveLength(3);

    // What is left can still be refunded, and then nothing.
    const rest = await post({ type: 'refund', amount: 100, currency: 'RUB', originalOperationId: original }, 5000);
    expectStatus(rest, 201);
    expect(rest.body.state).toBe('approved');
    expectError(await post({ type: 'refund', amount: 1, currency: 'RUB', originalOperationId: original }), 422, 'AMOUNT_EXCEEDS_ORIGINAL');
    // A repeat of an accepted refund (same Idempotency-Key) still answers with its operation, not a refusal.
    const first = answers.indexOf(taken[0]!);
    const repeat = await post(refund, 0, keys[first]);
    expectStatus(repeat, 201);
    expect(repeat.body).toMatchObject({ id: taken[0]!.body.id, state: 'approved' });
  });

  it('a void after a partial refund would reverse the whole purchase again: refused; a refund that failed frees its amount', async () => {
    const original = await purchase(800);
    const partial = await post({ type: 'refund', amount: 200, currency: 'RUB', originalOperationId: original }, 5000);
    expect(partial.body.state).toBe('approved');
    const voided = await post({ type: 'void', originalOperationId: original });
    expectError(voided, 422, 'AMOUNT_EXCEEDS_ORIGINAL');
    expect(voided.body.error.details).toMatchObject({ remainingAmount: 600, reversedAmount: 200 });

    // A refund that failed without effect (never sent) takes nothing: the rest can be refunded in full.
    const { row } = await suite.session.appDb.withTenant(suite.a.tenantId, (tx) =>
      insertOperation(tx, {
        tenantId: suite.a.tenantId,
        terminalId,
        storeId,
        type: 'refund',
        amount: 600,
        currency: 'RUB',
        originalOperationId: original,
        idempotencyKey: idem(),
        requestHash: 'h',
      }),
    );
    // While it is pending it may still be sent: it counts.
    expectError(await post({ type: 'refund', amount: 1, currency: 'RUB', originalOperationId: original }), 422, 'AMOUNT_EXCEEDS_ORIGINAL');
    await suite.session.owner.terminalOperation.update({ where: { id: row.id }, data: { state: 'FAILED', completedAt: new Date() } });
    const full = await post({ type: 'refund', amount: 600, currency: 'RUB', originalOperationId: original }, 5000);
    expectStatus(full, 201);
    expect(full.body).toMatchObject({ state: 'approved', amount: 600 });
  });

  it('a void of an untouched purchase reverses all of it, once', async () => {
    const original = await purchase(500);
    const voided = await post({ type: 'void', originalOperationId: original }, 5000);
    expectStatus(voided, 201);
    expect(voided.body).toMatchObject({ state: 'approved', amount: 500 });
    expectError(await post({ type: 'void', originalOperationId: original }), 422, 'AMOUNT_EXCEEDS_ORIGINAL');
    expectError(await post({ type: 'refund', amount: 1, currency: 'RUB', originalOperationId: original }), 422, 'AMOUNT_EXCEEDS_ORIGINAL');
  });

  it('a void of a refund is refused on Joinproto (its void is a 06 refund: it would pay the refund out again); nothing reaches the terminal', async () => {
    const original = await purchase(800);
    const refund = await post({ type: 'refund', amount: 200, currency: 'RUB', originalOperationId: original }, 5000);
    expectStatus(refund, 201);
    expect(refund.body.state).toBe('approved');
    const sent = sim.journal.length;
    const res = await post({ type: 'void', originalOperationId: refund.body.id });
    // Before 2026-12-07: 201, and a 06 Refund of 200 went to the card a second time.
    expectError(res, 422, 'UNPROCESSABLE');
    expect(res.body.error.message).toContain('void of a refund operation is not supported on this terminal');
    expect(sim.journal.length).toBe(sent);
  });

  it("refuses a reversal in another currency than the original's", async () => {
    const original = await purchase(300);
    const res = await post({ type: 'refund', amount: 100, currency: 'USD', originalOperationId: original });
    expectError(res, 422, 'UNPROCESSABLE');
    expect(res.body.error.message).toBe('the original operation is in RUB, not USD');
  });
});
