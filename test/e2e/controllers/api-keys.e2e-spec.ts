import { ALL_SCOPES } from '@payorch/domain';

import {
  type Caller,
  ControllerSuite,
  expectError,
  expectForbidden,
  expectInvalid,
  expectNotFound,
  expectStatus,
  UNKNOWN_ID,
} from '../support/controller-suite';

/** POST/GET /v1/api-keys, POST /v1/api-keys/:id/revoke and the role scopes read / operate / admin. */
describe('ApiKeysController (v1/api-keys)', () => {
  const suite = new ControllerSuite();
  let admin: Caller & { apiKeyId: string };
  /** A key made before role scopes existed: every fine scope, no role. */
  let legacy: Caller;
  let keyOfB: { id: string };

  beforeAll(async () => {
    await suite.start();
    // A tenant's first key from the operator CLI is an admin key (the default).
    admin = await suite.session.tenant();
    const fine = await suite.session.admin.createApiKey({ tenantId: admin.tenantId, name: 'legacy', scopes: [...ALL_SCOPES] });
    legacy = { tenantId: admin.tenantId, apiKey: fine.apiKey };
    keyOfB = await suite.session.admin.createApiKey({ tenantId: suite.b.tenantId, name: 'b-pos', scopes: ['operate'] });
  });
  afterAll(() => suite.stop());

  const asAdmin = () => ({ as: admin });
  const keyOf = async (scopes: string[], name = 'k'): Promise<Caller & { id: string; prefix: string }> => {
    const res = await suite.call('post', '/v1/api-keys', { ...asAdmin(), body: { name, scopes } });
    expectStatus(res, 201);
    return { tenantId: admin.tenantId, apiKey: res.body.apiKey, id: res.body.id, prefix: res.body.prefix };
  };

  it('creates a key shown once, lists it by prefix without the secret, and it authenticates', async () => {
    const res = await suite.call('post', '/v1/api-keys', { ...asAdmin(), body: { name: 'POS 1', scopes: ['operate'] }, idempotencyKey: 'create-pos-1' });
    expectStatus(res, 201);
    expect(res.body).toMatchObject({ name: 'POS 1', scopes: ['operate'], lastUsedAt: null, revokedAt: null, expiresAt: null, secretWithheld: false });
    expect(res.body.apiKey).toMatch(new RegExp(`^pok_${res.body.prefix}_`));
    // A replay of the same Idempotency-Key returns the key without its secret.
    const replay = await suite.call('post', '/v1/api-keys', { ...asAdmin(), body: { name: 'POS 1', scopes: ['operate'] }, idempotencyKey: 'create-pos-1' });
    expect(replay.status).toBe(201);
    expect(replay.headers['idempotent-replayed']).toBe('true');
    expect(replay.body).toMatchObject({ id: res.body.id, apiKey: null, secretWithheld: true });
    // Never stored in clear.
    const row = await suite.session.owner.apiKey.findUniqueOrThrow({ where: { id: res.body.id } });
    // The secret is everything after `pok_<prefix>_` (base64url: it may contain `_` itself, so not the last `_` part).
    const secret = (res.body.apiKey as string).slice(`pok_${res.body.prefix}_`.length);
    expect(secret.length).toBeGreaterThanOrEqual(20);
    expect(JSON.stringify(row)).not.toContain(secret);

    const pos: Caller = { tenantId: admin.tenantId, apiKey: res.body.apiKey };
    expectStatus(await suite.call('get', '/v1/stores', { as: pos }), 200);
    const listed = await suite.call('get', '/v1/api-keys', asAdmin());
    expectStatus(listed, 200);
    const item = listed.body.data.find((k: { id: string }) => k.id === res.body.id);
    expect(Object.keys(item).sort()).toEqual(['createdAt', 'expiresAt', 'id', 'lastUsedAt', 'name', 'prefix', 'revokedAt', 'scopes']);
    expect(item).toMatchObject({ prefix: res.body.prefix, name: 'POS 1', scopes: ['operate'], lastUsedAt: expect.any(String) });
    expect(JSON.stringify(listed.body)).not.toContain('pok_');
    expectStatus(await suite.call('get', `/v1/api-keys/${res.body.id}`, asAdmin()), 200);
    // Tenant isolation: B's keys are not listed, and B's key id is 404.
    expect(listed.body.data.map((k: { id: string }) => k.id)).not.toContain(keyOfB.id);
  });

  it('pages the list with the cursor', async () => {
    await keyOf(['read'], 'page-1');
    await keyOf(['read'], 'page-2');
    const first = await suite.call('get', '/v1/api-keys', { ...asAdmin(), query: { limit: 1 } });
    expectStatus(first, 200);
    expect(first.body.data).toHaveLength(1);
    const second = await suite.call('get', '/v1/api-keys', { ...asAdmin(), query: { limit: 1, cursor: first.body.nextCursor } });
    expect(second.body.data[0].id).not.toBe(first.body.data[0].id);
  });

  it('validates the body with 400 naming the fields', async () => {
    expectInvalid(await suite.call('post', '/v1/api-keys', { ...asAdmin(), body: {} }), 'name', 'scopes');
    expectInvalid(await suite.call('post', '/v1/api-keys', { ...asAdmin(), body: { name: 'x', scopes: [] } }), 'scopes');
    expectInvalid(await suite.call('post', '/v1/api-keys', { ...asAdmin(), body: { name: 'x', scopes: ['root'] } }), 'scopes.0');
    expectInvalid(await suite.call('post', '/v1/api-keys', { ...asAdmin(), body: { name: 'x', scopes: ['read'], tenantId: suite.b.tenantId } }), '(body)');
    expectInvalid(await suite.call('post', '/v1/api-keys', { ...asAdmin(), body: { name: 'x', scopes: ['read'], expiresInDays: 0 } }), 'expiresInDays');
  });

  it('answers 404 for an unknown key and for a key of another tenant', async () => {
    for (const id of [UNKNOWN_ID, keyOfB.id]) {
      expectNotFound(await suite.call('get', `/v1/api-keys/${id}`, asAdmin()));
      expectNotFound(await suite.call('post', `/v1/api-keys/${id}/revoke`, asAdmin()));
    }
    expectError(await suite.call('get', '/v1/api-keys/not-a-uuid', asAdmin()), 400, 'VALIDATION_FAILED');
    // RLS, not a WHERE clause: under this tenant, B's key does not exist (and B's key still works).
    expect(await suite.session.appDb.withTenant(admin.tenantId, (tx) => tx.apiKey.findUnique({ where: { id: keyOfB.id } }))).toBeNull();
    expect((await suite.session.owner.apiKey.findUniqueOrThrow({ where: { id: keyOfB.id } })).revokedAt).toBeNull();
  });

  it('lets only admin keys manage keys; fine-scoped keys made before roles still work on their routes', async () => {
    const operate = await keyOf(['operate']);
    const read = await keyOf(['read']);
    for (const who of [operate, read, legacy]) {
      expectForbidden(await suite.call('post', '/v1/api-keys', { as: who, body: { name: 'x', scopes: ['read'] } }), 'admin' as never);
      expectForbidden(await suite.call('get', '/v1/api-keys', { as: who }), 'admin' as never);
      expectForbidden(await suite.call('post', `/v1/api-keys/${operate.id}/revoke`, { as: who }), 'admin' as never);
    }
    expectStatus(await suite.call('post', '/v1/stores', { as: legacy, body: { name: 'fine', timeZone: 'UTC' } }), 201);
    expect((await suite.call('post', '/v1/assist-merchants', { as: legacy, body: {} })).status).toBe(400);
  });

  it('maps read / operate / admin onto the fine scopes (docs/security.md)', async () => {
    const read = await keyOf(['read']);
    const operate = await keyOf(['operate']);
    const store = await suite.create('/v1/stores', { name: 'S', timeZone: 'UTC' }, admin);
    // read: every GET, no write.
    for (const path of ['/v1/stores', '/v1/terminals', '/v1/operations', '/v1/webhooks', '/v1/audit-log', '/v1/assist-merchants', '/v1/settlement-schedules']) {
      expectStatus(await suite.call('get', path, { as: read }), 200);
    }
    expectForbidden(await suite.call('post', '/v1/stores', { as: read, body: { name: 'x', timeZone: 'UTC' } }), 'stores:write');
    expectForbidden(await suite.call('post', `/v1/terminals/${store.id}/operations`, { as: read, body: {} }), 'operations:write');
    // operate: payments (past the scope check: the 404/400 is about the request, not the key), not stores, webhooks or settings.
    const op = await suite.call('post', `/v1/operations/${store.id}/cancel`, { as: operate, body: {} });
    expect(op.status).not.toBe(403);
    expect((await suite.call('post', '/v1/wallet-payments', { as: operate, body: {} })).status).toBe(400);
    expectForbidden(await suite.call('post', '/v1/stores', { as: operate, body: { name: 'x', timeZone: 'UTC' } }), 'stores:write');
    expectForbidden(await suite.call('post', '/v1/webhooks', { as: operate, body: {} }), 'webhooks:write');
    expectForbidden(await suite.call('post', '/v1/assist-merchants', { as: operate, body: {} }), 'wallet:write');
    expectForbidden(await suite.call('post', '/v1/settlement-schedules', { as: operate, body: {} }), 'settlements:write');
    // admin: settings too.
    expect((await suite.call('post', '/v1/assist-merchants', { as: admin, body: {} })).status).toBe(400);
    expectStatus(await suite.call('get', '/v1/stores', { as: operate }), 200);
  });

  it('never grants a scope the creating key does not hold', async () => {
    // Only admin keys reach the route; an admin key holds everything. The check itself is unit-tested
    // (libs/domain scopes.spec.ts); here: a created key holds exactly what was asked.
    const k = await keyOf(['read', 'operations:write']);
    expectStatus(await suite.call('get', '/v1/operations', { as: k }), 200);
    expectForbidden(await suite.call('post', '/v1/stores', { as: k, body: { name: 'x', timeZone: 'UTC' } }), 'stores:write');
  });

  it('revokes a key: its next request is 401, and a second revoke answers the same revocation', async () => {
    const k = await keyOf(['read']);
    expectStatus(await suite.call('get', '/v1/stores', { as: k }), 200);
    const revoked = await suite.call('post', `/v1/api-keys/${k.id}/revoke`, asAdmin());
    expectStatus(revoked, 200);
    expect(revoked.body.revokedAt).toEqual(expect.any(String));
    expectError(await suite.call('get', '/v1/stores', { as: k }), 401, 'UNAUTHENTICATED');
    const again = await suite.call('post', `/v1/api-keys/${k.id}/revoke`, asAdmin());
    expect(again.body.revokedAt).toBe(revoked.body.revokedAt);
  });

  it("refuses to revoke the tenant's last working admin key (409), itself or by another admin key", async () => {
    const tenant = await suite.session.tenant();
    const first = { tenantId: tenant.tenantId, apiKey: tenant.apiKey };
    const self = await suite.call('post', `/v1/api-keys/${tenant.apiKeyId}/revoke`, { as: first });
    expectError(self, 409, 'CONFLICT');
    expect(self.body.error.details).toEqual({ reason: 'last_admin_key' });
    const second = await suite.call('post', '/v1/api-keys', { as: first, body: { name: 'admin 2', scopes: ['admin'] } });
    const secondKey = { tenantId: tenant.tenantId, apiKey: second.body.apiKey };
    // With two admin keys the first can go, even revoking itself; then the second is the last one.
    expectStatus(await suite.call('post', `/v1/api-keys/${tenant.apiKeyId}/revoke`, { as: first }), 200);
    expectError(await suite.call('get', '/v1/api-keys', { as: first }), 401, 'UNAUTHENTICATED');
    expectError(await suite.call('post', `/v1/api-keys/${second.body.id}/revoke`, { as: secondKey }), 409, 'CONFLICT');
  });

  it('writes an audit row for create and revoke, readable through /v1/audit-log', async () => {
    const k = await keyOf(['read'], 'audited');
    await suite.call('post', `/v1/api-keys/${k.id}/revoke`, asAdmin());
    const log = await suite.call('get', '/v1/audit-log', { ...asAdmin(), query: { resourceType: 'api_key', resourceId: k.id } });
    expectStatus(log, 200);
    expect(log.body.data.map((e: { action: string }) => e.action)).toEqual(['api_key.revoke', 'api_key.create']);
    expect(log.body.data[1]).toMatchObject({ actorType: 'api_key', actorId: admin.apiKeyId, details: { scopes: ['read'], prefix: k.prefix } });
    expect(JSON.stringify(log.body)).not.toContain('pok_');
  });
});
