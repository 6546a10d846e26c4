import { GatewaySession, idem } from './support/gateway-session';

describe('stores API', () => {
  const session = new GatewaySession();
  let auth: { Authorization: string };

  beforeAll(async () => {
    await session.start();
    const { apiKey } = await session.tenant();
    auth = { Authorization: `Bearer ${apiKey}` };
  });
  afterAll(() => session.stop());

  const create = (body: object, key = idem()) => session.http().post('/v1/stores').set(auth).set('Idempotency-Key', key).send(body);

  it('creates, reads, updates and deletes a store, auditing each change', async () => {
    const created = await create({ name: 'Tverskaya 1', timeZone: 'Europe/Moscow', address: 'Moscow' });
    expect(created.status).toBe(201);
    expect(created.body).toMatchObject({ name: 'Tverskaya 1', timeZone: 'Europe/Moscow', address: 'Moscow', reference: null });
    const id = created.body.id as string;

    const got = await session.http().get(`/v1/stores/${id}`).set(auth);
    expect(got.status).toBe(200);
    expect(got.body.id).toBe(id);

    const patched = await session.http().patch(`/v1/stores/${id}`).set(auth).set('Idempotency-Key', idem()).send({ name: 'Tverskaya 2' });
    expect(patched.status).toBe(200);
    expect(patched.body.name).toBe('Tverskaya 2');

    const deleted = await session.http().delete(`/v1/stores/${id}`).set(auth).set('Idempotency-Key', idem());
    expect(deleted.status).toBe(204);
    expect((await session.http().get(`/v1/stores/${id}`).set(auth)).status).toBe(404);

    const actions = await session.owner.auditLog.findMany({ where: { resourceId: id }, orderBy: { createdAt: 'asc' } });
    expect(actions.map((a) => a.action)).toEqual(['store.create', 'store.update', 'store.delete']);
    expect(actions.every((a) => a.actorType === 'api_key' && a.requestId)).toBe(true);
  });

  it('answers a bad body with 400 naming every bad field', async () => {
    const res = await create({ name: '', timeZone: 'Mars/Olympus', extra: 1 });
    expect(res.status).toBe(400);
    expect(res.body.error.code).toBe('VALIDATION_FAILED');
    const fields = (res.body.error.details.issues as { field: string }[]).map((i) => i.field).sort();
    expect(fields).toEqual(['(body)', 'name', 'timeZone']);
    expect(res.body.error.message).toContain('timeZone: must be an IANA time zone');
    expect(res.body.error.requestId).toBe(res.headers['x-request-id']);
  });

  it('answers malformed JSON with 400 in the standard error body', async () => {
    const res = await session.http().post('/v1/stores').set(auth).set('Idempotency-Key', idem()).set('Content-Type', 'application/json').send('{"name": ');
    expect(res.status).toBe(400);
    expect(res.body.error).toMatchObject({ code: 'VALIDATION_FAILED' });
  });

  it('requires an API key, and rejects a revoked one with 401', async () => {
    expect((await session.http().get('/v1/stores')).status).toBe(401);
    const { apiKey, apiKeyId } = await session.tenant();
    const ok = await session
      .http()
      .post('/v1/stores')
      .set('Authorization', `Bearer ${apiKey}`)
      .set('Idempotency-Key', idem())
      .send({ name: 'S', timeZone: 'UTC' });
    expect(ok.status).toBe(201);
    await session.admin.revokeApiKey(apiKeyId);
    const res = await session
      .http()
      .post('/v1/stores')
      .set('Authorization', `Bearer ${apiKey}`)
      .set('Idempotency-Key', idem())
      .send({ name: 'S', timeZone: 'UTC' });
    expect(res.status).toBe(401);
    expect(res.body.error.code).toBe('UNAUTHENTICATED');
    const forged = `${apiKey.slice(0, -2)}xx`;
    expect((await session.http().get('/v1/stores').set('Authorization', `Bearer ${forged}`)).status).toBe(401);
  });

  it('enforces scopes with 403', async () => {
    const { apiKey } = await session.tenant(undefined, ['stores:read']);
    const res = await session
      .http()
      .post('/v1/stores')
      .set('Authorization', `Bearer ${apiKey}`)
      .set('Idempotency-Key', idem())
      .send({ name: 'S', timeZone: 'UTC' });
    expect(res.status).toBe(403);
    expect(res.body.error.details).toEqual({ missing: ['stores:write'] });
  });

  it('replays the same answer for the same Idempotency-Key and refuses it for a different body', async () => {
    const key = idem();
    const first = await create({ name: 'Idem', timeZone: 'UTC' }, key);
    const again = await create({ name: 'Idem', timeZone: 'UTC' }, key);
    expect(first.status).toBe(201);
    expect(again.status).toBe(201);
    expect(again.body).toEqual(first.body);
    expect(again.headers['idempotent-replayed']).toBe('true');
    expect(await session.owner.store.count({ where: { name: 'Idem' } })).toBe(1);

    const other = await create({ name: 'Other', timeZone: 'UTC' }, key);
    expect(other.status).toBe(409);
    expect(other.body.error.code).toBe('IDEMPOTENCY_KEY_REUSED');

    const missing = await session.http().post('/v1/stores').set(auth).send({ name: 'x', timeZone: 'UTC' });
    expect(missing.status).toBe(400);
    expect(missing.body.error.code).toBe('IDEMPOTENCY_KEY_REQUIRED');
  });

  it('releases the key of a failed request so the corrected request can use it', async () => {
    const key = idem();
    expect((await create({ name: 'Fix me', timeZone: 'Nowhere' }, key)).status).toBe(400);
    expect((await create({ name: 'Fix me', timeZone: 'UTC' }, key)).status).toBe(201);
  });

  it('pages through stores with a cursor, newest first', async () => {
    const { apiKey } = await session.tenant();
    const h = { Authorization: `Bearer ${apiKey}` };
    for (let i = 0; i < 5; i++) {
      await session
        .http()
        .post('/v1/stores')
        .set(h)
        .set('Idempotency-Key', idem())
        .send({ name: `P${i}`, timeZone: 'UTC' });
    }
    const names: string[] = [];
    let cursor: string | null = null;
    do {
      const res: { body: { data: { name: string }[]; nextCursor: string | null } } = await session
        .http()
        .get('/v1/stores')
        .query({ limit: 2, ...(cursor ? { cursor } : {}) })
        .set(h);
      names.push(...res.body.data.map((s) => s.name));
      cursor = res.body.nextCursor;
    } while (cursor);
    expect(names).toEqual(['P4', 'P3', 'P2', 'P1', 'P0']);
    const bad = await session.http().get('/v1/stores').query({ cursor: 'nope' }).set(h);
    expect(bad.status).toBe(400);
    expect(bad.body.error.details.issues[0].field).toBe('cursor');
  });

  it('refuses to delete a store that still has agents (409)', async () => {
    const store = await create({ name: 'Busy', timeZone: 'UTC' });
    await session.http().post('/v1/agents').set(auth).set('Idempotency-Key', idem()).send({ name: 'till', storeId: store.body.id });
    const res = await session.http().delete(`/v1/stores/${store.body.id}`).set(auth).set('Idempotency-Key', idem());
    expect(res.status).toBe(409);
    expect(res.body.error.code).toBe('RESOURCE_IN_USE');
  });
});
