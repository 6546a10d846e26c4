import type { INestApplication } from '@nestjs/common';
import request from 'supertest';

import { createGatewayApp } from '../../apps/api-gateway/src/bootstrap';
import { Database } from '@payorch/db';
import { createLogger } from '@payorch/logging';

import { GatewaySession, idem, testResolver } from './support/gateway-session';

/**
 * Issue 19: every authenticated request looked its API key up in PostgreSQL (one statement and one round trip per
 * request, 8 % of PostgreSQL's time per operation). A gateway now keeps a found key's row for API_KEY_CACHE_MS; a
 * revocation or a tenant's status change reaches every gateway at once (apiKeysChangedChannel), so "revoked: it stops
 * working at once" holds across gateways.
 */
describe('API-key lookups across gateways', () => {
  const session = new GatewaySession();
  let other: INestApplication;
  let lookups: jest.SpyInstance;

  beforeAll(async () => {
    await session.start();
    // A second gateway of the same deployment (same database, same Redis prefix).
    other = await createGatewayApp(session.config, { logger: createLogger({ name: 'test', level: 'silent' }), resolver: testResolver });
    await other.listen(0, '127.0.0.1');
    lookups = jest.spyOn(Database.prototype, 'findApiKeyByPrefix');
  });
  afterAll(async () => {
    lookups.mockRestore();
    await other.close();
    await session.stop();
  });

  const stores = (app: INestApplication, apiKey: string) => request(app.getHttpServer()).get('/v1/stores').set('Authorization', `Bearer ${apiKey}`);

  it('looks a key up once per gateway, not once per request', async () => {
    const { apiKey } = await session.tenant();
    lookups.mockClear();
    for (let i = 0; i < 3; i += 1) {
      expect((await stores(session.app, apiKey)).status).toBe(200);
      expect((await stores(other, apiKey)).status).toBe(200);
    }
    expect(lookups).toHaveBeenCalledTimes(2);
  });

  it('a key revoked through one gateway is refused by the other at once', async () => {
    const { apiKey: adminKey } = await session.tenant();
    const created = await request(session.app.getHttpServer())
      .post('/v1/api-keys')
      .set('Authorization', `Bearer ${adminKey}`)
      .set('Idempotency-Key', idem())
      .send({ name: 'till', scopes: ['read'] });
    expect(created.status).toBe(201);
    const readKey = created.body.apiKey as string;
    // Both gateways have it now.
    expect((await stores(other, readKey)).status).toBe(200);
    expect((await stores(session.app, readKey)).status).toBe(200);

    const revoked = await request(session.app.getHttpServer())
      .post(`/v1/api-keys/${created.body.id as string}/revoke`)
      .set('Authorization', `Bearer ${adminKey}`)
      .set('Idempotency-Key', idem());
    expect(revoked.status).toBe(200);
    expect((await stores(session.app, readKey)).status).toBe(401);
    expect((await stores(other, readKey)).status).toBe(401);
    // The tenant's other key keeps working.
    expect((await stores(other, adminKey)).status).toBe(200);
  });

  it("a tenant disabled by the operator's CLI is refused by every gateway at once, and accepted again once enabled", async () => {
    const { tenantId, apiKey } = await session.tenant();
    expect((await stores(session.app, apiKey)).status).toBe(200);
    expect((await stores(other, apiKey)).status).toBe(200);
    await session.admin.setTenantStatus(tenantId, 'DISABLED');
    expect((await stores(session.app, apiKey)).status).toBe(401);
    expect((await stores(other, apiKey)).status).toBe(401);
    await session.admin.setTenantStatus(tenantId, 'ACTIVE');
    expect((await stores(session.app, apiKey)).status).toBe(200);
    expect((await stores(other, apiKey)).status).toBe(200);
  });
});
