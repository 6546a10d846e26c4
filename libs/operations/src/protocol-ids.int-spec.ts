import { createPrismaClient, Database, type PrismaClient } from '@payorch/db';
import { createTestDatabase, type TestDatabase } from '@payorch/testing';

import { terminalCommandIds } from './protocol-ids';

/** One id reserved alone (a source of blocks of one), as a driver's first command does. */
const nextTerminalCommandId = (db: Database, tenantId: string, terminalId: string) => terminalCommandIds(db, tenantId, terminalId, 1)();

describe(terminalCommandIds.name, () => {
  let testDb: TestDatabase;
  let owner: PrismaClient;
  let db: Database;
  let tenantId: string;
  let terminalId: string;

  beforeAll(async () => {
    testDb = await createTestDatabase();
    owner = createPrismaClient(testDb.adminUrl, { max: 2 });
    db = Database.connect(testDb.appUrl, 4);
    tenantId = (await owner.tenant.create({ data: { name: 'T' } })).id;
    const store = await owner.store.create({ data: { tenantId, name: 'S', timeZone: 'UTC' } });
    terminalId = (
      await owner.terminal.create({ data: { tenantId, storeId: store.id, name: 't', protocol: 'JOINPROTO', connection: { kind: 'tcp', host: 'h', port: 1 } } })
    ).id;
  });

  afterAll(async () => {
    await db.close();
    await owner.$disconnect();
    await testDb.drop();
  });

  it('hands out distinct six-digit ids even under concurrency', async () => {
    const ids = await Promise.all(Array.from({ length: 20 }, () => nextTerminalCommandId(db, tenantId, terminalId)));
    expect(new Set(ids).size).toBe(20);
    expect(ids.every((id) => /^\d{6}$/.test(id))).toBe(true);
    expect([...ids].sort()).toEqual(Array.from({ length: 20 }, (_, i) => String(i + 1).padStart(6, '0')));
  });

  it('wraps from 999999 to 000001, never 000000', async () => {
    await owner.terminal.update({ where: { id: terminalId }, data: { protocolSequence: 999_998 } });
    expect(await nextTerminalCommandId(db, tenantId, terminalId)).toBe('999999');
    expect(await nextTerminalCommandId(db, tenantId, terminalId)).toBe('000001');
  });

  it('allocates on the bare-driver path in one pipelined transaction, not a Prisma interactive one (issue 19)', async () => {
    const prisma = jest.spyOn(db, 'withTenant');
    const bare = jest.spyOn(db, 'withTenantSql');
    try {
      expect(await nextTerminalCommandId(db, tenantId, terminalId)).toMatch(/^\d{6}$/);
      expect(prisma).not.toHaveBeenCalled();
      expect(bare).toHaveBeenCalledTimes(1);
      expect(bare.mock.calls[0]![2]).toEqual({ pipelineCommit: true });
    } finally {
      prisma.mockRestore();
      bare.mockRestore();
    }
  });

  it('reserves ids a block at a time per driver: one transaction per block, ids in order, concurrent calls sharing a reservation (issue 19)', async () => {
    await owner.terminal.update({ where: { id: terminalId }, data: { protocolSequence: 100 } });
    const bare = jest.spyOn(db, 'withTenantSql');
    try {
      const next = terminalCommandIds(db, tenantId, terminalId, 50);
      const first = await Promise.all(Array.from({ length: 30 }, () => next()));
      const rest: string[] = [];
      for (let i = 0; i < 90; i++) rest.push(await next());
      expect([...first, ...rest]).toEqual(Array.from({ length: 120 }, (_, i) => String(101 + i).padStart(6, '0')));
      // 120 ids: three blocks of 50 (one command per transaction before).
      expect(bare).toHaveBeenCalledTimes(3);
    } finally {
      bare.mockRestore();
    }
  });

  it('never hands out an id twice across drivers and connector instances of one terminal, nor across the wrap', async () => {
    await owner.terminal.update({ where: { id: terminalId }, data: { protocolSequence: 999_900 } });
    const here = terminalCommandIds(db, tenantId, terminalId, 40);
    const there = terminalCommandIds(db, tenantId, terminalId, 40);
    const ids: string[] = [];
    for (let i = 0; i < 100; i++) ids.push(await (i % 3 === 0 ? there() : here()));
    expect(new Set(ids).size).toBe(100);
    expect(ids.every((id) => /^\d{6}$/.test(id) && id !== '000000')).toBe(true);
    // A block that would pass 999999 starts again at 000001.
    expect(ids).toContain('000001');
    expect(ids.some((id) => Number(id) > 999_900)).toBe(true);
  });

  it('never hands out an id twice when drivers of two connector instances reserve at the same time, across the wrap', async () => {
    await owner.terminal.update({ where: { id: terminalId }, data: { protocolSequence: 999_000 } });
    // A second instance: its own pool, so its reservations run in transactions concurrent with this one's.
    const other = Database.connect(testDb.appUrl, 4);
    try {
      const drivers = Array.from({ length: 16 }, (_, i) => terminalCommandIds(i % 2 === 0 ? db : other, tenantId, terminalId, 50));
      const taken = await Promise.all(
        drivers.map(async (next) => {
          const ids: string[] = [];
          for (let i = 0; i < 120; i++) ids.push(await next());
          return ids;
        }),
      );
      const ids = taken.flat();
      expect(new Set(ids).size).toBe(16 * 120);
      expect(ids.every((id) => /^\d{6}$/.test(id) && id !== '000000')).toBe(true);
      expect(ids).toContain('000001');
    } finally {
      await other.close();
    }
  });

  it("refuses another tenant's terminal", async () => {
    const other = (await owner.tenant.create({ data: { name: 'U' } })).id;
    await expect(nextTerminalCommandId(db, other, terminalId)).rejects.toThrow(/not found/);
    await expect(terminalCommandIds(db, other, terminalId)()).rejects.toThrow(/not found/);
  });
});
