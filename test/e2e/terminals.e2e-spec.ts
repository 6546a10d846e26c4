import { SecretBox } from '@payorch/domain';
import { openTerminalCredentials } from '@payorch/drivers';
import { openMerchantSecrets, sealMerchantSecrets } from '@payorch/wallet-payments';

import { AdminService } from '../../apps/api-gateway/src/admin/admin.service';
import { GatewaySession, idem, newMasterKey } from './support/gateway-session';

describe('terminals API and secrets at rest', () => {
  const session = new GatewaySession();
  let auth: { Authorization: string };
  let tenantId: string;
  let storeId: string;

  beforeAll(async () => {
    await session.start();
    const t = await session.tenant();
    auth = { Authorization: `Bearer ${t.apiKey}` };
    tenantId = t.tenantId;
    storeId = (await session.http().post('/v1/stores').set(auth).set('Idempotency-Key', idem()).send({ name: 'S', timeZone: 'Europe/Kyiv' })).body.id;
  });
  afterAll(() => session.stop());

  const createTerminal = (body: object) => session.http().post('/v1/terminals').set(auth).set('Idempotency-Key', idem()).send(body);

  it('stores terminal credentials encrypted, never returns them, and decrypts them after a key rotation', async () => {
    const password = 'Adm1n-Pa55-unique-7781';
    const res = await createTerminal({
      name: 'JPAY 1',
      storeId,
      protocol: 'jpay',
      connection: { kind: 'tcp', host: '192.168.1.20', port: 4433 },
      terminalId: '00112233',
      credentials: { adminPassword: password },
    });
    expect(res.status).toBe(201);
    expect(res.body).toMatchObject({ dialect: 'aqsi', hasCredentials: true, status: 'unknown' });
    expect(JSON.stringify(res.body)).not.toContain(password);

    const row = await session.owner.terminal.findUniqueOrThrow({ where: { id: res.body.id } });
    expect(row.credentialsEncrypted).toMatch(/^pe1\.k1\./);
    expect(row.credentialsEncrypted).not.toContain(password);
    const raw = await session.owner.$queryRaw<{ dump: string }[]>`SELECT row_to_json(t)::text AS dump FROM "Terminal" t WHERE id = ${res.body.id}::uuid`;
    expect(raw[0]!.dump).not.toContain(password);
    const audit = await session.owner.auditLog.findFirstOrThrow({ where: { resourceId: res.body.id } });
    expect(JSON.stringify(audit.details)).not.toContain(password);

    // Rotate: k2 becomes active, k1 stays readable until every secret is re-wrapped.
    const k1 = session.config.PAYORCH_MASTER_KEY;
    const k2 = newMasterKey('k2');
    const rotated = SecretBox.fromConfig(k2, [k1]);
    expect(openTerminalCredentials(rotated, tenantId, row.id, row.credentialsEncrypted!)).toEqual({ adminPassword: password });
    const merchantSecrets = { login: 'l', password: 'assist-pass-5521', salt: 'salt-8812', privateKeyPem: null, assistPublicKeyPem: null };
    const merchant = await session.owner.assistMerchant.create({
      data: { id: '00000000-0000-4000-8000-000000000001', tenantId, name: 'm', merchantId: '679471', serverUrl: 'https://example.test', secretsEncrypted: 'x' },
    });
    await session.owner.assistMerchant.update({
      where: { id: merchant.id },
      data: { secretsEncrypted: sealMerchantSecrets(SecretBox.fromConfig(k1), tenantId, merchant.id, merchantSecrets) },
    });
    const result = await new AdminService(session.owner, 'e2e').rewrapSecrets(rotated);
    expect(result.terminalCredentials.rewrapped).toBeGreaterThanOrEqual(1);
    expect(result.assistMerchantSecrets.rewrapped).toBe(1);
    const merchantAfter = await session.owner.assistMerchant.findUniqueOrThrow({ where: { id: merchant.id } });
    expect(openMerchantSecrets(SecretBox.fromConfig(k2), tenantId, merchant.id, merchantAfter.secretsEncrypted)).toEqual(merchantSecrets);
    const after = await session.owner.terminal.findUniqueOrThrow({ where: { id: row.id } });
    expect(after.credentialsEncrypted).toMatch(/^pe1\.k2\./);
    expect(openTerminalCredentials(SecretBox.fromConfig(k2), tenantId, row.id, after.credentialsEncrypted!)).toEqual({
      adminPassword: password,
    });
  });

  it('validates protocol dialects and connection shapes, naming the field', async () => {
    const badDialect = await createTerminal({ name: 't', storeId, protocol: 'jpay', dialect: 'x', connection: { kind: 'tcp', host: 'h', port: 1 } });
    expect(badDialect.status).toBe(400);
    expect(badDialect.body.error.details.issues).toEqual([{ field: 'dialect', message: 'must be one of aqsi, jpay for jpay' }]);
    const badPort = await createTerminal({ name: 't', storeId, protocol: 'ssi_ecr', connection: { kind: 'tcp', host: 'h', port: 70000 } });
    expect(badPort.status).toBe(400);
    expect(badPort.body.error.details.issues[0].field).toBe('connection.port');
    const serial = await createTerminal({ name: 't', storeId, protocol: 'joinproto', connection: { kind: 'serial', path: '/dev/ttyUSB0', baudRate: 115200 } });
    expect(serial.status).toBe(201);
    expect(serial.body.connection).toEqual({ kind: 'serial', path: '/dev/ttyUSB0', baudRate: 115200, dataBits: 8, parity: 'none', stopBits: 1 });
  });

  it('filters terminals by protocol and disables one', async () => {
    const t = await createTerminal({ name: 'ssi', storeId, protocol: 'ssi_ecr', connection: { kind: 'tcp', host: 'h', port: 3000 } });
    const list = await session.http().get('/v1/terminals').query({ protocol: 'ssi_ecr' }).set(auth);
    expect(list.body.data.every((x: { protocol: string }) => x.protocol === 'ssi_ecr')).toBe(true);
    expect(list.body.data.map((x: { id: string }) => x.id)).toContain(t.body.id);
    const disabled = await session.http().patch(`/v1/terminals/${t.body.id}`).set(auth).set('Idempotency-Key', idem()).send({ disabled: true });
    expect(disabled.body.status).toBe('disabled');
  });
});
