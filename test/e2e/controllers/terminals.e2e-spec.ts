import { ControllerSuite, expectError, expectIdsChecked, expectInvalid, expectStatus, expectWritesForbidden, UNKNOWN_ID } from '../support/controller-suite';

describe('TerminalsController (v1/terminals)', () => {
  const suite = new ControllerSuite();
  const connection = { kind: 'tcp', host: '127.0.0.1', port: 9 };
  let storeId: string;
  let agentId: string;
  let terminal: Record<string, any>;
  let terminalOfB: Record<string, any>;
  let storeOfB: string;
  let agentOfB: string;

  beforeAll(async () => {
    await suite.start();
    storeId = (await suite.create('/v1/stores', { name: 'S', timeZone: 'UTC' })).id;
    agentId = (await suite.create('/v1/agents', { name: 'till', storeId })).agent.id;
    terminal = await suite.create('/v1/terminals', {
      name: 'POS 1',
      storeId,
      agentId,
      protocol: 'joinproto',
      connection,
    });
    storeOfB = (await suite.create('/v1/stores', { name: 'B', timeZone: 'UTC' }, suite.b)).id;
    agentOfB = (await suite.create('/v1/agents', { name: 'till of B', storeId: storeOfB }, suite.b)).agent.id;
    terminalOfB = await suite.create('/v1/terminals', { name: 'POS of B', storeId: storeOfB, protocol: 'jpay', connection }, suite.b);
  });
  afterAll(() => suite.stop());

  it('answers each route with its status code; credentials are never returned', async () => {
    const created = await suite.call('post', '/v1/terminals', {
      body: {
        name: 'POS 2',
        storeId,
        protocol: 'ssi_ecr',
        dialect: 'linux',
        connection: { kind: 'tcp_listen', port: 7000 },
        credentials: { password: 's3cret' },
      },
    });
    expectStatus(created, 201);
    expect(created.body).toMatchObject({
      name: 'POS 2',
      protocol: 'ssi_ecr',
      dialect: 'linux',
      hasCredentials: true,
      status: 'unknown',
    });
    expect(JSON.stringify(created.body)).not.toContain('s3cret');
    const id = created.body.id as string;
    const list = await suite.call('get', '/v1/terminals', {
      query: { storeId, protocol: 'ssi_ecr' },
    });
    expectStatus(list, 200);
    expect(list.body.data.map((t: { id: string }) => t.id)).toEqual([id]);
    expectStatus(await suite.call('get', `/v1/terminals/${id}`), 200);
    const patched = await suite.call('patch', `/v1/terminals/${id}`, {
      body: { name: 'POS 2b', disabled: true },
    });
    expectStatus(patched, 200);
    expect(patched.body).toMatchObject({ name: 'POS 2b', status: 'disabled' });
    expectStatus(await suite.call('delete', `/v1/terminals/${id}`), 204);
  });

  it('validates bodies, queries and ids with 400 naming the fields', async () => {
    expectInvalid(await suite.call('post', '/v1/terminals', { body: {} }), 'name', 'storeId', 'protocol', 'connection');
    expectInvalid(
      await suite.call('post', '/v1/terminals', {
        body: { name: 'x', storeId, protocol: 'VISA', connection },
      }),
      'protocol',
    );
    expectInvalid(
      await suite.call('post', '/v1/terminals', {
        body: { name: 'x', storeId, protocol: 'jpay', dialect: 'android', connection },
      }),
      'dialect',
    );
    expectInvalid(
      await suite.call('post', '/v1/terminals', {
        body: {
          name: 'x',
          storeId,
          protocol: 'joinproto',
          connection: { kind: 'tcp', host: '127.0.0.1', port: 0 },
        },
      }),
      'connection.port',
    );
    expectInvalid(
      await suite.call('post', '/v1/terminals', {
        body: { name: 'x', storeId, protocol: 'joinproto', connection: { kind: 'carrier-pigeon' } },
      }),
      'connection.kind',
    );
    expectInvalid(
      await suite.call('post', '/v1/terminals', {
        body: { name: 'x', storeId, protocol: 'joinproto', connection, credentials: {} },
      }),
      'credentials',
    );
    expectInvalid(await suite.call('patch', `/v1/terminals/${terminal.id}`, { body: {} }), '(body)');
    expectInvalid(await suite.call('patch', `/v1/terminals/${terminal.id}`, { body: { status: 'online' } }), '(body)');
    expectInvalid(await suite.call('get', '/v1/terminals', { query: { status: 'BROKEN' } }), 'status');
    expectInvalid(await suite.call('get', '/v1/terminals', { query: { agentId: 'x' } }), 'agentId');
  });

  it('refuses a store or agent that is unknown or of another tenant with 422 naming the field', async () => {
    const cases: [Record<string, string>, string][] = [
      [{ storeId: UNKNOWN_ID }, 'storeId'],
      [{ storeId: storeOfB }, 'storeId'],
      [{ agentId: agentOfB }, 'agentId'],
      [{ agentId: UNKNOWN_ID }, 'agentId'],
    ];
    for (const [body, field] of cases) {
      const res = await suite.call('post', '/v1/terminals', {
        body: { name: 'x', storeId, protocol: 'joinproto', connection, ...body },
      });
      expectError(res, 422, 'UNPROCESSABLE');
      expect(res.body.error.details.issues).toEqual([{ field, message: expect.any(String) }]);
    }
    expectError(await suite.call('patch', `/v1/terminals/${terminal.id}`, { body: { agentId: agentOfB } }), 422, 'UNPROCESSABLE');
  });

  it('answers 404 for an unknown terminal and for a terminal of another tenant', async () => {
    await expectIdsChecked(
      suite,
      [
        { method: 'get', path: (id) => `/v1/terminals/${id}` },
        { method: 'patch', path: (id) => `/v1/terminals/${id}`, body: { name: 'Taken over' } },
        { method: 'delete', path: (id) => `/v1/terminals/${id}` },
      ],
      { otherTenants: terminalOfB.id },
    );
    expect(await suite.session.appDb.withTenant(suite.a.tenantId, (tx) => tx.terminal.findUnique({ where: { id: terminalOfB.id } }))).toBeNull();
    expect(await suite.session.owner.terminal.findUniqueOrThrow({ where: { id: terminalOfB.id } })).toMatchObject({ name: 'POS of B' });
  });

  it('refuses a read-only key on every mutating route (403)', async () => {
    await expectWritesForbidden(
      suite,
      [
        {
          method: 'post',
          path: '/v1/terminals',
          body: { name: 'x', storeId, protocol: 'joinproto', connection },
        },
        { method: 'patch', path: `/v1/terminals/${terminal.id}`, body: { name: 'x' } },
        { method: 'delete', path: `/v1/terminals/${terminal.id}` },
      ],
      'terminals:write',
    );
    expectStatus(await suite.call('get', `/v1/terminals/${terminal.id}`, { as: suite.readOnly }), 200);
    expect(await suite.session.owner.terminal.findUniqueOrThrow({ where: { id: terminal.id } })).toMatchObject({ name: 'POS 1' });
  });
});
