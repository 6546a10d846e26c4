import { ControllerSuite, expectError, expectInvalid, expectStatus } from '../support/controller-suite';

describe('TerminalsController: JPAY encryption (`encryption: { enabled }`)', () => {
  const suite = new ControllerSuite();
  const connection = { kind: 'tcp', host: '127.0.0.1', port: 9 };
  const credentials = { adminPassword: '12345678' };
  let storeId: string;

  beforeAll(async () => {
    await suite.start();
    storeId = (await suite.create('/v1/stores', { name: 'S', timeZone: 'UTC' })).id;
  });
  afterAll(() => suite.stop());

  const create = (body: Record<string, unknown>) => suite.call('post', '/v1/terminals', { body: { name: 'POS', storeId, connection, ...body } });

  it('stores and returns the flag on JPAY terminals (off by default; null on protocols without encryption)', async () => {
    const on = await create({ protocol: 'jpay', credentials, encryption: { enabled: true } });
    expectStatus(on, 201);
    expect(on.body).toMatchObject({ protocol: 'jpay', encryption: { enabled: true }, hasCredentials: true });
    expect(JSON.stringify(on.body)).not.toContain(credentials.adminPassword);
    const off = await create({ protocol: 'jpay' });
    expect(off.body.encryption).toEqual({ enabled: false });
    expect((await create({ protocol: 'joinproto' })).body.encryption).toBeNull();

    const patched = await suite.call('patch', `/v1/terminals/${on.body.id}`, { body: { encryption: { enabled: false } } });
    expectStatus(patched, 200);
    expect(patched.body.encryption).toEqual({ enabled: false });
    // Turning it back on finds the stored admin password (sealed), so no credentials need to be sent again.
    const again = await suite.call('patch', `/v1/terminals/${on.body.id}`, { body: { encryption: { enabled: true } } });
    expectStatus(again, 200);
    expect(again.body.encryption).toEqual({ enabled: true });
    const audit = await suite.session.owner.auditLog.findFirstOrThrow({ where: { resourceId: on.body.id, action: 'terminal.create' } });
    expect(audit.details).toMatchObject({ encryption: true, credentials: ['adminPassword'] });
  });

  it('refuses encryption on Joinproto and SSI terminals with 400 naming the field (create) or 422 (update)', async () => {
    for (const protocol of ['joinproto', 'ssi_ecr']) {
      const res = await create({ protocol, encryption: { enabled: true } });
      expectInvalid(res, 'encryption');
      expect(res.body.error.details.issues[0].message).toContain('only JPAY terminals have protocol encryption');
      expectInvalid(await create({ protocol, encryption: { enabled: false } }), 'encryption');
    }
    const joinproto = (await create({ protocol: 'joinproto' })).body.id;
    const patched = await suite.call('patch', `/v1/terminals/${joinproto}`, { body: { encryption: { enabled: true } } });
    expectError(patched, 422, 'UNPROCESSABLE');
    expect(patched.body.error.details).toEqual({ issues: [{ field: 'encryption', message: expect.stringContaining('only JPAY terminals') }] });
    expect((await suite.session.owner.terminal.findUniqueOrThrow({ where: { id: joinproto } })).encryptionEnabled).toBe(false);
  });

  it('refuses encryption without the admin password the secure login needs, and malformed values', async () => {
    expectInvalid(await create({ protocol: 'jpay', encryption: { enabled: true } }), 'encryption');
    expectInvalid(await create({ protocol: 'jpay', credentials: { password: 'x' }, encryption: { enabled: true } }), 'encryption');
    expectInvalid(await create({ protocol: 'jpay', encryption: { enabled: 'yes' } }), 'encryption.enabled');
    expectInvalid(await create({ protocol: 'jpay', encryption: { enabled: true, key: 'abc' } }), 'encryption');
    const bare = (await create({ protocol: 'jpay' })).body.id;
    const res = await suite.call('patch', `/v1/terminals/${bare}`, { body: { encryption: { enabled: true } } });
    expectError(res, 422, 'UNPROCESSABLE');
    expect(res.body.error.message).toContain('needs credentials.adminPassword');
    // With the password in the same request it is accepted.
    const ok = await suite.call('patch', `/v1/terminals/${bare}`, { body: { encryption: { enabled: true }, credentials } });
    expectStatus(ok, 200);
    // Removing the password while encryption is on is refused.
    expectError(await suite.call('patch', `/v1/terminals/${bare}`, { body: { credentials: null } }), 422, 'UNPROCESSABLE');
  });
});
