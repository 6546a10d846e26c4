import { randomBytes } from 'node:crypto';

import { createPrismaClient, Database, type PrismaClient } from '@payorch/db';
import { ApiError, SecretBox, type TenantContext } from '@payorch/domain';
import { createTestDatabase, type TestDatabase } from '@payorch/testing';

import { statusOf } from '../common/error.filter';
import { TerminalsService } from './terminals.service';

/** Deleting a terminal keeps its records: what references it refuses the delete (real Postgres, the foreign keys). */
describe(`${TerminalsService.name}.remove`, () => {
  let testDb: TestDatabase;
  let owner: PrismaClient;
  let db: Database;
  let sut: TerminalsService;
  let ctx: TenantContext;
  let storeId: string;

  const newTerminal = async (name: string) =>
    (
      await owner.terminal.create({
        data: { tenantId: ctx.tenantId, storeId, name, protocol: 'JOINPROTO', connection: { kind: 'tcp', host: '127.0.0.1', port: 9 } },
      })
    ).id;

  beforeAll(async () => {
    testDb = await createTestDatabase();
    owner = createPrismaClient(testDb.adminUrl, { max: 2 });
    db = Database.connect(testDb.appUrl, 2);
    sut = new TerminalsService(db, new SecretBox({ id: 'k1', key: randomBytes(32) }));
    const tenantId = (await owner.tenant.create({ data: { name: 'Tenant' } })).id;
    storeId = (await owner.store.create({ data: { tenantId, name: 'S', timeZone: 'UTC' } })).id;
    ctx = { tenantId, actor: { type: 'api_key', id: 'k' }, requestId: 'r' };
  }, 60_000);

  afterAll(async () => {
    await db?.close();
    await owner?.$disconnect();
    await testDb?.drop();
  });

  it('refuses (409 RESOURCE_IN_USE) to delete a terminal whose relay sessions are on record, and keeps them', async () => {
    // Before: the RelaySession foreign key cascaded, so deleting a terminal that had relayed
    // (and had no operation, which would have refused the delete) took its relay audit with it.
    const terminalId = await newTerminal('relayed, no operations');
    await owner.relaySession.createMany({
      data: [
        { tenantId: ctx.tenantId, terminalId, host: 'acquirer.example', port: 443, outcome: 'closed', endedAt: new Date() },
        { tenantId: ctx.tenantId, terminalId, host: 'acquirer.example', port: 443, outcome: 'denied', reason: 'no rule allows it', endedAt: new Date() },
      ],
    });

    const refused = await sut.remove(ctx, terminalId).catch((error: unknown) => error);
    expect(refused).toBeInstanceOf(ApiError);
    expect(refused).toMatchObject({ code: 'RESOURCE_IN_USE' });
    expect(statusOf((refused as ApiError).code)).toBe(409);

    expect(await owner.relaySession.count({ where: { terminalId } })).toBe(2);
    expect(await owner.terminal.count({ where: { id: terminalId } })).toBe(1);
    expect(await owner.auditLog.count({ where: { resourceId: terminalId, action: 'terminal.delete' } })).toBe(0);
  });

  it('deletes a terminal nothing references', async () => {
    const terminalId = await newTerminal('never used');
    await sut.remove(ctx, terminalId);
    expect(await owner.terminal.count({ where: { id: terminalId } })).toBe(0);
    expect(await owner.auditLog.count({ where: { resourceId: terminalId, action: 'terminal.delete' } })).toBe(1);
  });
});
