import { GatewaySession, idem } from '../e2e/support/gateway-session';

/**
 * Tenant B must not see or touch tenant A's stores, agents or terminals: 404 (never 403, which would
 * reveal that the id exists), and the same holds when the query goes straight through the
 * tenant-scoped Prisma client, proving that row-level security, not only a WHERE clause, stops it.
 */
describe('tenant isolation', () => {
  const session = new GatewaySession();
  let a: { Authorization: string };
  let b: { Authorization: string };
  let tenantB: string;
  const ids = { store: '', agent: '', terminal: '' };

  beforeAll(async () => {
    await session.start();
    a = { Authorization: `Bearer ${(await session.tenant('Chain A')).apiKey}` };
    const second = await session.tenant('Chain B');
    b = { Authorization: `Bearer ${second.apiKey}` };
    tenantB = second.tenantId;

    const post = (path: string, body: object) => session.http().post(path).set(a).set('Idempotency-Key', idem()).send(body);
    ids.store = (await post('/v1/stores', { name: 'A store', timeZone: 'Europe/Moscow' })).body.id;
    ids.agent = (await post('/v1/agents', { name: 'A till', storeId: ids.store })).body.agent.id;
    const terminal = await post('/v1/terminals', {
      name: 'A terminal',
      storeId: ids.store,
      agentId: ids.agent,
      protocol: 'joinproto',
      connection: { kind: 'tcp', host: '10.0.0.5', port: 2000 },
    });
    if (terminal.status !== 201) throw new Error(`terminal setup failed: ${JSON.stringify(terminal.body)}`);
    ids.terminal = terminal.body.id;
  });
  afterAll(() => session.stop());

  const resources = [
    { name: 'store', path: '/v1/stores', patch: { name: 'hijacked' } },
    { name: 'agent', path: '/v1/agents', patch: { name: 'hijacked' } },
    { name: 'terminal', path: '/v1/terminals', patch: { name: 'hijacked' } },
  ] as const;

  describe.each(resources)('$name', ({ name, path, patch }) => {
    const id = () => ids[name];

    it(`should not read a ${name} of another tenant`, async () => {
      const res = await session.http().get(`${path}/${id()}`).set(b);
      expect(res.status).toBe(404);
      expect(res.body.error.code).toBe('NOT_FOUND');
      expect((await session.http().get(`${path}/${id()}`).set(a)).status).toBe(200);
    });

    it(`should not list a ${name} of another tenant`, async () => {
      const res = await session.http().get(path).set(b);
      expect(res.status).toBe(200);
      expect(res.body.data.map((r: { id: string }) => r.id)).not.toContain(id());
      const own = await session.http().get(path).set(a);
      expect(own.body.data.map((r: { id: string }) => r.id)).toContain(id());
    });

    it(`should not update a ${name} of another tenant`, async () => {
      const res = await session.http().patch(`${path}/${id()}`).set(b).set('Idempotency-Key', idem()).send(patch);
      expect(res.status).toBe(404);
      expect((await session.http().get(`${path}/${id()}`).set(a)).body.name).not.toBe('hijacked');
    });

    it(`should not delete a ${name} of another tenant`, async () => {
      const res = await session.http().delete(`${path}/${id()}`).set(b).set('Idempotency-Key', idem());
      expect(res.status).toBe(404);
      expect((await session.http().get(`${path}/${id()}`).set(a)).status).toBe(200);
    });
  });

  it('should not let tenant B attach its terminal to tenant A store or agent', async () => {
    const bStore = (await session.http().post('/v1/stores').set(b).set('Idempotency-Key', idem()).send({ name: 'B', timeZone: 'UTC' })).body.id;
    const intoA = await session
      .http()
      .post('/v1/terminals')
      .set(b)
      .set('Idempotency-Key', idem())
      .send({ name: 't', storeId: ids.store, protocol: 'ssi_ecr', connection: { kind: 'tcp', host: 'h', port: 3000 } });
    expect(intoA.status).toBe(422);
    const viaAgent = await session
      .http()
      .post('/v1/terminals')
      .set(b)
      .set('Idempotency-Key', idem())
      .send({ name: 't', storeId: bStore, agentId: ids.agent, protocol: 'ssi_ecr', connection: { kind: 'tcp', host: 'h', port: 3000 } });
    expect(viaAgent.status).toBe(422);
    expect(viaAgent.body.error.details.issues[0].field).toBe('agentId');
  });

  it('RLS alone hides and protects tenant A rows from a tenant-B-scoped Prisma client (no WHERE on tenant)', async () => {
    await session.appDb.withTenant(tenantB, async (tx) => {
      expect(await tx.store.findUnique({ where: { id: ids.store } })).toBeNull();
      expect(await tx.agent.findUnique({ where: { id: ids.agent } })).toBeNull();
      expect(await tx.terminal.findUnique({ where: { id: ids.terminal } })).toBeNull();
      expect(await tx.auditLog.count({ where: { resourceId: ids.store } })).toBe(0);
      expect((await tx.terminal.updateMany({ data: { name: 'rls-bypass' } })).count).toBe(0);
      expect((await tx.agent.deleteMany({})).count).toBe(0);
    });
    const terminal = await session.owner.terminal.findUniqueOrThrow({ where: { id: ids.terminal } });
    expect(terminal.name).toBe('A terminal');
    expect(await session.owner.agent.count({ where: { id: ids.agent } })).toBe(1);
  });
});
