import {
  ControllerSuite,
  expectError,
  expectIdsChecked,
  expectInvalid,
  expectNotFound,
  expectStatus,
  expectWritesForbidden,
  UNKNOWN_ID,
} from '../support/controller-suite';

describe('WebhooksController (v1/webhooks)', () => {
  const suite = new ControllerSuite();
  let hook: Record<string, any>;
  let hookOfB: Record<string, any>;
  let failedDelivery: string;
  let deliveryOfB: string;

  /** A delivery row as the worker leaves it after its last failed attempt. */
  async function failed(tenantId: string, endpointId: string): Promise<string> {
    const event = await suite.session.owner.domainEvent.create({
      data: {
        tenantId,
        type: 'terminal.online',
        subjectType: 'terminal',
        subjectId: null,
        data: {},
      },
    });
    const delivery = await suite.session.owner.webhookDelivery.create({
      data: {
        tenantId,
        endpointId,
        eventId: event.id,
        status: 'FAILED',
        attempts: 3,
        lastStatusCode: 500,
        lastError: 'HTTP 500',
      },
    });
    return delivery.id;
  }

  beforeAll(async () => {
    await suite.start();
    hook = await suite.create('/v1/webhooks', {
      url: 'https://hooks.example.com/payorch',
      eventTypes: ['operation.completed'],
    });
    hookOfB = await suite.create('/v1/webhooks', { url: 'https://b.example.com/hook', eventTypes: ['*'] }, suite.b);
    failedDelivery = await failed(suite.a.tenantId, hook.id);
    deliveryOfB = await failed(suite.b.tenantId, hookOfB.id);
  });
  afterAll(() => suite.stop());

  it('answers each route with its status code; the secret only on create and rotate', async () => {
    const created = await suite.call('post', '/v1/webhooks', {
      body: {
        url: 'https://hooks.example.com/other',
        eventTypes: ['terminal.online', 'terminal.offline'],
        description: 'ops',
      },
    });
    expectStatus(created, 201);
    expect(created.body).toMatchObject({
      enabled: true,
      eventTypes: ['terminal.offline', 'terminal.online'],
      description: 'ops',
      secret: expect.stringMatching(/^whsec_/),
    });
    const id = created.body.id as string;
    expectStatus(await suite.call('get', '/v1/webhooks'), 200);
    const got = await suite.call('get', `/v1/webhooks/${id}`);
    expectStatus(got, 200);
    expect(got.body).not.toHaveProperty('secret');
    expectStatus(
      await suite.call('patch', `/v1/webhooks/${id}`, {
        body: { enabled: false, description: null },
      }),
      200,
    );
    const rotated = await suite.call('post', `/v1/webhooks/${id}/rotate-secret`);
    expectStatus(rotated, 200);
    expect(rotated.body.secret).toMatch(/^whsec_/);
    expect(rotated.body.secret).not.toBe(created.body.secret);
    const deliveries = await suite.call('get', `/v1/webhooks/${hook.id}/deliveries`, {
      query: { status: 'failed' },
    });
    expectStatus(deliveries, 200);
    expect(deliveries.body.data.map((d: { id: string }) => d.id)).toEqual([failedDelivery]);
    const redelivered = await suite.call('post', `/v1/webhooks/${hook.id}/deliveries/${failedDelivery}/redeliver`);
    expectStatus(redelivered, 202);
    expect(redelivered.body).toMatchObject({ id: failedDelivery, status: 'pending', attempts: 0 });
    // Still scheduled (no worker runs here): a second redelivery is a conflict, in the envelope.
    expectError(await suite.call('post', `/v1/webhooks/${hook.id}/deliveries/${failedDelivery}/redeliver`), 409, 'CONFLICT');
    expectStatus(await suite.call('delete', `/v1/webhooks/${id}`), 204);
  });

  it('validates bodies, queries and ids with 400 naming the fields', async () => {
    expectInvalid(await suite.call('post', '/v1/webhooks', { body: {} }), 'url', 'eventTypes');
    expectInvalid(await suite.call('post', '/v1/webhooks', { body: { url: 'not a url', eventTypes: ['*'] } }), 'url');
    expectInvalid(
      await suite.call('post', '/v1/webhooks', {
        body: { url: 'https://u:p@example.com/', eventTypes: ['*'] },
      }),
      'url',
    );
    expectInvalid(
      await suite.call('post', '/v1/webhooks', {
        body: { url: 'https://example.com/', eventTypes: [] },
      }),
      'eventTypes',
    );
    expectInvalid(
      await suite.call('post', '/v1/webhooks', {
        body: { url: 'https://example.com/', eventTypes: ['operation.exploded'] },
      }),
      'eventTypes.0',
    );
    expectInvalid(await suite.call('patch', `/v1/webhooks/${hook.id}`, { body: {} }), '(body)');
    expectInvalid(await suite.call('patch', `/v1/webhooks/${hook.id}`, { body: { enabled: 'yes' } }), 'enabled');
    expectInvalid(await suite.call('get', `/v1/webhooks/${hook.id}/deliveries`, { query: { status: 'lost' } }), 'status');
    expectInvalid(await suite.call('get', '/v1/webhooks', { query: { cursor: 'x'.repeat(201) } }), 'cursor');
    expectError(await suite.call('post', `/v1/webhooks/${hook.id}/deliveries/not-a-uuid/redeliver`), 400, 'VALIDATION_FAILED');
  });

  it('refuses a destination the egress policy denies with 400 EGRESS_DENIED naming url (http, private, metadata)', async () => {
    for (const url of ['http://hooks.example.com/plain', 'https://10.1.2.3/hook', 'https://169.254.169.254/latest', 'https://metadata.internal.test/']) {
      const res = await suite.call('post', '/v1/webhooks', { body: { url, eventTypes: ['*'] } });
      expectError(res, 400, 'EGRESS_DENIED');
      expect(res.body.error.details).toMatchObject({ field: 'url' });
    }
  });

  it('answers 404 for an unknown endpoint or delivery and for those of another tenant', async () => {
    await expectIdsChecked(
      suite,
      [
        { method: 'get', path: (id) => `/v1/webhooks/${id}` },
        { method: 'patch', path: (id) => `/v1/webhooks/${id}`, body: { enabled: false } },
        { method: 'delete', path: (id) => `/v1/webhooks/${id}` },
        { method: 'post', path: (id) => `/v1/webhooks/${id}/rotate-secret` },
        { method: 'get', path: (id) => `/v1/webhooks/${id}/deliveries` },
        {
          method: 'post',
          path: (id) => `/v1/webhooks/${id}/deliveries/${failedDelivery}/redeliver`,
        },
      ],
      { otherTenants: hookOfB.id },
    );
    // A's endpoint with an unknown delivery, or with B's delivery: 404 too.
    for (const deliveryId of [UNKNOWN_ID, deliveryOfB]) expectNotFound(await suite.call('post', `/v1/webhooks/${hook.id}/deliveries/${deliveryId}/redeliver`));
    expect(await suite.session.appDb.withTenant(suite.a.tenantId, (tx) => tx.webhookEndpoint.findUnique({ where: { id: hookOfB.id } }))).toBeNull();
    expect(await suite.session.owner.webhookDelivery.findUniqueOrThrow({ where: { id: deliveryOfB } })).toMatchObject({ status: 'FAILED', attempts: 3 });
  });

  it('refuses a read-only key on every mutating route (403)', async () => {
    await expectWritesForbidden(
      suite,
      [
        {
          method: 'post',
          path: '/v1/webhooks',
          body: { url: 'https://example.com/', eventTypes: ['*'] },
        },
        { method: 'patch', path: `/v1/webhooks/${hook.id}`, body: { enabled: false } },
        { method: 'delete', path: `/v1/webhooks/${hook.id}` },
        { method: 'post', path: `/v1/webhooks/${hook.id}/rotate-secret` },
        { method: 'post', path: `/v1/webhooks/${hook.id}/deliveries/${failedDelivery}/redeliver` },
      ],
      'webhooks:write',
    );
    expectStatus(await suite.call('get', `/v1/webhooks/${hook.id}/deliveries`, { as: suite.readOnly }), 200);
    expect(await suite.session.owner.webhookEndpoint.findUniqueOrThrow({ where: { id: hook.id } })).toMatchObject({ enabled: true });
  });
});
