import { ControllerSuite, expectError, expectIdsChecked, expectInvalid, expectStatus, expectWritesForbidden, UNKNOWN_ID } from '../support/controller-suite';

describe('AgentsController (v1/agents)', () => {
  const suite = new ControllerSuite();
  let storeId: string;
  let agent: Record<string, any>;
  let agentOfB: Record<string, any>;
  let storeOfB: string;

  beforeAll(async () => {
    await suite.start();
    storeId = (await suite.create('/v1/stores', { name: 'S', timeZone: 'UTC' })).id;
    agent = (await suite.create('/v1/agents', { name: 'till 1', storeId })).agent;
    storeOfB = (await suite.create('/v1/stores', { name: 'B', timeZone: 'UTC' }, suite.b)).id;
    agentOfB = (await suite.create('/v1/agents', { name: 'till of B', storeId: storeOfB }, suite.b)).agent;
  });
  afterAll(() => suite.stop());

  it('answers each route with its status code', async () => {
    const created = await suite.call('post', '/v1/agents', { body: { name: 'till 2', storeId } });
    expectStatus(created, 201);
    expect(created.body).toMatchObject({
      agent: { name: 'till 2', storeId, status: 'pending_enrollment' },
      enrollmentToken: expect.any(String),
      enrollmentExpiresAt: expect.any(String),
    });
    const id = created.body.agent.id as string;
    const list = await suite.call('get', '/v1/agents', { query: { storeId } });
    expectStatus(list, 200);
    expect(list.body.data.map((a: { id: string }) => a.id)).toEqual(expect.arrayContaining([id, agent.id]));
    expectStatus(await suite.call('get', `/v1/agents/${id}`), 200);
    expectStatus(await suite.call('patch', `/v1/agents/${id}`, { body: { name: 'till 2b' } }), 200);
    const rotated = await suite.call('post', `/v1/agents/${id}/enrollment-token`);
    expectStatus(rotated, 201);
    expect(rotated.body.enrollmentToken).not.toBe(created.body.enrollmentToken);
    const revoked = await suite.call('post', `/v1/agents/${id}/revoke`);
    expectStatus(revoked, 200);
    expect(revoked.body.status).toBe('revoked');
    // A revoked agent gets no new enrollment token: 409 in the envelope.
    expectError(await suite.call('post', `/v1/agents/${id}/enrollment-token`), 409, 'CONFLICT');
    expectStatus(await suite.call('delete', `/v1/agents/${id}`), 204);
  });

  it('validates bodies, queries and ids with 400 naming the fields', async () => {
    expectInvalid(await suite.call('post', '/v1/agents', { body: {} }), 'name', 'storeId');
    expectInvalid(await suite.call('post', '/v1/agents', { body: { name: ' ', storeId: 'nope' } }), 'name', 'storeId');
    expectInvalid(await suite.call('post', '/v1/agents', { body: { name: 'x', storeId, status: 'active' } }), '(body)');
    expectInvalid(await suite.call('patch', `/v1/agents/${agent.id}`, { body: {} }), '(body)');
    expectInvalid(await suite.call('patch', `/v1/agents/${agent.id}`, { body: { storeId: 12 } }), 'storeId');
    expectInvalid(await suite.call('get', '/v1/agents', { query: { storeId: 'nope' } }), 'storeId');
    expectInvalid(await suite.call('get', '/v1/agents', { query: { limit: 201 } }), 'limit');
  });

  it('refuses a store that is unknown or of another tenant with 422 naming storeId', async () => {
    for (const other of [UNKNOWN_ID, storeOfB]) {
      const res = await suite.call('post', '/v1/agents', { body: { name: 'x', storeId: other } });
      expectError(res, 422, 'UNPROCESSABLE');
      expect(res.body.error.details.issues).toEqual([{ field: 'storeId', message: expect.any(String) }]);
      expectError(await suite.call('patch', `/v1/agents/${agent.id}`, { body: { storeId: other } }), 422, 'UNPROCESSABLE');
    }
  });

  it('answers 404 for an unknown agent and for an agent of another tenant', async () => {
    await expectIdsChecked(
      suite,
      [
        { method: 'get', path: (id) => `/v1/agents/${id}` },
        { method: 'patch', path: (id) => `/v1/agents/${id}`, body: { name: 'Taken over' } },
        { method: 'post', path: (id) => `/v1/agents/${id}/enrollment-token` },
        { method: 'post', path: (id) => `/v1/agents/${id}/revoke` },
        { method: 'delete', path: (id) => `/v1/agents/${id}` },
      ],
      { otherTenants: agentOfB.id },
    );
    expect(await suite.session.appDb.withTenant(suite.a.tenantId, (tx) => tx.agent.findUnique({ where: { id: agentOfB.id } }))).toBeNull();
    expect(await suite.session.owner.agent.findUniqueOrThrow({ where: { id: agentOfB.id } })).toMatchObject({
      name: 'till of B',
      status: 'PENDING_ENROLLMENT',
    });
  });

  it('refuses a read-only key on every mutating route (403)', async () => {
    await expectWritesForbidden(
      suite,
      [
        { method: 'post', path: '/v1/agents', body: { name: 'x', storeId } },
        { method: 'patch', path: `/v1/agents/${agent.id}`, body: { name: 'x' } },
        { method: 'post', path: `/v1/agents/${agent.id}/enrollment-token` },
        { method: 'post', path: `/v1/agents/${agent.id}/revoke` },
        { method: 'delete', path: `/v1/agents/${agent.id}` },
      ],
      'agents:write',
    );
    expectStatus(await suite.call('get', `/v1/agents/${agent.id}`, { as: suite.readOnly }), 200);
    expect(await suite.session.owner.agent.findUniqueOrThrow({ where: { id: agent.id } })).toMatchObject({ name: 'till 1', status: 'PENDING_ENROLLMENT' });
  });
});
