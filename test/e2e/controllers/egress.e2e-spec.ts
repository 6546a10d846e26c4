import { ControllerSuite, expectError, expectIdsChecked, expectInvalid, expectStatus, expectWritesForbidden } from '../support/controller-suite';

describe('EgressController (v1/egress-rules)', () => {
  const suite = new ControllerSuite();
  let rule: Record<string, any>;
  let ruleOfB: Record<string, any>;

  beforeAll(async () => {
    await suite.start();
    rule = await suite.create('/v1/egress-rules', {
      host: 'acquirer.example.com',
      port: 443,
      description: 'acquirer',
    });
    ruleOfB = await suite.create('/v1/egress-rules', { cidr: '1.1.1.0/24', port: 8443 }, suite.b);
  });
  afterAll(() => suite.stop());

  it('answers each route with its status code', async () => {
    const created = await suite.call('post', '/v1/egress-rules', {
      body: { cidr: '93.184.216.34/24', port: 7000 },
    });
    expectStatus(created, 201);
    // The CIDR is stored as its network.
    expect(created.body).toMatchObject({
      cidr: '93.184.216.0/24',
      host: null,
      port: 7000,
      description: null,
    });
    expectStatus(await suite.call('get', '/v1/egress-rules'), 200);
    expectStatus(await suite.call('get', `/v1/egress-rules/${created.body.id}`), 200);
    const patched = await suite.call('patch', `/v1/egress-rules/${created.body.id}`, {
      body: { cidr: null, host: '*.example.net', port: 7001 },
    });
    expectStatus(patched, 200);
    expect(patched.body).toMatchObject({ cidr: null, host: '*.example.net', port: 7001 });
    expectStatus(await suite.call('delete', `/v1/egress-rules/${created.body.id}`), 204);
  });

  it('validates bodies, queries and ids with 400 naming the fields', async () => {
    expectInvalid(await suite.call('post', '/v1/egress-rules', { body: {} }), 'port');
    expectInvalid(await suite.call('post', '/v1/egress-rules', { body: { port: 443 } }), 'host');
    expectInvalid(
      await suite.call('post', '/v1/egress-rules', {
        body: { host: 'a.example.com', cidr: '1.1.1.0/24', port: 443 },
      }),
      'host',
    );
    expectInvalid(await suite.call('post', '/v1/egress-rules', { body: { host: 'not a host!', port: 443 } }), 'host');
    expectInvalid(await suite.call('post', '/v1/egress-rules', { body: { cidr: '300.1.2.3/8', port: 443 } }), 'cidr');
    expectInvalid(
      await suite.call('post', '/v1/egress-rules', {
        body: { host: 'a.example.com', port: 70_000 },
      }),
      'port',
    );
    expectInvalid(
      await suite.call('post', '/v1/egress-rules', {
        body: { host: 'a.example.com', port: '443' },
      }),
      'port',
    );
    expectInvalid(await suite.call('patch', `/v1/egress-rules/${rule.id}`, { body: {} }), '(body)');
    // A change that leaves neither host nor cidr is checked against the stored rule: still a 400 naming host.
    expectInvalid(await suite.call('patch', `/v1/egress-rules/${rule.id}`, { body: { host: null } }), 'host');
    expectInvalid(await suite.call('get', '/v1/egress-rules', { query: { limit: -1 } }), 'limit');
  });

  it('refuses a rule wider than the platform egress policy with 400 EGRESS_DENIED naming the field', async () => {
    for (const [body, field] of [
      [{ cidr: '0.0.0.0/0', port: 443 }, 'cidr'],
      [{ cidr: '10.0.0.0/8', port: 443 }, 'cidr'],
      [{ host: '169.254.169.254', port: 80 }, 'host'],
    ] as const) {
      const res = await suite.call('post', '/v1/egress-rules', { body });
      expectError(res, 400, 'EGRESS_DENIED');
      expect(res.body.error.details).toMatchObject({ field });
    }
  });

  it('answers 404 for an unknown rule and for a rule of another tenant', async () => {
    await expectIdsChecked(
      suite,
      [
        { method: 'get', path: (id) => `/v1/egress-rules/${id}` },
        { method: 'patch', path: (id) => `/v1/egress-rules/${id}`, body: { port: 1 } },
        { method: 'delete', path: (id) => `/v1/egress-rules/${id}` },
      ],
      { otherTenants: ruleOfB.id },
    );
    expect(await suite.session.appDb.withTenant(suite.a.tenantId, (tx) => tx.egressRule.findUnique({ where: { id: ruleOfB.id } }))).toBeNull();
    expect(await suite.session.owner.egressRule.findUniqueOrThrow({ where: { id: ruleOfB.id } })).toMatchObject({ port: 8443 });
  });

  it('refuses a read-only key on every mutating route (403)', async () => {
    await expectWritesForbidden(
      suite,
      [
        { method: 'post', path: '/v1/egress-rules', body: { host: 'x.example.com', port: 1 } },
        { method: 'patch', path: `/v1/egress-rules/${rule.id}`, body: { port: 1 } },
        { method: 'delete', path: `/v1/egress-rules/${rule.id}` },
      ],
      'egress:write',
    );
    expectStatus(await suite.call('get', `/v1/egress-rules/${rule.id}`, { as: suite.readOnly }), 200);
    expect(await suite.session.owner.egressRule.findUniqueOrThrow({ where: { id: rule.id } })).toMatchObject({ port: 443 });
  });
});
