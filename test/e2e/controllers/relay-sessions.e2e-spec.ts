import { ControllerSuite, expectForbidden, expectInvalid, expectStatus } from '../support/controller-suite';

describe('RelaySessionsController (GET v1/relay-sessions)', () => {
  const suite = new ControllerSuite();
  const connection = { kind: 'tcp', host: '127.0.0.1', port: 9 };
  const t0 = Date.UTC(2026, 2, 1, 9, 0, 0);
  const at = (minutes: number) => new Date(t0 + minutes * 60_000);
  let storeA: string;
  let storeA2: string;
  let terminalA: string;
  let terminalA2: string;
  let terminalB: string;
  const ids: Record<string, string> = {};

  async function session(tenantId: string, terminalId: string, name: string, startMin: number, endMin: number | null, outcome: string) {
    const row = await suite.session.owner.relaySession.create({
      data: {
        tenantId,
        terminalId,
        host: `${name}.processing.example.com`,
        port: 4000,
        resolvedAddress: '93.184.216.34',
        outcome,
        startedAt: at(startMin),
        endedAt: endMin === null ? null : at(endMin),
        bytesToHost: 120n,
        bytesFromHost: 340n,
      },
    });
    ids[name] = row.id;
  }

  beforeAll(async () => {
    await suite.start();
    storeA = (await suite.create('/v1/stores', { name: 'A1', timeZone: 'UTC' })).id;
    storeA2 = (await suite.create('/v1/stores', { name: 'A2', timeZone: 'UTC' })).id;
    terminalA = (await suite.create('/v1/terminals', { name: 'POS 1', storeId: storeA, protocol: 'joinproto', connection })).id;
    terminalA2 = (await suite.create('/v1/terminals', { name: 'POS 2', storeId: storeA2, protocol: 'joinproto', connection })).id;
    const storeB = (await suite.create('/v1/stores', { name: 'B', timeZone: 'UTC' }, suite.b)).id;
    terminalB = (await suite.create('/v1/terminals', { name: 'POS B', storeId: storeB, protocol: 'joinproto', connection }, suite.b)).id;
    await session(suite.a.tenantId, terminalA, 's1', 0, 1, 'closed');
    await session(suite.a.tenantId, terminalA, 's2', 10, 10, 'denied');
    await session(suite.a.tenantId, terminalA2, 's3', 20, 25, 'peer_closed');
    await session(suite.a.tenantId, terminalA, 's4', 30, null, 'open');
    await session(suite.b.tenantId, terminalB, 'b1', 5, 6, 'closed');
  });
  afterAll(() => suite.stop());

  const list = (query: Record<string, string | number> = {}, as = suite.a) => suite.call('get', '/v1/relay-sessions', { query, as });
  const names = (body: { data: { id: string }[] }) => body.data.map((r) => Object.keys(ids).find((k) => ids[k] === r.id));

  it('returns the audit newest first, each row with start before end, and only the tenant’s rows', async () => {
    const res = await list();
    expectStatus(res, 200);
    expect(names(res.body)).toEqual(['s4', 's3', 's2', 's1']);
    expect(res.body.nextCursor).toBeNull();
    expect(res.body.data[1]).toEqual({
      id: ids.s3,
      terminalId: terminalA2,
      operationId: null,
      host: 's3.processing.example.com',
      port: 4000,
      resolvedAddress: '93.184.216.34',
      state: 'ended',
      outcome: 'peer_closed',
      reason: null,
      bytesToHost: 120,
      bytesFromHost: 340,
      startedAt: at(20).toISOString(),
      endedAt: at(25).toISOString(),
      durationMs: 300_000,
    });
    expect(res.body.data[0]).toMatchObject({ state: 'open', endedAt: null, durationMs: null });
    // Tenant B sees only its own row; RLS (not a WHERE clause) hides A's rows from B's transaction.
    expect(names((await list({}, suite.b)).body)).toEqual(['b1']);
    const seenByB = await suite.session.appDb.withTenant(suite.b.tenantId, (tx) => tx.relaySession.findMany({ where: { id: ids.s1 } }));
    expect(seenByB).toEqual([]);
    expect(names((await list({ terminalId: terminalB })).body)).toEqual([]);
  });

  it('filters by terminal, store, state, outcome and time range', async () => {
    expect(names((await list({ terminalId: terminalA })).body)).toEqual(['s4', 's2', 's1']);
    expect(names((await list({ storeId: storeA2 })).body)).toEqual(['s3']);
    expect(names((await list({ state: 'open' })).body)).toEqual(['s4']);
    expect(names((await list({ state: 'ended', terminalId: terminalA })).body)).toEqual(['s2', 's1']);
    expect(names((await list({ outcome: 'denied' })).body)).toEqual(['s2']);
    expect(names((await list({ from: at(10).toISOString(), to: at(30).toISOString() })).body)).toEqual(['s3', 's2']);
  });

  it('pages with the opaque cursor, without gaps or repeats', async () => {
    const first = await list({ limit: 3 });
    expect(names(first.body)).toEqual(['s4', 's3', 's2']);
    const second = await list({ limit: 3, cursor: first.body.nextCursor });
    expect(names(second.body)).toEqual(['s1']);
    expect(second.body.nextCursor).toBeNull();
  });

  it('validates the query with 400 naming the field, and needs egress:read', async () => {
    expectInvalid(await list({ terminalId: 'x' }), 'terminalId');
    expectInvalid(await list({ storeId: 'y' }), 'storeId');
    expectInvalid(await list({ state: 'closed' }), 'state');
    expectInvalid(await list({ outcome: 'exploded' }), 'outcome');
    expectInvalid(await list({ from: 'yesterday' }), 'from');
    expectInvalid(await list({ from: at(5).toISOString(), to: at(1).toISOString() }), 'to');
    expectInvalid(await list({ limit: 0 }), 'limit');
    expectInvalid(await list({ cursor: 'nonsense' }), 'cursor');
    expectStatus(await list({}, suite.readOnly), 200);
    const key = await suite.session.admin.createApiKey({ tenantId: suite.a.tenantId, name: 'ops', scopes: ['operations:read'] });
    expectForbidden(await list({}, { tenantId: suite.a.tenantId, apiKey: key.apiKey }), 'egress:read');
  });
});
