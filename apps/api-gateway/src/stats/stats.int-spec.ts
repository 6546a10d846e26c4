import { randomBytes } from 'node:crypto';

import { createPrismaClient, Database, type PrismaClient } from '@payorch/db';
import type { TenantContext } from '@payorch/domain';
import { createTestDatabase, type TestDatabase } from '@payorch/testing';

import { StatsService } from './stats.service';

describe(StatsService.name, () => {
  let testDb: TestDatabase;
  let owner: PrismaClient;
  let db: Database;
  let sut: StatsService;
  const now = new Date('2026-03-02T12:00:00Z');
  const ctx = (tenantId: string): TenantContext => ({ tenantId, actor: { type: 'api_key', id: 'k' }, requestId: 'r' });
  const at = (minutesAgo: number, ms = 0) => new Date(now.getTime() - minutesAgo * 60_000 + ms);

  async function tenantWithTerminals() {
    const tenantId = (await owner.tenant.create({ data: { name: `Chain ${randomBytes(3).toString('hex')}` } })).id;
    const storeId = (await owner.store.create({ data: { tenantId, name: 'Main', timeZone: 'UTC' } })).id;
    const terminal = (protocol: 'JOINPROTO' | 'JPAY') =>
      owner.terminal.create({ data: { tenantId, storeId, name: protocol, protocol, connection: { kind: 'tcp', host: '127.0.0.1', port: 9 } } });
    return { tenantId, storeId, joinproto: (await terminal('JOINPROTO')).id, jpay: (await terminal('JPAY')).id };
  }

  async function operation(
    t: { tenantId: string; storeId: string },
    terminalId: string,
    state: 'APPROVED' | 'DECLINED' | 'UNKNOWN',
    createdAt: Date,
    tookMs: number,
  ) {
    await owner.terminalOperation.create({
      data: {
        tenantId: t.tenantId,
        storeId: t.storeId,
        terminalId,
        type: 'PURCHASE',
        state,
        amount: 100n,
        currency: 'RUB',
        idempotencyKey: randomBytes(8).toString('hex'),
        requestHash: 'h',
        createdAt,
        completedAt: state === 'UNKNOWN' ? null : new Date(createdAt.getTime() + tookMs),
      },
    });
  }

  beforeAll(async () => {
    testDb = await createTestDatabase();
    owner = createPrismaClient(testDb.adminUrl, { max: 2 });
    db = Database.connect(testDb.appUrl, 2);
    sut = new StatsService(db);
  }, 60_000);

  afterAll(async () => {
    await db?.close();
    await owner?.$disconnect();
    await testDb?.drop();
  });

  it('counts, approval rate, per-minute rate, offline drops and p50/p99 terminal time per protocol, per bucket', async () => {
    const t = await tenantWithTerminals();
    // Bucket 11:00–12:00 (60-minute buckets aligned to the epoch): 3 Joinproto, 1 JPAY, one unknown.
    await operation(t, t.joinproto, 'APPROVED', at(50), 1000);
    await operation(t, t.joinproto, 'APPROVED', at(40), 2000);
    await operation(t, t.joinproto, 'DECLINED', at(30), 3000);
    await operation(t, t.jpay, 'APPROVED', at(20), 500);
    await operation(t, t.jpay, 'UNKNOWN', at(10), 0);
    // Bucket 09:00–10:00: one decline.
    await operation(t, t.joinproto, 'DECLINED', at(170), 4000);
    // Outside the 3 h window.
    await operation(t, t.joinproto, 'APPROVED', at(300), 1000);
    await owner.domainEvent.create({
      data: { tenantId: t.tenantId, type: 'terminal.offline', subjectType: 'terminal', subjectId: t.jpay, data: {}, createdAt: at(15) },
    });

    const stats = await sut.operations(ctx(t.tenantId), { hours: 3, bucketMinutes: 60 }, now);

    expect(stats).toMatchObject({ from: '2026-03-02T09:00:00.000Z', to: '2026-03-02T12:00:00.000Z', bucketMinutes: 60 });
    expect(stats.buckets).toEqual([
      {
        start: '2026-03-02T09:00:00.000Z',
        total: 1,
        approved: 0,
        declined: 1,
        failed: 0,
        unknown: 0,
        approvalRate: 0,
        perMinute: 1 / 60,
        terminalsWentOffline: 0,
      },
      {
        start: '2026-03-02T10:00:00.000Z',
        total: 0,
        approved: 0,
        declined: 0,
        failed: 0,
        unknown: 0,
        approvalRate: null,
        perMinute: 0,
        terminalsWentOffline: 0,
      },
      {
        start: '2026-03-02T11:00:00.000Z',
        total: 5,
        approved: 3,
        declined: 1,
        failed: 0,
        unknown: 1,
        approvalRate: 0.75,
        perMinute: 5 / 60,
        terminalsWentOffline: 1,
      },
      // No slot starts at `to` (12:00): the window ends there.
    ]);
    expect(stats.timings).toEqual([
      { start: '2026-03-02T09:00:00.000Z', protocol: 'joinproto', finished: 1, p50Ms: 4000, p99Ms: 4000 },
      { start: '2026-03-02T11:00:00.000Z', protocol: 'joinproto', finished: 3, p50Ms: 2000, p99Ms: 2980 },
      { start: '2026-03-02T11:00:00.000Z', protocol: 'jpay', finished: 1, p50Ms: 500, p99Ms: 500 },
    ]);
  });

  it("never counts another tenant's operations (row-level security, not a WHERE clause)", async () => {
    const mine = await tenantWithTerminals();
    const other = await tenantWithTerminals();
    await operation(other, other.joinproto, 'APPROVED', at(5), 100);
    const stats = await sut.operations(ctx(mine.tenantId), { hours: 1, bucketMinutes: 60 }, now);
    expect(stats.buckets.reduce((n, b) => n + b.total, 0)).toBe(0);
    expect(stats.timings).toEqual([]);
  });
});
