import { ControllerSuite, expectError, expectIdsChecked, expectInvalid, expectStatus, expectWritesForbidden } from '../support/controller-suite';

describe('StoresController (v1/stores)', () => {
  const suite = new ControllerSuite();
  let store: Record<string, any>;
  let storeOfB: Record<string, any>;

  beforeAll(async () => {
    await suite.start();
    store = await suite.create('/v1/stores', { name: 'Main street', timeZone: 'Europe/Berlin' });
    storeOfB = await suite.create('/v1/stores', { name: 'B', timeZone: 'UTC' }, suite.b);
  });
  afterAll(() => suite.stop());

  it('answers each route with its status code', async () => {
    const created = await suite.call('post', '/v1/stores', {
      body: { name: 'Created', timeZone: 'UTC', address: 'Somewhere 1', reference: 'ref-1' },
    });
    expectStatus(created, 201);
    expect(created.body).toMatchObject({
      name: 'Created',
      timeZone: 'UTC',
      address: 'Somewhere 1',
      reference: 'ref-1',
    });
    expectStatus(await suite.call('get', '/v1/stores'), 200);
    expectStatus(await suite.call('get', `/v1/stores/${store.id}`), 200);
    const patched = await suite.call('patch', `/v1/stores/${created.body.id}`, {
      body: { name: 'Renamed' },
    });
    expectStatus(patched, 200);
    expect(patched.body.name).toBe('Renamed');
    const deleted = await suite.call('delete', `/v1/stores/${created.body.id}`);
    expectStatus(deleted, 204);
    expect(deleted.text).toBe('');
  });

  it('validates bodies, queries and ids with 400 naming the fields', async () => {
    expectInvalid(await suite.call('post', '/v1/stores', { body: {} }), 'name', 'timeZone');
    expectInvalid(await suite.call('post', '/v1/stores', { body: { name: 'x', timeZone: 'Mars/Olympus' } }), 'timeZone');
    expectInvalid(
      await suite.call('post', '/v1/stores', {
        body: { name: 'x', timeZone: 'UTC', tenantId: suite.b.tenantId },
      }),
      '(body)',
    );
    expectInvalid(await suite.call('post', '/v1/stores', { body: [] }), '(body)');
    expectInvalid(await suite.call('patch', `/v1/stores/${store.id}`, { body: {} }), '(body)');
    expectInvalid(await suite.call('patch', `/v1/stores/${store.id}`, { body: { name: '' } }), 'name');
    expectInvalid(await suite.call('get', '/v1/stores', { query: { limit: 0 } }), 'limit');
    expectInvalid(await suite.call('get', '/v1/stores', { query: { limit: 'many' } }), 'limit');
    expectInvalid(await suite.call('get', '/v1/stores', { query: { cursor: 'nope' } }), 'cursor');
    const malformed = await suite.session
      .http()
      .post('/v1/stores')
      .set('Authorization', `Bearer ${suite.a.apiKey}`)
      .set('Idempotency-Key', 'k-malformed')
      .set('Content-Type', 'application/json')
      .send('{"name":');
    expectError(malformed, 400, 'VALIDATION_FAILED');
  });

  it('answers 404 for an unknown store and for a store of another tenant', async () => {
    await expectIdsChecked(
      suite,
      [
        { method: 'get', path: (id) => `/v1/stores/${id}` },
        { method: 'patch', path: (id) => `/v1/stores/${id}`, body: { name: 'Taken over' } },
        { method: 'delete', path: (id) => `/v1/stores/${id}` },
      ],
      { otherTenants: storeOfB.id },
    );
    expect((await suite.call('get', '/v1/stores')).body.data.map((s: { id: string }) => s.id)).not.toContain(storeOfB.id);
    // RLS, not a WHERE clause: under A's tenant, B's store does not exist.
    expect(await suite.session.appDb.withTenant(suite.a.tenantId, (tx) => tx.store.findUnique({ where: { id: storeOfB.id } }))).toBeNull();
    expect((await suite.session.owner.store.findUniqueOrThrow({ where: { id: storeOfB.id } })).name).toBe('B');
  });

  it('refuses a read-only key on every mutating route (403), and lets it read', async () => {
    await expectWritesForbidden(
      suite,
      [
        { method: 'post', path: '/v1/stores', body: { name: 'x', timeZone: 'UTC' } },
        { method: 'patch', path: `/v1/stores/${store.id}`, body: { name: 'x' } },
        { method: 'delete', path: `/v1/stores/${store.id}` },
      ],
      'stores:write',
    );
    expectStatus(await suite.call('get', `/v1/stores/${store.id}`, { as: suite.readOnly }), 200);
    expect((await suite.session.owner.store.findUniqueOrThrow({ where: { id: store.id } })).name).toBe('Main street');
  });

  it('answers every error in the one envelope: no key, a bad key, a missing Idempotency-Key', async () => {
    expectError(await suite.session.http().get('/v1/stores'), 401, 'UNAUTHENTICATED');
    expectError(await suite.session.http().get('/v1/stores').set('Authorization', 'Bearer pok_nope'), 401, 'UNAUTHENTICATED');
    expectError(
      await suite.call('post', '/v1/stores', {
        body: { name: 'x', timeZone: 'UTC' },
        idempotencyKey: false,
      }),
      400,
      'IDEMPOTENCY_KEY_REQUIRED',
    );
    expectError(await suite.session.http().put('/v1/stores').set('Authorization', `Bearer ${suite.a.apiKey}`).send({}), 404, 'NOT_FOUND');
  });
});
