import { GatewaySession, idem } from '../e2e/support/gateway-session';

/**
 * A tenant cannot multiply the platform's webhook work by creating endpoints: every event becomes one delivery per
 * subscribed endpoint (a row, a BullMQ job, an HTTP request and its retries), so a tenant has at most
 * WEBHOOK_ENDPOINTS_MAX_PER_TENANT endpoints (docs/webhooks.md). Before, there was no bound: 10,000 `*` endpoints
 * made each of the tenant's events 10,000 deliveries.
 */
describe('webhooks: endpoints per tenant are bounded', () => {
  const session = new GatewaySession();
  let authA: Record<string, string>;
  let authB: Record<string, string>;

  beforeAll(async () => {
    await session.start({ WEBHOOK_ENDPOINTS_MAX_PER_TENANT: '3' });
    authA = { Authorization: `Bearer ${(await session.tenant()).apiKey}` };
    authB = { Authorization: `Bearer ${(await session.tenant()).apiKey}` };
  });
  afterAll(() => session.stop());

  const create = (auth: Record<string, string>, n: number) =>
    session
      .http()
      .post('/v1/webhooks')
      .set(auth)
      .set('Idempotency-Key', idem())
      .send({ url: `https://hooks.example.com/payorch/${n}`, eventTypes: ['*'] });

  it('refuses the endpoint past the limit with 409 CONFLICT (webhook_endpoint_limit), also when the creations race', async () => {
    const answers = await Promise.all([1, 2, 3, 4, 5].map((n) => create(authA, n)));
    expect(answers.map((r) => r.status).sort()).toEqual([201, 201, 201, 409, 409]);
    for (const refused of answers.filter((r) => r.status === 409)) {
      expect(refused.body.error).toMatchObject({ code: 'CONFLICT', details: { reason: 'webhook_endpoint_limit', limit: 3 } });
    }
    const listed = await session.http().get('/v1/webhooks').set(authA);
    expect(listed.body.data).toHaveLength(3);

    // Another tenant's endpoints are not counted; a deleted endpoint frees its place.
    expect((await create(authB, 1)).status).toBe(201);
    const first = listed.body.data[0].id as string;
    expect((await session.http().delete(`/v1/webhooks/${first}`).set(authA).set('Idempotency-Key', idem())).status).toBe(204);
    expect((await create(authA, 6)).status).toBe(201);
    expect((await create(authA, 7)).status).toBe(409);
  });
});
