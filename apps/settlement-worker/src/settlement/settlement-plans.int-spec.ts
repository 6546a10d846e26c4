import { randomUUID } from 'node:crypto';

import { recordPreparedStatements, widePlans } from '@payorch/testing';

import { FakeSettlementRunner } from './testing/fake-runner.testing';
import { SettlementHarness } from './testing/settlement-harness.testing';

/** Operations of the terminal's past, all settled, and of another terminal of the tenant, none settled. */
const HISTORY = 20_000;
/** The tenant's other terminals and their settled days: its settlements of the past. */
const FLEET = 250;
const DAYS = 20;
/** The terminal's own settlements of the past (eight years of daily close-days): the previous one is its newest. */
const OWN_DAYS = 3_000;

/**
 * Issue 19, "flat as tables grow": a settlement's statements must read the terminal's unsettled day, not its history
 * nor its tenant's. Measured before: with 200,000 settled operations, the operations it settles (approved, not yet
 * settled) were found by reading the tenant's every operation since its first (40 ms), the busy check read the
 * terminal's (here: the table's) every operation (100 ms) and the close-days done outside a settlement the tenant's
 * whole day (27 ms), for every settlement; now by partial indexes of what they ask for. Likewise the previous settlement
 * of the terminal (the boundary of this one's batches) was found by reading and sorting every settlement the terminal
 * ever had (3,003 rows here); now by the partial index of its COMPLETED ones in completion order.
 *
 * One settlement runs after the tenant grew (ANALYZEd: the steady state); every statement the worker prepared is run
 * again with its generic plan (what a long-lived connection keeps): no plan node may read more than a handful of rows.
 */
describe('settlement statements stay bounded as the terminal and its tenant grow (issue 19)', () => {
  const h = new SettlementHarness({
    prefix: 'settle-plans',
    env: { SETTLEMENT_SYNC_INTERVAL_MS: '600000' },
    poolSize: 2,
    runner: (db) => new FakeSettlementRunner(db, 1),
  });
  const recorder = recordPreparedStatements();

  beforeAll(() => h.start(), 60_000);

  afterAll(async () => {
    recorder.restore();
    await h.stop();
  });

  it('reads a bounded number of rows in every statement of a settlement of a terminal with 20,000 settled operations', async () => {
    const { tenantId } = h;
    const storeId = await h.store('S', 'UTC');
    const [own, other] = [await h.terminal(storeId, 'A'), await h.terminal(storeId, 'B')];
    const past = await h.owner.settlement.create({
      data: { tenantId, terminalId: own.id, storeId, businessDate: new Date('2026-01-01'), runKey: randomUUID(), trigger: 'schedule', status: 'COMPLETED' },
    });
    // The terminal's settled past (purchases and its daily close-days) and the other terminal's open day.
    await h.owner.$executeRawUnsafe(
      `INSERT INTO "TerminalOperation" ("id", "tenantId", "terminalId", "storeId", "type", "amount", "currency", "idempotencyKey", "requestHash",
         "state", "settlementId", "createdAt", "updatedAt", "completedAt")
       SELECT gen_random_uuid(), $1::uuid, CASE WHEN n % 2 = 0 THEN $2::uuid ELSE $3::uuid END, $4::uuid,
         (CASE WHEN n % 100 = 0 THEN 'SETTLEMENT' ELSE 'PURCHASE' END)::"OperationType", 1000, 'RUB', 'past-' || n, 'h', 'APPROVED',
         CASE WHEN n % 2 = 0 THEN $5::uuid END, now() - n * interval '1 second', now() - n * interval '1 second', now() - n * interval '1 second'
       FROM generate_series(1, $6::int * 2) n`,
      tenantId,
      own.id,
      other.id,
      storeId,
      past.id,
      HISTORY,
    );
    await h.owner.$executeRawUnsafe(
      `WITH fleet AS (
         INSERT INTO "Terminal" ("id", "tenantId", "storeId", "name", "protocol", "connection", "updatedAt")
         SELECT gen_random_uuid(), $1::uuid, $2::uuid, 'F' || n, 'JOINPROTO', '{"kind":"tcp","host":"127.0.0.1","port":1}', now()
         FROM generate_series(1, $3::int) n RETURNING "id")
       INSERT INTO "Settlement" ("id", "tenantId", "terminalId", "storeId", "businessDate", "runKey", "trigger", "status", "createdAt", "updatedAt")
       SELECT gen_random_uuid(), $1::uuid, f."id", $2::uuid, date '2025-01-01' + d, 'past-' || f."id" || '-' || d, 'schedule', 'COMPLETED', now(), now()
       FROM fleet f CROSS JOIN generate_series(1, $4::int) d`,
      tenantId,
      storeId,
      FLEET,
      DAYS,
    );
    // The terminal's own past: a COMPLETED settlement a day, each with its close-day (settled by it), the newest just
    // after the settled operations above. The previous settlement (the boundary of this one's batches) is the newest,
    // which must be found without reading them all.
    await h.owner.$executeRawUnsafe(
      `INSERT INTO "Settlement" ("id", "tenantId", "terminalId", "storeId", "businessDate", "runKey", "trigger", "status", "operationId",
         "startedAt", "completedAt", "createdAt", "updatedAt")
       SELECT gen_random_uuid(), $1::uuid, $2::uuid, $3::uuid, date '2026-02-28' - d, 'own-past-' || d, 'schedule', 'COMPLETED', gen_random_uuid(),
         t, t, t, t
       FROM generate_series(1, $4::int) d, LATERAL (SELECT now() - interval '100 milliseconds' - (d - 1) * interval '1 day' AS t) at`,
      tenantId,
      own.id,
      storeId,
      OWN_DAYS,
    );
    await h.owner.$executeRawUnsafe(
      `INSERT INTO "TerminalOperation" ("id", "tenantId", "terminalId", "storeId", "type", "idempotencyKey", "requestHash", "state", "settlementId",
         "createdAt", "updatedAt", "completedAt")
       SELECT s."operationId", s."tenantId", s."terminalId", s."storeId", 'SETTLEMENT', 'close-' || s."runKey", 'h', 'APPROVED', s."id",
         s."completedAt", s."completedAt", s."completedAt"
       FROM "Settlement" s WHERE s."terminalId" = $1::uuid AND s."runKey" LIKE 'own-past-%'`,
      own.id,
    );
    // A settlement of the terminal given up while its close-day's outcome was unknown, which recovery found approved
    // later: this settlement reconciles that batch too, after asking which settlement sent the close-day.
    const givenUp = await h.owner.settlement.create({
      data: { tenantId, terminalId: own.id, storeId, businessDate: new Date('2026-02-28'), runKey: randomUUID(), trigger: 'schedule', status: 'FAILED' },
    });
    const givenUpCloseDay = await h.owner.terminalOperation.create({
      data: {
        tenantId,
        terminalId: own.id,
        storeId,
        type: 'SETTLEMENT',
        state: 'APPROVED',
        idempotencyKey: `settlement:${givenUp.id}:1:${Date.now()}`,
        requestHash: 'h',
        responseCode: '000',
        receipt: { text: 'CLOSE DAY\nDEBIT 0 0\nCREDIT 0 0\nTOTAL 0' },
        completedAt: new Date(),
      },
    });
    await h.owner.settlement.update({ where: { id: givenUp.id }, data: { operationId: givenUpCloseDay.id } });
    const unsettled = await h.owner.terminalOperation.create({
      data: {
        tenantId,
        terminalId: own.id,
        storeId,
        type: 'PURCHASE',
        state: 'APPROVED',
        amount: 700n,
        currency: 'RUB',
        idempotencyKey: 'today',
        requestHash: 'h',
        completedAt: new Date(),
      },
    });
    await h.owner.$executeRawUnsafe('ANALYZE "TerminalOperation", "Settlement"');

    recorder.recording.on = true;
    const job = await h.run(own.id, '2026-03-01');
    expect(await job.waitUntilFinished(h.events, 20_000)).toMatchObject({ status: 'COMPLETED' });
    recorder.recording.on = false;
    const settlement = await h.owner.settlement.findUniqueOrThrow({ where: { tenantId_runKey: { tenantId, runKey: job.data.runKey } } });
    expect((await h.owner.terminalOperation.findUniqueOrThrow({ where: { id: unsettled.id } })).settlementId).toBe(settlement.id);
    expect(settlement.ourTotals).toMatchObject({ net: 700 });
    expect(settlement.batches).toEqual([
      expect.objectContaining({ closeDayOperationId: givenUpCloseDay.id, closedBy: 'settlement' }),
      expect.objectContaining({ closeDayOperationId: settlement.operationId, closedBy: 'settlement' }),
    ]);

    const statements = [...recorder.statements.values()];
    // prepare (the terminal's lock, terminal, settlement, busy check, the close-day operation), complete (the lock, its
    // row, the previous boundary, close-days outside and who sent them, the operations it settles, the completion), and
    // the executor's.
    expect(statements.filter((s) => /FROM "TerminalOperation"/.test(s.text)).length).toBeGreaterThanOrEqual(4);
    expect(statements.filter((s) => /FROM "Settlement" s WHERE s."id" = ANY/.test(s.text))).toHaveLength(1);
    // The previous settlement was found (the newest of the terminal's 3,000), and its close-day bounded the search for
    // close-days done since: the statement with that lower bound is the one replayed.
    expect(statements.filter((s) => /ORDER BY s."completedAt" DESC LIMIT 1/.test(s.text))).toHaveLength(1);
    expect(statements.filter((s) => /o."createdAt" > \$\d+::timestamptz/.test(s.text))).toHaveLength(1);
    expect(await widePlans(h.testDb.adminUrl, statements, tenantId)).toEqual([]);
  }, 60_000);
});
