import { insertOperation } from '@payorch/operations';

import { ControllerSuite, expectInvalid } from '../support/controller-suite';
import { idem } from '../support/gateway-session';
import { InProcessDispatcher } from '../support/in-process-dispatcher';

/**
 * POST /v1/terminals/:id/operations: each type's required fields, before any terminal is touched
 * (issue 21). On SSI ECR, `currency` is required exactly where the SSI request carries one: not for
 * partial_void (§5.2.12 PartialVoid is invoiceNum + transAmount), but for balance_inquiry.
 */
describe('operation required fields (v1/terminals/:id/operations)', () => {
  const suite = new ControllerSuite();
  let dispatcher: InProcessDispatcher;
  let storeId: string;
  let ssi: string;

  beforeAll(async () => {
    suite.session.dispatcherFactory = (appUrl, publish) => (dispatcher = new InProcessDispatcher(appUrl, publish));
    await suite.start();
    storeId = (await suite.create('/v1/stores', { name: 'S', timeZone: 'UTC' })).id;
    ssi = (await suite.create('/v1/terminals', { name: 'SSI', storeId, protocol: 'ssi_ecr', connection: { kind: 'tcp', host: '127.0.0.1', port: 9 } })).id;
  });
  afterAll(async () => {
    await suite.stop();
    await dispatcher?.close();
  });

  const create = (body: Record<string, unknown>) => suite.call('post', `/v1/terminals/${ssi}/operations`, { body });

  async function approvedPurchase(): Promise<string> {
    const { row } = await suite.session.appDb.withTenant(suite.a.tenantId, (tx) =>
      insertOperation(tx, {
        tenantId: suite.a.tenantId,
        terminalId: ssi,
        storeId,
        type: 'purchase',
        amount: 5000,
        currency: 'UAH',
        idempotencyKey: idem(),
        requestHash: 'h',
      }),
    );
    await suite.session.owner.terminalOperation.update({ where: { id: row.id }, data: { state: 'APPROVED' } });
    return row.id;
  }

  it('accepts partial_void on an SSI terminal without a currency', async () => {
    const res = await create({ type: 'partial_void', amount: 1000, originalOperationId: await approvedPurchase() });
    expect(res.status).toBeLessThan(300);
    expect(res.body).toMatchObject({ type: 'partial_void', amount: 1000 });
  });

  it('names the missing field of each type with 400', async () => {
    expectInvalid(await create({ type: 'balance_inquiry' }), 'currency');
    expectInvalid(await create({ type: 'purchase', amount: 100 }), 'currency');
    expectInvalid(await create({ type: 'refund', amount: 100, currency: 'UAH' }), 'originalOperationId');
    expectInvalid(await create({ type: 'void' }), 'originalOperationId');
    expectInvalid(await create({ type: 'purchase', currency: 'UAH' }), 'amount');
    expectInvalid(await create({ type: 'purchase', amount: 100, currency: 'UAH', originalOperationId: await approvedPurchase() }), 'originalOperationId');
  });
});
