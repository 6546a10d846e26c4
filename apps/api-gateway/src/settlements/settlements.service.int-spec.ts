import { createPrismaClient, Database, type PrismaClient } from '@payorch/db';
import { ApiError, type JobData, type TenantContext } from '@payorch/domain';
import { type BatchReport, manualJobId, parseJpaySettlement, reconcile, type RecordedOperation } from '@payorch/settlement';
import { createTestDatabase, type TestDatabase } from '@payorch/testing';
import { SimLedger } from '@payorch/testing/jpay-sim';

import { statusOf } from '../common/error.filter';
import { exportSettlementsQuery } from './dto/settlement.dto';
import type { SettlementQueue } from './settlement-queue';
import { CSV_COLUMNS, SettlementsService } from './settlements.service';

/** The gateway's side of settlements against real PostgreSQL; the queue is a recorder (what would be enqueued). */
describe(SettlementsService.name, () => {
  let testDb: TestDatabase;
  let owner: PrismaClient;
  let db: Database;
  let sut: SettlementsService;
  let ctx: TenantContext;
  let storeId: string;
  const queued: { data: JobData['settlement.run']; jobId: string }[] = [];
  const queue = {
    run: async (data: JobData['settlement.run'], jobId: string) => {
      queued.push({ data, jobId });
    },
  } as unknown as SettlementQueue;

  const newTerminal = async (name: string, protocol: 'JOINPROTO' | 'JPAY' = 'JOINPROTO') =>
    (await owner.terminal.create({ data: { tenantId: ctx.tenantId, storeId, name, protocol, connection: { kind: 'tcp', host: '127.0.0.1', port: 9 } } })).id;

  beforeAll(async () => {
    testDb = await createTestDatabase();
    owner = createPrismaClient(testDb.adminUrl, { max: 2 });
    db = Database.connect(testDb.appUrl, 2);
    sut = new SettlementsService(db, queue);
    const tenantId = (await owner.tenant.create({ data: { name: 'Tenant' } })).id;
    storeId = (await owner.store.create({ data: { tenantId, name: 'S', timeZone: 'Europe/Moscow' } })).id;
    ctx = { tenantId, actor: { type: 'api_key', id: 'k' }, requestId: 'r' };
  }, 60_000);

  afterAll(async () => {
    await db?.close();
    await owner?.$disconnect();
    await testDb?.drop();
  });

  beforeEach(() => {
    queued.length = 0;
  });

  describe('run: an Idempotency-Key names one settlement, of one terminal and day', () => {
    /** The refusal of `promise`: the error and the HTTP status it answers. */
    const refusal = async (promise: Promise<unknown>) => {
      const error = await promise.then(
        () => null,
        (e: unknown) => e,
      );
      expect(error).toBeInstanceOf(ApiError);
      return { code: (error as ApiError).code, status: statusOf((error as ApiError).code), details: (error as ApiError).details };
    };

    it("a key of terminal A's settlement reused for terminal B (its replay record gone) is 409 IDEMPOTENCY_KEY_REUSED: nothing queued, A's settlement unchanged", async () => {
      // Until 2026-12-07 it answered A's settlement and, A's being PENDING (the request that created it failed after
      // its insert committed, releasing the replay record), queued its run under B: the worker closed B's day into it.
      const a = await newTerminal('A');
      const b = await newTerminal('B');
      const key = `reused-${Date.now()}`;
      const created = await sut.run(ctx, a, key, { businessDate: '2026-04-01' });
      expect(created).toMatchObject({ terminalId: a, status: 'pending', businessDate: '2026-04-01', runKey: `manual:${key}` });
      expect(queued).toEqual([{ data: expect.objectContaining({ terminalId: a, runKey: `manual:${key}` }), jobId: manualJobId(a, `manual:${key}`) }]);
      queued.length = 0;
      const before = await owner.settlement.findUniqueOrThrow({ where: { id: created.id } });

      for (const dto of [{ businessDate: '2026-04-01' }, {}]) {
        expect(await refusal(sut.run(ctx, b, key, dto))).toEqual({ code: 'IDEMPOTENCY_KEY_REUSED', status: 409, details: { settlementId: created.id } });
      }
      expect(queued).toEqual([]);
      expect(await owner.settlement.findUniqueOrThrow({ where: { id: created.id } })).toEqual(before);
      expect(await owner.settlement.count({ where: { terminalId: b } })).toBe(0);
    });

    it('the same key for the same terminal and another named business date is 409 too; the same request (or no date) is the same settlement', async () => {
      const a = await newTerminal('A2');
      const key = `dated-${Date.now()}`;
      const created = await sut.run(ctx, a, key, { businessDate: '2026-04-03' });
      queued.length = 0;
      expect(await refusal(sut.run(ctx, a, key, { businessDate: '2026-04-04' }))).toEqual({
        code: 'IDEMPOTENCY_KEY_REUSED',
        status: 409,
        details: { settlementId: created.id },
      });
      expect(queued).toEqual([]);
      for (const dto of [{ businessDate: '2026-04-03' }, {}]) expect((await sut.run(ctx, a, key, dto)).id).toBe(created.id);
      // Still PENDING: queued again under its own job id (BullMQ ignores the add while that job exists).
      expect(queued.map((q) => [q.data.terminalId, q.data.businessDate, q.jobId])).toEqual([
        [a, '2026-04-03', manualJobId(a, `manual:${key}`)],
        [a, '2026-04-03', manualJobId(a, `manual:${key}`)],
      ]);
    });
  });

  describe('exportCsv: the counts cover the buckets the nets compare', () => {
    it('a reconciled JPAY day with a card purchase and an SBP payment exports our_count = terminal_count (SBP in neither, as in the nets)', async () => {
      // Until 2026-12-07 our_count counted the SBP payment (a bucket the terminal never reports, outside both nets): 2 vs 1.
      const terminalId = await newTerminal('JPAY', 'JPAY');
      const ledger = new SimLedger(() => new Date('2026-04-05T20:00:00Z'));
      const card = ledger.record({ type: 'purchase', status: 'approved', amount: 5000, currency: '643', iface: 'card' });
      const sbp = ledger.record({ type: 'purchase', status: 'approved', amount: 700, currency: '643', iface: 'sbp' });
      const terminal = parseJpaySettlement({ xreport: ledger.xreport('full'), sreport: ledger.settle(true) });
      const ours: RecordedOperation[] = [
        { id: 'p1', type: 'PURCHASE', amount: 5000, rrn: card.rrn },
        { id: 's1', type: 'SBP_PAYMENT', amount: 700, rrn: sbp.rrn },
      ];
      const result = reconcile('JPAY', terminal, ours);
      expect(result.discrepancies).toEqual([]);
      expect(result.ours.buckets.sbp_payment).toEqual({ count: 1, amount: 700 });
      const batch: BatchReport = {
        closeDayOperationId: null,
        closedBy: 'settlement',
        closedAt: '2026-04-05T20:00:00.000Z',
        outcome: 'closed',
        batchNumber: null,
        operations: 2,
        ours: result.ours,
        terminal: result.terminal,
        discrepancies: 0,
      };
      const s = await owner.settlement.create({
        data: {
          tenantId: ctx.tenantId,
          terminalId,
          storeId,
          businessDate: new Date('2026-04-05T00:00:00Z'),
          runKey: `schedule:${terminalId}:2026-04-05`,
          trigger: 'schedule',
          status: 'COMPLETED',
          outcome: 'closed',
          completedAt: new Date(),
          ourTotals: result.ours as never,
          terminalTotals: result.terminal as never,
          batches: [batch] as never,
          discrepancies: [],
        },
      });

      const csv = await sut.exportCsv(ctx, exportSettlementsQuery.parse({ terminalId }));
      const [header, row] = csv.split('\r\n');
      expect(header).toBe(CSV_COLUMNS.join(','));
      const cells = Object.fromEntries(CSV_COLUMNS.map((column, i) => [column, row!.split(',')[i]]));
      expect(cells).toMatchObject({ settlement_id: s.id, our_count: '1', our_net: '5000', terminal_count: '1', terminal_net: '5000', discrepancy_count: '0' });
    });
  });
});
