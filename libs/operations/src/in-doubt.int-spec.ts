import { createPrismaClient, Database, type PrismaClient } from '@payorch/db';
import type { OperationType, TerminalDriver } from '@payorch/drivers';
import { createTestDatabase, type TestDatabase, waitFor } from '@payorch/testing';
import { JoinprotoTerminalSimulator } from '@payorch/testing/joinproto-sim';

import { insertOperation, markStuckUnknown, OperationCommandHandler, OperationExecutor, resolveManually } from './index';
import { fakeDriver, joinprotoDriverTo } from './testing/fake-driver.testing';

/**
 * A terminal with an operation in doubt — SENT or IN_PROGRESS (sent, its outcome not stored) or UNKNOWN — takes no
 * new command until that operation is decided. Joinproto 95, SSI GetLastResult and the JPAY card log only know the
 * terminal's LAST transaction: a payment sent while an earlier one is in doubt destroys the evidence of the earlier
 * one, and its recovery may then store FAILED for a payment the terminal approved. A row left SENT / IN_PROGRESS by
 * an executor that is gone (connector crash, an instance that lost the terminal while a command was out, a recovery
 * on reconnect that failed) did not block: only UNKNOWN did, so until the sweep turned it UNKNOWN (minutes) the next
 * operation of the terminal was claimed and sent.
 */
describe('a terminal with an operation in doubt takes no new command', () => {
  let testDb: TestDatabase;
  let owner: PrismaClient;
  let db: Database;
  let tenantId: string;
  let storeId: string;
  let sim: JoinprotoTerminalSimulator;
  let port: number;
  const drivers: TerminalDriver[] = [];
  let keyCounter = 0;

  beforeAll(async () => {
    testDb = await createTestDatabase();
    owner = createPrismaClient(testDb.adminUrl, { max: 2 });
    db = Database.connect(testDb.appUrl, 4);
    tenantId = (await owner.tenant.create({ data: { name: 'T' } })).id;
    storeId = (await owner.store.create({ data: { tenantId, name: 'S', timeZone: 'UTC' } })).id;
  });

  beforeEach(async () => {
    sim = new JoinprotoTerminalSimulator({ cardTimeoutMs: 10 });
    ({ port } = await sim.listen(0));
  });

  afterEach(async () => {
    await Promise.all(drivers.splice(0).map((d) => d.close()));
    await sim.close();
  });

  afterAll(async () => {
    await db.close();
    await owner.$disconnect();
    await testDb.drop();
  });

  const newTerminal = async () => (await owner.terminal.create({ data: { tenantId, storeId, name: 'POS', protocol: 'JOINPROTO', connection: {} } })).id;

  function driverOf(terminalId: string): TerminalDriver {
    const driver = joinprotoDriverTo(terminalId, port);
    drivers.push(driver);
    return driver;
  }

  async function newOperation(terminalId: string, type: OperationType, amount?: number): Promise<string> {
    const { row } = await db.withTenant(tenantId, (tx) =>
      insertOperation(tx, { tenantId, terminalId, storeId, type, amount, currency: 'RUB', idempotencyKey: `k-${++keyCounter}`, requestHash: 'h' }),
    );
    return row.id;
  }

  const load = (id: string) => owner.terminalOperation.findUniqueOrThrow({ where: { id }, include: { events: { orderBy: { seq: 'asc' } } } });
  const execute = (handler: OperationCommandHandler, terminalId: string, operationId: string) =>
    handler.handle({ kind: 'operation.execute', tenantId, terminalId, operationId }, driverOf(terminalId));

  /**
   * A purchase the terminal approved whose executor died before it stored the outcome: run to the end, then the row
   * is put back to what the dead executor left (`state`, no outcome, no completion time; its claim's DF01 kept).
   */
  async function approvedButNotStored(terminalId: string, amount: number, state: 'SENT' | 'IN_PROGRESS'): Promise<string> {
    const id = await newOperation(terminalId, 'purchase', amount);
    expect(await execute(new OperationCommandHandler(db), terminalId, id)).toEqual({ ok: true, result: { ran: true, state: 'approved' } });
    const { protocolRefs } = await load(id);
    await owner.terminalOperation.update({
      where: { id },
      data: {
        state,
        subStatus: state === 'IN_PROGRESS' ? 'processing' : null,
        completedAt: null,
        rrn: null,
        approvalCode: null,
        responseCode: null,
        responseMessage: null,
        maskedPan: null,
        protocolRefs: { df01: (protocolRefs as { df01: string }).df01, command: 'Purchase' },
      },
    });
    return id;
  }

  it.each(['SENT', 'IN_PROGRESS'] as const)(
    'refuses to send while another operation of the terminal is %s from an executor that is gone: failed as never sent (TERMINAL_RECOVERING)',
    async (state) => {
      const terminalId = await newTerminal();
      const handler = new OperationCommandHandler(db);
      const lost = await approvedButNotStored(terminalId, 1201, state);
      const next = await newOperation(terminalId, 'purchase', 1202);
      expect(await execute(handler, terminalId, next)).toEqual({ ok: true, result: { ran: false, state: 'failed' } });
      const refused = await load(next);
      expect(refused).toMatchObject({
        state: 'FAILED',
        protocolRefs: null,
        error: { code: 'TERMINAL_RECOVERING', operationId: lost, state: state.toLowerCase() },
        stateReason: expect.stringContaining(lost),
      });
      expect(refused.events.map((e) => [e.kind, e.fromState, e.toState])).toEqual([
        ['created', null, 'PENDING'],
        ['transition', 'PENDING', 'FAILED'],
      ]);
      // An operation in flight blocks every type: even one that only reads the terminal (the other executor may still
      // be talking to it). Only UNKNOWN ones let terminal_info through (RUNS_WHILE_RECOVERING).
      const info = await newOperation(terminalId, 'terminal_info');
      expect(await execute(handler, terminalId, info)).toEqual({ ok: true, result: { ran: false, state: 'failed' } });
      expect(await load(info)).toMatchObject({ state: 'FAILED', protocolRefs: null, error: { code: 'TERMINAL_RECOVERING', operationId: lost } });
      // Nothing reached the terminal after the lost purchase.
      expect(sim.journal.map((e) => e.amount)).toEqual([1201]);
    },
  );

  it('refuses the claim itself when another operation of the terminal is sent between the read and the claim: the driver sends nothing', async () => {
    const terminalId = await newTerminal();
    const other = await newOperation(terminalId, 'purchase', 1301);
    const operationId = await newOperation(terminalId, 'purchase', 1302);
    let sent = false;
    const heard: unknown[] = [];
    const report = await new OperationExecutor(db, { onRefused: (refusal) => heard.push(refusal) }).execute(
      { tenantId, operationId },
      fakeDriver(async (hooks) => {
        // While this one's session opens, another executor (another connector instance) claims the other operation.
        await owner.terminalOperation.update({ where: { id: other }, data: { state: 'SENT', protocolRefs: { df01: '001301' } } });
        try {
          await hooks.beforeSend({ df01: '001302' });
          sent = true;
          return { state: 'approved' };
        } catch (error) {
          return { state: 'failed', reason: `not sent: ${(error as Error).message}` };
        }
      }),
    );
    expect(report).toEqual({ ran: false, state: 'FAILED' });
    expect(sent).toBe(false);
    expect(await load(operationId)).toMatchObject({
      state: 'FAILED',
      protocolRefs: null,
      error: { code: 'TERMINAL_RECOVERING', operationId: other, state: 'sent' },
    });
    // The refusal at the claim is told, with what blocked it (the device connector recovers the terminal with it).
    expect(heard).toEqual([{ tenantId, terminalId, operationId, blocking: { id: other, state: 'SENT' } }]);
  });

  it("tells the handler's listeners of each refusal once it committed: the terminal, the refused operation and the one in doubt", async () => {
    const terminalId = await newTerminal();
    const handler = new OperationCommandHandler(db);
    const heard: Array<{ refusal: unknown; stored: Promise<string> }> = [];
    const unsubscribe = handler.onTerminalRecovering((refusal) => heard.push({ refusal, stored: load(refusal.operationId).then((row) => row.state) }));
    const lost = await approvedButNotStored(terminalId, 1801, 'SENT');
    const next = await newOperation(terminalId, 'purchase', 1802);
    expect(await execute(handler, terminalId, next)).toEqual({ ok: true, result: { ran: false, state: 'failed' } });
    expect(heard.map((h) => h.refusal)).toEqual([{ tenantId, terminalId, operationId: next, blocking: { id: lost, state: 'SENT' } }]);
    // Told after the commit: the refusal is there for whoever reads it.
    expect(await heard[0]!.stored).toBe('FAILED');
    // A listener that unsubscribed is told nothing more.
    unsubscribe();
    expect(await execute(handler, terminalId, await newOperation(terminalId, 'purchase', 1803))).toMatchObject({ result: { ran: false } });
    expect(heard).toHaveLength(1);
  });

  it('recovery on reconnect takes over the operations in doubt that nobody touched since the terminal came online, not one an executor elsewhere still reports on', async () => {
    const terminalId = await newTerminal();
    const handler = new OperationCommandHandler(db);
    // Claimed and approved before the terminal came online here (30 s ago), its executor gone since.
    const lost = await approvedButNotStored(terminalId, 1901, 'SENT');
    await owner.$executeRaw`UPDATE "TerminalOperation" SET "updatedAt" = now() - interval '1 minute' WHERE "id" = ${lost}::uuid`;
    const onlineSince = new Date(Date.now() - 30_000);
    // Claimed by another instance after that (the terminal was moved while its command ran there), still reporting.
    const elsewhere = await newOperation(terminalId, 'purchase', 1902);
    await owner.$executeRaw`UPDATE "TerminalOperation" SET "state" = 'IN_PROGRESS', "protocolRefs" = '{"df01":"424242"}', "updatedAt" = now()
      WHERE "id" = ${elsewhere}::uuid`;
    expect(await handler.recoverTerminal({ tenantId, terminalId }, driverOf(terminalId), onlineSince)).toEqual({
      neverSent: 0,
      leftPending: 0,
      markedUnknown: 1,
      recovered: 1,
      stillUnknown: 0,
    });
    expect(await load(lost)).toMatchObject({ state: 'APPROVED', rrn: sim.journal[0]!.rrn });
    const untouched = await load(elsewhere);
    expect(untouched).toMatchObject({ state: 'IN_PROGRESS' });
    expect(untouched.events.map((e) => e.kind)).toEqual(['created']);
  });

  it('lets only one of two claims of the same terminal at once send: the claims of a terminal are serialised', async () => {
    // Two executors (say two connector instances during a move of the terminal) claim two operations of one terminal
    // at the same moment. Each claim's guard looks at the other operation: under READ COMMITTED, both statements saw
    // the other one PENDING, and both were sent.
    const terminalId = await newTerminal();
    const first = await newOperation(terminalId, 'purchase', 1401);
    const second = await newOperation(terminalId, 'purchase', 1402);
    const sent: string[] = [];
    // The winner's payment is still running (its operation SENT, in doubt) until the other claim was decided: refused,
    // or — the bug — sent too. (Answering at once let the loser's claim, refused, find the winner already approved and
    // run after it, rightly, now and then: the terminal was free again.)
    let decided!: () => void;
    const otherClaimDecided = new Promise<void>((resolve) => (decided = resolve));
    const run = (operationId: string) =>
      new OperationExecutor(db).execute(
        { tenantId, operationId },
        fakeDriver(async (hooks) => {
          try {
            await hooks.beforeSend({ df01: operationId === first ? '001401' : '001402' });
          } catch (error) {
            decided();
            return { state: 'failed', reason: `not sent: ${(error as Error).message}` };
          }
          sent.push(operationId);
          if (sent.length > 1) decided();
          await otherClaimDecided;
          return { state: 'approved', rrn: '000000001400' };
        }),
      );
    let runs!: Promise<unknown>;
    // Both rows are held locked while both claims are issued: each claim has started (and waits for a lock) before
    // either one commits.
    await owner.$transaction(
      async (tx) => {
        await tx.$queryRaw`SELECT "id" FROM "TerminalOperation" WHERE "id" IN (${first}::uuid, ${second}::uuid) FOR UPDATE`;
        runs = Promise.all([run(first), run(second)]);
        await waitFor(
          async () => {
            const [{ waiting }] = await owner.$queryRaw<{ waiting: number }[]>`
              SELECT count(*)::int AS waiting FROM pg_stat_activity WHERE datname = current_database() AND wait_event_type = 'Lock'`;
            return waiting >= 2;
          },
          { what: 'both claims waiting for a lock' },
        );
      },
      { timeout: 15_000 },
    );
    await runs;
    expect(sent).toHaveLength(1);
    const [winner, loser] = sent[0] === first ? [first, second] : [second, first];
    expect(await load(winner)).toMatchObject({ state: 'APPROVED' });
    expect(await load(loser)).toMatchObject({ state: 'FAILED', protocolRefs: null, error: { code: 'TERMINAL_RECOVERING', operationId: winner } });
  });

  it('runs the next operation once the recovery on reconnect has decided the lost one (which the gate does not block)', async () => {
    const terminalId = await newTerminal();
    const handler = new OperationCommandHandler(db);
    const lost = await approvedButNotStored(terminalId, 1501, 'SENT');
    const refused = await newOperation(terminalId, 'purchase', 1502);
    expect(await execute(handler, terminalId, refused)).toEqual({ ok: true, result: { ran: false, state: 'failed' } });
    // The agent reconnects: SENT → UNKNOWN → 95 → approved, as the terminal says.
    expect(await handler.recoverTerminal({ tenantId, terminalId }, driverOf(terminalId), new Date())).toEqual({
      neverSent: 0,
      leftPending: 0,
      markedUnknown: 1,
      recovered: 1,
      stillUnknown: 0,
    });
    expect(await load(lost)).toMatchObject({ state: 'APPROVED', rrn: sim.journal[0]!.rrn });
    const next = await newOperation(terminalId, 'purchase', 1503);
    expect(await execute(handler, terminalId, next)).toEqual({ ok: true, result: { ran: true, state: 'approved' } });
    expect(sim.journal.map((e) => e.amount)).toEqual([1501, 1503]);
  });

  it("runs the next operation once the sweep's recovery has decided the lost one, or a human has", async () => {
    const terminalId = await newTerminal();
    const handler = new OperationCommandHandler(db);
    const lost = await approvedButNotStored(terminalId, 1601, 'IN_PROGRESS');
    expect(await execute(handler, terminalId, await newOperation(terminalId, 'purchase', 1602))).toMatchObject({ result: { ran: false } });
    // The recovery sweep: stuck → UNKNOWN, then the bus command operation.recover.
    const swept = await db.withTenant(tenantId, (tx) => markStuckUnknown(tx, lost, new Date(), 'no outcome; recovering'));
    expect(swept).toMatchObject({ changed: true, row: { state: 'UNKNOWN' } });
    expect(await handler.handle({ kind: 'operation.recover', tenantId, terminalId, operationId: lost }, driverOf(terminalId))).toEqual({
      ok: true,
      result: { attempted: true, state: 'approved' },
    });
    expect(await execute(handler, terminalId, await newOperation(terminalId, 'purchase', 1603))).toEqual({
      ok: true,
      result: { ran: true, state: 'approved' },
    });
    // A second one lost, decided by a human from UNKNOWN.
    const second = await approvedButNotStored(terminalId, 1610, 'SENT');
    expect(await execute(handler, terminalId, await newOperation(terminalId, 'purchase', 1611))).toMatchObject({ result: { ran: false } });
    await db.withTenant(tenantId, (tx) => markStuckUnknown(tx, second, new Date(), 'no outcome; recovering'));
    const verdict = { state: 'APPROVED' as const, note: 'terminal journal: approved', actor: { type: 'api_key', id: null } };
    expect(await db.withTenant(tenantId, (tx) => resolveManually(tx, second, verdict))).toMatchObject({ changed: true, row: { state: 'APPROVED' } });
    expect(await execute(handler, terminalId, await newOperation(terminalId, 'purchase', 1612))).toEqual({
      ok: true,
      result: { ran: true, state: 'approved' },
    });
    expect(sim.journal.map((e) => e.amount)).toEqual([1601, 1603, 1610, 1612]);
  });
});
