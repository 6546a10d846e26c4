import { insertOperation } from '@payorch/operations';

import { GatewaySession, idem } from './support/gateway-session';

/**
 * A terminal's lifecycle (disable, credentials, delete) while one of its operations is in doubt (docs/operations.md,
 * "Disabled terminals and revoked agents take no new work"): the operation stays findable and a person can still decide
 * it; deleting the terminal never takes the operation or its timeline with it; credentials never reach the audit log
 * or the events.
 */
describe('terminal lifecycle with an operation in doubt', () => {
  const session = new GatewaySession();
  let tenantId: string;
  let auth: { Authorization: string };
  let storeId: string;

  beforeAll(async () => {
    await session.start();
    const t = await session.tenant();
    tenantId = t.tenantId;
    auth = { Authorization: `Bearer ${t.apiKey}` };
    storeId = (await session.http().post('/v1/stores').set(auth).set('Idempotency-Key', idem()).send({ name: 'S', timeZone: 'UTC' })).body.id;
  });

  afterAll(() => session.stop());

  const send = (method: 'post' | 'patch' | 'delete', path: string, body?: object) =>
    session.http()[method](path).set(auth).set('Idempotency-Key', idem()).send(body);

  async function jpayTerminal(): Promise<string> {
    const res = await send('post', '/v1/terminals', {
      name: 'T',
      storeId,
      protocol: 'jpay',
      connection: { kind: 'tcp', host: '127.0.0.1', port: 1 },
      credentials: { adminPassword: 'first-secret-9137' },
    });
    expect(res.status).toBe(201);
    return res.body.id as string;
  }

  async function unknownPurchase(terminalId: string): Promise<string> {
    const { row } = await session.appDb.withTenant(tenantId, (tx) =>
      insertOperation(tx, { tenantId, terminalId, storeId, type: 'purchase', amount: 700, currency: 'RUB', idempotencyKey: idem(), requestHash: 'x' }),
    );
    await session.owner.$executeRaw`UPDATE "TerminalOperation" SET "state" = 'UNKNOWN', "protocolRefs" = '{"request":"r"}'::jsonb WHERE "id" = ${row.id}::uuid`;
    return row.id;
  }

  it('keeps the operation of a disabled terminal resolvable, refuses to delete the terminal, and never records its credentials', async () => {
    const terminalId = await jpayTerminal();
    const operationId = await unknownPurchase(terminalId);

    const disabled = await send('patch', `/v1/terminals/${terminalId}`, { disabled: true, credentials: { adminPassword: 'second-secret-5521' } });
    expect(disabled.status).toBe(200);
    expect(disabled.body).toMatchObject({ status: 'disabled', hasCredentials: true });
    expect(JSON.stringify(disabled.body)).not.toContain('secret');

    // Deleting it would take the operation (and its timeline) along: refused.
    const deleted = await send('delete', `/v1/terminals/${terminalId}`);
    expect(deleted.status).toBe(409);
    expect(deleted.body.error.code).toBe('RESOURCE_IN_USE');
    expect((await session.http().get(`/v1/terminals/${terminalId}`).set(auth)).status).toBe(200);

    // Still listed as unknown, and a person decides it although the terminal is disabled.
    const listed = await session.http().get(`/v1/operations?state=unknown&terminalId=${terminalId}`).set(auth);
    expect(listed.body.data.map((o: { id: string }) => o.id)).toEqual([operationId]);
    const resolved = await send('post', `/v1/operations/${operationId}/resolve`, { state: 'declined', note: 'bank shows no such payment' });
    expect(resolved.status).toBe(200);
    expect(resolved.body.state).toBe('declined');

    // The password is sealed in the row only: not in the audit log, the events or the operation's timeline.
    const audit = await session.owner.auditLog.findMany({ where: { tenantId, resourceId: terminalId } });
    const events = await session.owner.domainEvent.findMany({ where: { tenantId } });
    const steps = await session.owner.operationEvent.findMany({ where: { tenantId, operationId } });
    const recorded = JSON.stringify([audit, events, steps], (_key, value: unknown) => (typeof value === 'bigint' ? value.toString() : value));
    expect(audit.map((a) => a.action)).toEqual(expect.arrayContaining(['terminal.create', 'terminal.update']));
    expect(recorded).not.toContain('first-secret');
    expect(recorded).not.toContain('second-secret');
    const row = await session.owner.terminal.findUniqueOrThrow({ where: { id: terminalId } });
    expect(row.credentialsEncrypted).not.toContain('secret');
  });
});
