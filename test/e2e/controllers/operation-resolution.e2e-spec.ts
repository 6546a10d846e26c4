import { insertOperation } from '@payorch/operations';

import { ControllerSuite, expectInvalid, expectStatus } from '../support/controller-suite';
import { idem } from '../support/gateway-session';

describe('OperationsController: manual resolution records RRN, authorisation code and note (POST v1/operations/:id/resolve)', () => {
  const suite = new ControllerSuite();
  let storeId: string;
  let terminalId: string;

  /** An operation the executor left UNKNOWN (the terminal's answer was lost). */
  async function unknownOperation(): Promise<string> {
    const { row } = await suite.session.appDb.withTenant(suite.a.tenantId, (tx) =>
      insertOperation(tx, {
        tenantId: suite.a.tenantId,
        terminalId,
        storeId,
        type: 'purchase',
        amount: 700,
        currency: 'RUB',
        idempotencyKey: idem(),
        requestHash: 'h',
      }),
    );
    await suite.session.owner.terminalOperation.update({ where: { id: row.id }, data: { state: 'UNKNOWN' } });
    return row.id;
  }
  const resolve = (id: string, body: Record<string, unknown>) => suite.call('post', `/v1/operations/${id}/resolve`, { body });

  beforeAll(async () => {
    await suite.start();
    storeId = (await suite.create('/v1/stores', { name: 'S', timeZone: 'UTC' })).id;
    terminalId = (await suite.create('/v1/terminals', { name: 'POS', storeId, protocol: 'joinproto', connection: { kind: 'tcp', host: '127.0.0.1', port: 9 } }))
      .id;
  });
  afterAll(() => suite.stop());

  it('stores and returns them; the audit entry, the OperationEvent and operation.recovered carry them', async () => {
    const id = await unknownOperation();
    const note = 'terminal journal: approved, receipt 0042';
    const res = await resolve(id, { state: 'approved', rrn: '412345678901', approvalCode: 'A1B2C3', note });
    expectStatus(res, 200);
    expect(res.body).toMatchObject({ id, state: 'approved', rrn: '412345678901', approvalCode: 'A1B2C3', stateReason: `resolved manually: ${note}` });
    expect((await suite.call('get', `/v1/operations/${id}`)).body).toMatchObject({ rrn: '412345678901', approvalCode: 'A1B2C3' });

    const audit = await suite.session.owner.auditLog.findFirstOrThrow({ where: { resourceId: id, action: 'operation.resolve' } });
    expect(audit.details).toEqual({ state: 'approved', note, rrn: '412345678901', approvalCode: 'A1B2C3' });
    const step = await suite.session.owner.operationEvent.findFirstOrThrow({ where: { operationId: id, kind: 'resolved_manually' } });
    expect(step).toMatchObject({ fromState: 'UNKNOWN', toState: 'APPROVED' });
    expect(step.data).toMatchObject({ note, rrn: '412345678901', approvalCode: 'A1B2C3', resolvedBy: 'human' });
    const event = await suite.session.owner.domainEvent.findFirstOrThrow({ where: { subjectId: id, type: 'operation.recovered' } });
    expect(event.data).toMatchObject({ state: 'approved', rrn: '412345678901', approvalCode: 'A1B2C3', note, resolvedBy: 'human' });
  });

  it('keeps them optional, and records an RRN on a declined operation (the host saw it)', async () => {
    const bare = await unknownOperation();
    const plain = await resolve(bare, { state: 'failed', note: 'never reached the host' });
    expectStatus(plain, 200);
    expect(plain.body).toMatchObject({ state: 'failed', rrn: null, approvalCode: null });
    const declined = await unknownOperation();
    const res = await resolve(declined, { state: 'declined', rrn: '000000000123', note: 'bank: declined' });
    expectStatus(res, 200);
    expect(res.body).toMatchObject({ state: 'declined', rrn: '000000000123', approvalCode: null });
  });

  it('validates them with 400 naming the field; the operation stays unknown', async () => {
    const id = await unknownOperation();
    expectInvalid(await resolve(id, { state: 'declined', approvalCode: 'A1B2C3', note: 'checked' }), 'approvalCode');
    expectInvalid(await resolve(id, { state: 'failed', rrn: '412345678901', note: 'checked' }), 'rrn');
    expectInvalid(await resolve(id, { state: 'approved', rrn: '4123-4567', note: 'checked' }), 'rrn');
    expectInvalid(await resolve(id, { state: 'approved', rrn: '1'.repeat(25), note: 'checked' }), 'rrn');
    expectInvalid(await resolve(id, { state: 'approved', approvalCode: '', note: 'checked' }), 'approvalCode');
    expectInvalid(await resolve(id, { state: 'approved', approvalCode: 123456, note: 'checked' }), 'approvalCode');
    expectInvalid(await resolve(id, { state: 'approved', rrn: '412345678901' }), 'note');
    expect((await suite.call('get', `/v1/operations/${id}`)).body).toMatchObject({ state: 'unknown', rrn: null });
  });
});
