import { insertOperation } from '@payorch/operations';
import { JoinprotoTerminalSimulator } from '@payorch/testing/joinproto-sim';

import {
  type Caller,
  ControllerSuite,
  expectError,
  expectIdsChecked,
  expectInvalid,
  expectNotFound,
  expectStatus,
  expectWritesForbidden,
  UNKNOWN_ID,
} from '../support/controller-suite';
import { idem } from '../support/gateway-session';
import { InProcessDispatcher } from '../support/in-process-dispatcher';

describe('OperationsController (v1/terminals/:id/operations, v1/operations)', () => {
  const suite = new ControllerSuite();
  let dispatcher: InProcessDispatcher;
  let sim: JoinprotoTerminalSimulator;
  let storeId: string;
  let terminalId: string;
  let approved: Record<string, any>;
  let terminalOfB: string;
  let operationOfB: string;

  const connection = { kind: 'tcp', host: '127.0.0.1', port: 9 };
  const pay = (body: Record<string, unknown>, options: { terminal?: string; wait?: number | string; as?: Caller } = {}) =>
    suite.call('post', `/v1/terminals/${options.terminal ?? terminalId}/operations`, {
      as: options.as,
      body,
      query: { wait: options.wait ?? 5000 },
    });
  /** An operation row as the gateway writes it before sending, then moved to `state` (as the executor or a crash left it). */
  async function operation(caller: Caller, terminal: string, store: string, state: 'PENDING' | 'UNKNOWN'): Promise<string> {
    const { row } = await suite.session.appDb.withTenant(caller.tenantId, (tx) =>
      insertOperation(tx, {
        tenantId: caller.tenantId,
        terminalId: terminal,
        storeId: store,
        type: 'purchase',
        amount: 700,
        currency: 'RUB',
        idempotencyKey: idem(),
        requestHash: 'h',
      }),
    );
    if (state !== 'PENDING')
      await suite.session.owner.terminalOperation.update({
        where: { id: row.id },
        data: { state },
      });
    return row.id;
  }

  beforeAll(async () => {
    suite.session.dispatcherFactory = (appUrl, publish) => (dispatcher = new InProcessDispatcher(appUrl, publish));
    await suite.start();
    storeId = (await suite.create('/v1/stores', { name: 'S', timeZone: 'UTC' })).id;
    terminalId = (
      await suite.create('/v1/terminals', {
        name: 'POS',
        storeId,
        protocol: 'joinproto',
        connection,
      })
    ).id;
    sim = new JoinprotoTerminalSimulator({ cardTimeoutMs: 30 });
    dispatcher.route(terminalId, { port: (await sim.listen(0)).port });
    approved = (await pay({ type: 'purchase', amount: 1500, currency: 'RUB' })).body;
    const storeOfB = (await suite.create('/v1/stores', { name: 'B', timeZone: 'UTC' }, suite.b)).id;
    terminalOfB = (await suite.create('/v1/terminals', { name: 'POS of B', storeId: storeOfB, protocol: 'joinproto', connection }, suite.b)).id;
    operationOfB = await operation(suite.b, terminalOfB, storeOfB, 'UNKNOWN');
  });
  afterAll(async () => {
    await suite.stop();
    await dispatcher?.close();
    await sim?.close();
  });

  it('answers each route with its status code', async () => {
    expect(approved).toMatchObject({
      state: 'approved',
      type: 'purchase',
      amount: 1500,
      terminalId,
      storeId,
      hasReceipt: true,
    });
    const refund = await pay({
      type: 'refund',
      amount: 500,
      currency: 'RUB',
      originalOperationId: approved.id,
    });
    expectStatus(refund, 201);
    expect(refund.body).toMatchObject({ state: 'approved', originalOperationId: approved.id });
    const list = await suite.call('get', '/v1/operations', {
      query: { terminalId, type: 'purchase', state: 'approved' },
    });
    expectStatus(list, 200);
    expect(list.body.data.map((o: { id: string }) => o.id)).toEqual([approved.id]);
    expectStatus(await suite.call('get', `/v1/operations/${approved.id}`), 200);
    const receipt = await suite.call('get', `/v1/operations/${approved.id}/receipt`);
    expectStatus(receipt, 200);
    expect(receipt.body).toMatchObject({ operationId: approved.id, text: expect.any(String) });
    // PENDING (never sent): canceled at once, 202.
    const pending = await operation(suite.a, terminalId, storeId, 'PENDING');
    const canceled = await suite.call('post', `/v1/operations/${pending}/cancel`);
    expectStatus(canceled, 202);
    expect(canceled.body).toMatchObject({ id: pending, state: 'canceled' });
    // UNKNOWN: a human resolves it, 200.
    const unknown = await operation(suite.a, terminalId, storeId, 'UNKNOWN');
    const resolved = await suite.call('post', `/v1/operations/${unknown}/resolve`, {
      body: { state: 'declined', note: 'terminal journal: declined' },
    });
    expectStatus(resolved, 200);
    expect(resolved.body).toMatchObject({ id: unknown, state: 'declined' });
  });

  it('answers 409 in the envelope where the state forbids the call', async () => {
    const cancel = await suite.call('post', `/v1/operations/${approved.id}/cancel`);
    expectError(cancel, 409, 'CONFLICT');
    expect(cancel.body.error.details).toEqual({ state: 'approved' });
    expectError(
      await suite.call('post', `/v1/operations/${approved.id}/resolve`, {
        body: { state: 'failed', note: 'checked it' },
      }),
      409,
      'CONFLICT',
    );
    // A receipt that does not exist (an operation that never reached the terminal): 404.
    const pending = await operation(suite.a, terminalId, storeId, 'PENDING');
    expectNotFound(await suite.call('get', `/v1/operations/${pending}/receipt`));
    await suite.session.owner.terminalOperation.update({
      where: { id: pending },
      data: { state: 'CANCELED' },
    });
  });

  it('validates bodies, queries and ids with 400 naming the fields; nothing reaches the terminal', async () => {
    const sent = dispatcher.commands.length;
    expectInvalid(await pay({}), 'type');
    expectInvalid(await pay({ type: 'purchase' }), 'amount');
    expectInvalid(await pay({ type: 'purchase', amount: 0 }), 'amount');
    expectInvalid(await pay({ type: 'purchase', amount: 12.5 }), 'amount');
    expectInvalid(await pay({ type: 'purchase', amount: 1_000_000_000_000 }), 'amount');
    expectInvalid(await pay({ type: 'void', amount: 100, originalOperationId: approved.id }), 'amount');
    expectInvalid(await pay({ type: 'purchase', amount: 100, currency: 'rub' }), 'currency');
    expectInvalid(await pay({ type: 'teleport', amount: 100 }), 'type');
    expectInvalid(await pay({ type: 'refund', amount: 100, originalOperationId: 'x' }), 'originalOperationId');
    expectInvalid(await pay({ type: 'purchase', amount: 100, terminalId }), '(body)');
    expectInvalid(await pay({ type: 'purchase', amount: 100 }, { wait: -1 }), 'wait');
    expectInvalid(await pay({ type: 'purchase', amount: 100 }, { wait: 'soon' }), 'wait');
    expectInvalid(await suite.call('get', '/v1/operations', { query: { state: 'done' } }), 'state');
    expectInvalid(await suite.call('get', '/v1/operations', { query: { from: 'yesterday' } }), 'from');
    expectInvalid(await suite.call('get', '/v1/operations', { query: { terminalId: 'x', storeId: 'y' } }), 'terminalId', 'storeId');
    expectInvalid(await suite.call('post', `/v1/operations/${approved.id}/resolve`, { body: {} }), 'state', 'note');
    expectInvalid(
      await suite.call('post', `/v1/operations/${approved.id}/resolve`, {
        body: { state: 'canceled', note: 'x' },
      }),
      'state',
      'note',
    );
    expect(dispatcher.commands.length).toBe(sent);
  });

  it('answers 404 for an unknown operation or terminal and for those of another tenant', async () => {
    await expectIdsChecked(
      suite,
      [
        { method: 'get', path: (id) => `/v1/operations/${id}` },
        { method: 'get', path: (id) => `/v1/operations/${id}/receipt` },
        { method: 'post', path: (id) => `/v1/operations/${id}/cancel` },
        {
          method: 'post',
          path: (id) => `/v1/operations/${id}/resolve`,
          body: { state: 'approved', note: 'taken over' },
        },
      ],
      { otherTenants: operationOfB },
    );
    await expectIdsChecked(
      suite,
      [
        {
          method: 'post',
          path: (id) => `/v1/terminals/${id}/operations`,
          body: { type: 'purchase', amount: 100, currency: 'RUB' },
        },
      ],
      {
        otherTenants: terminalOfB,
      },
    );
    // A refund of another tenant's operation, on A's own terminal: the original is not found, as an unknown one.
    for (const original of [operationOfB, UNKNOWN_ID])
      expectNotFound(await pay({ type: 'refund', amount: 100, currency: 'RUB', originalOperationId: original }));
    expect(
      await suite.session.owner.terminalOperation.findUniqueOrThrow({
        where: { id: operationOfB },
      }),
    ).toMatchObject({ state: 'UNKNOWN' });
    expect(await suite.session.appDb.withTenant(suite.a.tenantId, (tx) => tx.terminalOperation.findUnique({ where: { id: operationOfB } }))).toBeNull();
    expectNotFound(await suite.call('get', `/v1/operations/${UNKNOWN_ID}`, { as: suite.b }));
  });

  it('refuses a read-only key on every mutating route (403); nothing reaches the terminal', async () => {
    const sent = dispatcher.commands.length;
    await expectWritesForbidden(
      suite,
      [
        {
          method: 'post',
          path: `/v1/terminals/${terminalId}/operations`,
          body: { type: 'purchase', amount: 100, currency: 'RUB' },
        },
        { method: 'post', path: `/v1/operations/${approved.id}/cancel` },
        {
          method: 'post',
          path: `/v1/operations/${approved.id}/resolve`,
          body: { state: 'failed', note: 'checked it' },
        },
      ],
      'operations:write',
    );
    expect(dispatcher.commands.length).toBe(sent);
    expectStatus(await suite.call('get', `/v1/operations/${approved.id}/receipt`, { as: suite.readOnly }), 200);
  });
});
