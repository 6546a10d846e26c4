import { createPrismaClient, Database, type PrismaClient, type PublishedEvent } from '@payorch/db';
import { KeyedSerialQueue } from '@payorch/domain';
import type { OperationType, TerminalDriver } from '@payorch/drivers';
import { createTestDatabase, recordPreparedStatements, type TestDatabase, waitFor, widePlans } from '@payorch/testing';
import { JoinprotoTerminalSimulator, type TerminalSimulatorOptions } from '@payorch/testing/joinproto-sim';

import {
  AmountError,
  ANOTHER_DEVICE,
  canTransition,
  failNeverSent,
  insertOperation,
  OperationCommandHandler,
  OperationExecutor,
  recoverOperation,
  resolveManually,
  sourcesOf,
  toDbAmount,
  TRANSITIONS,
} from './index';
import { fakeDriver, joinprotoDriverTo } from './testing/fake-driver.testing';

describe('operations state machine', () => {
  it('allows only the transitions of the table', () => {
    expect(canTransition('PENDING', 'SENT')).toBe(true);
    expect(canTransition('PENDING', 'APPROVED')).toBe(false);
    expect(canTransition('APPROVED', 'UNKNOWN')).toBe(false);
    expect(canTransition('UNKNOWN', 'APPROVED')).toBe(true);
    expect(canTransition('UNKNOWN', 'SENT')).toBe(false);
    expect(sourcesOf('SENT')).toEqual(['PENDING']);
    expect(sourcesOf('UNKNOWN')).toEqual(['SENT', 'IN_PROGRESS', 'UNKNOWN']);
    for (const final of ['APPROVED', 'DECLINED', 'CANCELED', 'FAILED'] as const) expect(TRANSITIONS[final]).toEqual({});
  });

  it('keeps amounts within the safe integer range', () => {
    expect(toDbAmount(1500)).toBe(1500n);
    expect(toDbAmount(Number.MAX_SAFE_INTEGER)).toBe(BigInt(Number.MAX_SAFE_INTEGER));
    expect(() => toDbAmount(Number.MAX_SAFE_INTEGER + 1)).toThrow(AmountError);
    expect(() => toDbAmount(1.5)).toThrow(AmountError);
    expect(() => toDbAmount(-1)).toThrow(AmountError);
  });
});

describe(OperationExecutor.name, () => {
  let testDb: TestDatabase;
  let owner: PrismaClient;
  let db: Database;
  let tenantId: string;
  let storeId: string;
  let terminalId: string;
  let sim: JoinprotoTerminalSimulator;
  const drivers: TerminalDriver[] = [];
  const published: PublishedEvent[] = [];
  let keyCounter = 0;

  beforeAll(async () => {
    testDb = await createTestDatabase();
    owner = createPrismaClient(testDb.adminUrl, { max: 2 });
    db = Database.connect(testDb.appUrl, 4);
    tenantId = (await owner.tenant.create({ data: { name: 'T' } })).id;
    storeId = (await owner.store.create({ data: { tenantId, name: 'S', timeZone: 'UTC' } })).id;
    terminalId = (await owner.terminal.create({ data: { tenantId, storeId, name: 'POS 1', protocol: 'JOINPROTO', connection: {} } })).id;
  });

  afterAll(async () => {
    await db.close();
    await owner.$disconnect();
    await testDb.drop();
  });

  async function rig(simOptions: TerminalSimulatorOptions = {}, commandTimeoutMs?: number) {
    sim = new JoinprotoTerminalSimulator({ cardTimeoutMs: 30, ...simOptions });
    const { port } = await sim.listen(0);
    const make = (forTerminal = terminalId) => {
      const driver = joinprotoDriverTo(forTerminal, port, commandTimeoutMs === undefined ? {} : { commandTimeoutMs });
      drivers.push(driver);
      return driver;
    };
    return make;
  }

  afterEach(async () => {
    await Promise.all(drivers.splice(0).map((d) => d.close()));
    await sim?.close();
    published.length = 0;
  });

  async function newOperation(type: OperationType, amount?: number, originalOperationId?: string, forTerminal = terminalId) {
    const { row } = await db.withTenant(tenantId, (tx) =>
      insertOperation(tx, {
        tenantId,
        terminalId: forTerminal,
        storeId,
        type,
        amount,
        currency: 'RUB',
        originalOperationId,
        idempotencyKey: `k-${++keyCounter}`,
        requestHash: 'h',
      }),
    );
    return row.id;
  }

  const load = (id: string) => owner.terminalOperation.findUniqueOrThrow({ where: { id }, include: { events: { orderBy: { createdAt: 'asc' } } } });
  const domainEvents = (id: string) => owner.domainEvent.findMany({ where: { subjectId: id }, omit: { seq: true }, orderBy: { createdAt: 'asc' } });

  it('runs an operation exactly once even when two executors race for it', async () => {
    const make = await rig();
    const operationId = await newOperation('purchase', 1500);
    const sut = new OperationExecutor(db, { onEvents: (events) => published.push(...events) });
    // The loser read the row PENDING too, opened its session (a link check frame), and asks to send only once the
    // winner has claimed: its beforeSend refuses, so it sends nothing, and nothing of its run is journaled.
    let loserSent = false;
    const loser: TerminalDriver = {
      ...make(),
      execute: async (_command, hooks) => {
        hooks.onFrame?.({ direction: 'in', protocol: 'JOINPROTO', summary: 'Echo (99)', masked: 'the loser link check' });
        await waitFor(async () => (await load(operationId)).state !== 'PENDING', { what: 'the winner claimed' });
        try {
          await hooks.beforeSend({ df01: '777777', command: 'Purchase' });
          loserSent = true;
          return { state: 'approved' };
        } catch (error) {
          return { state: 'failed', reason: `not sent: ${(error as Error).message}` };
        }
      },
    };
    const [won, lost] = await Promise.all([sut.execute({ tenantId, operationId }, make()), sut.execute({ tenantId, operationId }, loser)]);
    expect(won).toEqual({ ran: true, state: 'APPROVED' });
    expect(lost).toEqual({ ran: false, state: expect.stringMatching(/^(SENT|IN_PROGRESS|APPROVED)$/) });
    expect(loserSent).toBe(false);
    expect(sim.journal).toHaveLength(1);
    // An executor that reads it claimed does not even open the terminal's session.
    let opened = false;
    const late: TerminalDriver = { ...make(), execute: async () => ((opened = true), { state: 'approved' }) };
    expect(await sut.execute({ tenantId, operationId }, late)).toEqual({ ran: false, state: 'APPROVED' });
    expect(opened).toBe(false);
    const op = await load(operationId);
    expect(JSON.stringify(op.events.map((e) => e.data))).not.toContain('the loser link check');
    expect(JSON.stringify(op.events.map((e) => e.data))).not.toContain('777777');
    expect(op).toMatchObject({ state: 'APPROVED', maskedPan: '544966******2078', rrn: sim.journal[0]!.rrn, subStatus: null });
    expect(op.protocolRefs).toMatchObject({ df01: sim.journal[0]!.id, rrn: sim.journal[0]!.rrn });
    expect(op.receipt).toMatchObject({ text: 'ЧЕК purchase 1500' });
    // Besides the protocol frames (masked; write-path.int-spec.ts checks their order):
    expect(op.events.filter((e) => e.kind !== 'frame').map((e) => [e.kind, e.fromState, e.toState])).toEqual([
      ['created', null, 'PENDING'],
      ['transition', 'PENDING', 'SENT'],
      ['progress', 'SENT', 'IN_PROGRESS'],
      ['transition', 'IN_PROGRESS', 'APPROVED'],
    ]);
    expect(op.events.filter((e) => e.kind === 'frame').length).toBeGreaterThanOrEqual(2);
    expect(JSON.stringify(op.events.map((e) => e.data))).not.toContain('5449661234562078');
    expect((await domainEvents(operationId)).map((e) => e.type)).toEqual([
      'operation.created',
      'operation.progress',
      'operation.progress',
      'operation.completed',
    ]);
    expect(published.map((e) => e.type)).toEqual(['operation.progress', 'operation.progress', 'operation.completed']);
    expect(JSON.stringify(await domainEvents(operationId))).not.toContain('5449661234562078');
  });

  it('does nothing for an operation that is no longer PENDING (e.g. failed because it could not be dispatched)', async () => {
    const make = await rig();
    const operationId = await newOperation('purchase', 1500);
    await owner.terminalOperation.update({ where: { id: operationId }, data: { state: 'FAILED' } });
    expect(await new OperationExecutor(db).execute({ tenantId, operationId }, make())).toEqual({ ran: false, state: 'FAILED' });
    expect(sim.journal).toHaveLength(0);
  });

  it('stores the protocol refs before the terminal receives the command, so a lost answer is UNKNOWN and recoverable', async () => {
    const make = await rig({ dropResponse: (r) => r.type === 'PurchaseRequest' }, 150);
    const operationId = await newOperation('purchase', 4200);
    const executor = new OperationExecutor(db, { onEvents: (events) => published.push(...events) });
    expect(await executor.execute({ tenantId, operationId }, make())).toEqual({ ran: true, state: 'UNKNOWN' });
    const lost = await load(operationId);
    expect(lost).toMatchObject({ state: 'UNKNOWN', completedAt: null, protocolRefs: { df01: sim.journal[0]!.id } });

    expect(await recoverOperation(db, executor, make(), { tenantId, operationId })).toEqual({ attempted: true, state: 'APPROVED' });
    const recovered = await load(operationId);
    expect(recovered).toMatchObject({ state: 'APPROVED', rrn: sim.journal[0]!.rrn });
    expect(recovered.events.at(-1)).toMatchObject({ kind: 'recovered', fromState: 'UNKNOWN', toState: 'APPROVED' });
    expect((await domainEvents(operationId)).map((e) => e.type).slice(-2)).toEqual(['operation.unknown', 'operation.recovered']);
    expect(sim.journal).toHaveLength(1);
    expect(await recoverOperation(db, executor, make(), { tenantId, operationId })).toEqual({ attempted: false, state: 'APPROVED' });
  });

  it('never decides an operation from another device than the one it was sent to: a replacement\'s "no such command" is not "not performed"', async () => {
    // Found in the eleventh session: re-pointing a terminal (PATCH connection or agent) while a payment was in doubt
    // made recovery ask the new device, whose Joinproto 95 knows no such DF01, and the approved payment was stored FAILED.
    const first = new JoinprotoTerminalSimulator({ cardTimeoutMs: 30, dropResponse: (r) => r.type === 'PurchaseRequest' && r.amount === 4311 });
    const replacement = new JoinprotoTerminalSimulator({ cardTimeoutMs: 30 });
    try {
      const { port } = await first.listen(0);
      const { port: replacementPort } = await replacement.listen(0);
      const operationId = await newOperation('purchase', 4311);
      const executor = new OperationExecutor(db);
      const sent = joinprotoDriverTo(terminalId, port, { commandTimeoutMs: 150 }, 'device-A');
      drivers.push(sent);
      expect(await executor.execute({ tenantId, operationId }, sent)).toEqual({ ran: true, state: 'UNKNOWN' });
      expect((await load(operationId)).protocolRefs).toMatchObject({ df01: first.journal[0]!.id, sentToDevice: 'device-A' });
      expect(first.journal[0]).toMatchObject({ amount: 4311, approved: true });

      // The terminal now reaches a replacement device, which has never seen the command (before: FAILED "not performed").
      const moved = joinprotoDriverTo(terminalId, replacementPort, {}, 'device-B');
      drivers.push(moved);
      expect(await recoverOperation(db, executor, moved, { tenantId, operationId })).toEqual({ attempted: true, state: 'UNKNOWN' });
      expect(await load(operationId)).toMatchObject({ state: 'UNKNOWN', recoveryAttempts: 1, stateReason: ANOTHER_DEVICE });
      // No attempt can decide it while the terminal reaches the replacement: flagged for a person by this first attempt
      // (before: only once the whole budget was spent), once, whatever further attempts find.
      expect((await load(operationId)).events.slice(-2)).toMatchObject([
        { kind: 'recovery_attempt', fromState: 'UNKNOWN', toState: 'UNKNOWN' },
        { kind: 'recovery_exhausted', fromState: 'UNKNOWN', toState: 'UNKNOWN', data: { cause: 'another_device', attempts: 1, needsHuman: true } },
      ]);
      expect(await recoverOperation(db, executor, moved, { tenantId, operationId })).toEqual({ attempted: true, state: 'UNKNOWN' });
      const told = (await domainEvents(operationId)).filter((e) => e.type === 'operation.unknown' && (e.data as { needsHuman?: boolean }).needsHuman === true);
      expect(told).toHaveLength(1);
      expect(told[0]!.data).toMatchObject({ cause: 'another_device', reason: ANOTHER_DEVICE });
      expect(await load(operationId)).toMatchObject({ recoveryAttempts: 2, stateReason: ANOTHER_DEVICE });
      expect((await load(operationId)).events.filter((e) => e.kind === 'recovery_exhausted')).toHaveLength(1);

      // Asked through the device it was sent to, it is decided.
      const back = joinprotoDriverTo(terminalId, port, {}, 'device-A');
      drivers.push(back);
      expect(await recoverOperation(db, executor, back, { tenantId, operationId })).toEqual({ attempted: true, state: 'APPROVED' });
    } finally {
      await first.close();
      await replacement.close();
    }
  });

  it('counts an inconclusive recovery attempt and stays UNKNOWN', async () => {
    const make = await rig();
    const operationId = await newOperation('purchase', 100);
    await owner.terminalOperation.update({ where: { id: operationId }, data: { state: 'UNKNOWN', protocolRefs: { df01: '123456', command: 'Purchase' } } });
    await sim.close();
    const report = await recoverOperation(db, new OperationExecutor(db), make(), { tenantId, operationId });
    expect(report).toEqual({ attempted: true, state: 'UNKNOWN' });
    expect(await load(operationId)).toMatchObject({ state: 'UNKNOWN', recoveryAttempts: 1, stateReason: expect.stringContaining('unreachable') });
    expect((await load(operationId)).events.at(-1)).toMatchObject({ kind: 'recovery_attempt', fromState: 'UNKNOWN', toState: 'UNKNOWN' });
    // A human closes it, so the terminal takes new work again.
    const note = { state: 'FAILED' as const, note: 'journal: not performed', actor: { type: 'api_key', id: null } };
    expect(await db.withTenant(tenantId, (tx) => resolveManually(tx, operationId, note))).toMatchObject({ changed: true, row: { state: 'FAILED' } });
  });

  it('fails a new operation as never sent while another one of the terminal is UNKNOWN (TERMINAL_RECOVERING), except the types recovery may need', async () => {
    const make = await rig();
    const handler = new OperationCommandHandler(db);
    const unknown = await newOperation('purchase', 300);
    await owner.terminalOperation.update({ where: { id: unknown }, data: { state: 'UNKNOWN', protocolRefs: { df01: '000321' } } });
    const blocked = await newOperation('purchase', 301);
    // Both passed the gateway's gate before the first one became UNKNOWN; the executor is the second gate.
    expect(await handler.handle({ kind: 'operation.execute', tenantId, terminalId, operationId: blocked }, make())).toEqual({
      ok: true,
      result: { ran: false, state: 'failed' },
    });
    const refused = await load(blocked);
    expect(refused).toMatchObject({ state: 'FAILED', protocolRefs: null, error: { code: 'TERMINAL_RECOVERING', operationId: unknown } });
    expect(refused.events.map((e) => [e.kind, e.fromState, e.toState])).toEqual([
      ['created', null, 'PENDING'],
      ['transition', 'PENDING', 'FAILED'],
    ]);
    expect((await domainEvents(blocked)).map((e) => e.type)).toEqual(['operation.created', 'operation.completed']);
    expect(sim.journal).toHaveLength(0);
    // Reading the terminal destroys no evidence: it is claimed (Joinproto then refuses the type itself).
    const info = await newOperation('terminal_info');
    expect(await handler.handle({ kind: 'operation.execute', tenantId, terminalId, operationId: info }, make())).toEqual({
      ok: true,
      result: { ran: true, state: 'failed' },
    });
    expect(await load(info)).toMatchObject({ stateReason: 'JOINPROTO does not support operation type "terminal_info"' });
    // Once the unknown one is decided, new work runs.
    await db.withTenant(tenantId, (tx) => resolveManually(tx, unknown, { state: 'DECLINED', note: 'journal', actor: { type: 'api_key', id: null } }));
    const next = await newOperation('purchase', 302);
    expect(await handler.handle({ kind: 'operation.execute', tenantId, terminalId, operationId: next }, make())).toEqual({
      ok: true,
      result: { ran: true, state: 'approved' },
    });
  });

  it('refunds an approved purchase with its stored references (through the command handler)', async () => {
    const make = await rig();
    const driver = make();
    const handler = new OperationCommandHandler(db);
    const purchaseId = await newOperation('purchase', 3000);
    expect(await handler.handle({ kind: 'operation.execute', tenantId, terminalId, operationId: purchaseId }, driver)).toEqual({
      ok: true,
      result: { ran: true, state: 'approved' },
    });
    const refundId = await newOperation('refund', 1000, purchaseId);
    expect(await handler.handle({ kind: 'operation.execute', tenantId, terminalId, operationId: refundId }, driver)).toMatchObject({
      ok: true,
      result: { state: 'approved' },
    });
    expect(sim.journal.map((e) => [e.command, e.amount])).toEqual([
      ['PurchaseRequest', 3000],
      ['RefundRequest', 1000],
    ]);
  });

  it('cancels a running purchase waiting for a card; a second cancel is TOO_LATE', async () => {
    const make = await rig();
    const driver = make();
    const handler = new OperationCommandHandler(db);
    const operationId = await newOperation('purchase', 2055);
    const cmd = { tenantId, terminalId, operationId };
    const running = handler.handle({ kind: 'operation.execute', ...cmd }, driver);
    await waitFor(async () => (await load(operationId)).state === 'IN_PROGRESS', { what: 'the purchase IN_PROGRESS on the terminal' });
    expect(await handler.handle({ kind: 'operation.cancel', ...cmd }, driver)).toEqual({ ok: true, result: { cancel: 'requested' } });
    expect(await running).toEqual({ ok: true, result: { ran: true, state: 'canceled' } });
    expect(await handler.handle({ kind: 'operation.cancel', ...cmd }, driver)).toMatchObject({ ok: false, code: 'TOO_LATE' });
  });

  it('holds an operation waiting in the terminal queue against the never-sent sweep; an orphan nobody holds is failed (issue 15)', async () => {
    const make = await rig();
    const driver = make();
    const queue = new KeyedSerialQueue();
    const handler = new OperationCommandHandler(db, { queue, pendingHoldIntervalMs: 50 });
    let release!: () => void;
    const blocker = queue.run(terminalId, () => new Promise<void>((resolve) => (release = resolve)));
    const orphan = await newOperation('purchase', 1300); // its gateway died before dispatching it
    const queued = await newOperation('purchase', 1200);
    const inserted = (await load(queued)).updatedAt;
    const reply = handler.handle({ kind: 'operation.execute', tenantId, terminalId, operationId: queued }, driver);
    await waitFor(async () => (await load(queued)).updatedAt > inserted, { what: 'the queued PENDING row held by its connector' });
    // The sweep's horizon falls after the orphan was written and at the queued row's last hold.
    const horizon = (await load(queued)).updatedAt;
    const swept = await db.withTenant(tenantId, async (tx) => ({
      queued: await failNeverSent(tx, queued, horizon, 'never sent: test sweep'),
      orphan: await failNeverSent(tx, orphan, horizon, 'never sent: test sweep'),
    }));
    expect(swept.queued.changed).toBe(false);
    expect(swept.orphan.changed).toBe(true);
    expect(await load(orphan)).toMatchObject({ state: 'FAILED', protocolRefs: null });
    release();
    await blocker;
    expect(await reply).toEqual({ ok: true, result: { ran: true, state: 'approved' } });
    expect(sim.journal.map((e) => e.amount)).toEqual([1200]);
  });

  it("answers `replyWhen: 'queued'` as soon as the operation is queued, runs it once after the reply, and drain() waits for it (issue 15)", async () => {
    const make = await rig();
    const driver = make();
    const queue = new KeyedSerialQueue({ limit: 2 });
    const handler = new OperationCommandHandler(db, { queue });
    let release!: () => void;
    const blocker = queue.run(terminalId, () => new Promise<void>((resolve) => (release = resolve)));
    const operationId = await newOperation('purchase', 1700);
    // The terminal is busy: the reply still comes at once, and nothing has run.
    expect(await handler.handle({ kind: 'operation.execute', tenantId, terminalId, operationId, replyWhen: 'queued' }, driver)).toEqual({
      ok: true,
      result: { queued: true },
    });
    expect(handler.backgroundCount).toBe(1);
    expect((await load(operationId)).state).toBe('PENDING');
    // A full queue is refused at once, before anything is claimed or held.
    const refused = await newOperation('purchase', 1800);
    expect(await handler.handle({ kind: 'operation.execute', tenantId, terminalId, operationId: refused, replyWhen: 'queued' }, driver)).toMatchObject({
      ok: false,
      code: 'TERMINAL_BUSY',
    });
    expect(await handler.drain(0)).toBe(false);
    release();
    await blocker;
    expect(await handler.drain()).toBe(true);
    expect(handler.backgroundCount).toBe(0);
    expect((await load(operationId)).state).toBe('APPROVED');
    expect((await load(refused)).state).toBe('PENDING');
    expect(sim.journal.map((e) => e.amount)).toEqual([1700]);
  });

  it('recovers a terminal that came back online, in its queue before new work: PENDING never sent → failed, IN_PROGRESS → unknown → recovered', async () => {
    const make = await rig({ dropResponse: (r) => r.type === 'PurchaseRequest' && r.amount === 4343 }, 150);
    const other = (await owner.terminal.create({ data: { tenantId, storeId, name: 'POS 2', protocol: 'JOINPROTO', connection: {} } })).id;
    const insert = async (amount: number) =>
      (
        await db.withTenant(tenantId, (tx) =>
          insertOperation(tx, {
            tenantId,
            terminalId: other,
            storeId,
            type: 'purchase',
            amount,
            currency: 'RUB',
            idempotencyKey: `k-${++keyCounter}`,
            requestHash: 'h',
          }),
        )
      ).row.id;
    const handler = new OperationCommandHandler(db);
    // The connector crashed while the terminal was processing: the approval was never stored, the row stayed IN_PROGRESS.
    const lost = await insert(4343);
    expect(await handler.handle({ kind: 'operation.execute', tenantId, terminalId: other, operationId: lost }, make())).toMatchObject({ ok: true });
    await owner.terminalOperation.update({ where: { id: lost }, data: { state: 'IN_PROGRESS', subStatus: 'processing' } });
    // Created before the agent reconnected and never claimed (its bus message died with the connector a minute ago).
    const orphan = await insert(500);
    await owner.$executeRaw`UPDATE "TerminalOperation" SET "updatedAt" = now() - interval '1 minute' WHERE "id" = ${orphan}::uuid`;
    const onlineSince = new Date();
    const next = await insert(700);

    const driver = make();
    const recovering = handler.recoverTerminal({ tenantId, terminalId: other }, driver, onlineSince);
    const payment = handler.handle({ kind: 'operation.execute', tenantId, terminalId: other, operationId: next }, driver);
    expect(await recovering).toEqual({ neverSent: 1, leftPending: 1, markedUnknown: 1, recovered: 1, stillUnknown: 0 });
    expect(await payment).toEqual({ ok: true, result: { ran: true, state: 'approved' } });

    expect(await load(orphan)).toMatchObject({ state: 'FAILED', stateReason: expect.stringContaining('never sent'), protocolRefs: null });
    const recovered = await load(lost);
    expect(recovered).toMatchObject({ state: 'APPROVED', rrn: sim.journal[0]!.rrn });
    expect(recovered.events.map((e) => [e.kind, e.fromState, e.toState]).slice(-2)).toEqual([
      ['transition', 'IN_PROGRESS', 'UNKNOWN'],
      ['recovered', 'UNKNOWN', 'APPROVED'],
    ]);
    // The new payment reached the terminal only after the evidence of the lost one was read (95 before its 01).
    const claimed = (await load(next)).events.find((e) => e.toState === 'SENT')!;
    expect(claimed.createdAt.getTime()).toBeGreaterThanOrEqual(recovered.events.at(-1)!.createdAt.getTime());
    expect(sim.journal.map((e) => e.amount)).toEqual([4343, 700]);
  });

  it('the recovery of a terminal that came online leaves a PENDING payment its command may still bring, or that is queued here: both run', async () => {
    // Found in the tenth session: a payment inserted by its gateway just before the terminal came online here, and
    // handed to this instance after (the gateway looked the owner up once the set-up had claimed it), was failed
    // "never sent" by the pass before its command arrived; so was one queued here behind the pass.
    const make = await rig();
    const own = (await owner.terminal.create({ data: { tenantId, storeId, name: 'POS in flight', protocol: 'JOINPROTO', connection: {} } })).id;
    const driver = make(own);
    const queue = new KeyedSerialQueue();
    const handler = new OperationCommandHandler(db, { queue, pendingHoldIntervalMs: 60_000 });
    const inFlight = await newOperation('purchase', 2101, undefined, own); // on the bus to this instance
    const queuedHere = await newOperation('purchase', 2102, undefined, own);
    // Accepted here a minute ago, in the terminal's earlier session (its hold's last refresh was then).
    await owner.$executeRaw`UPDATE "TerminalOperation" SET "updatedAt" = now() - interval '1 minute' WHERE "id" = ${queuedHere}::uuid`;
    const onlineSince = new Date();
    let release!: () => void;
    const blocker = queue.run(own, () => new Promise<void>((resolve) => (release = resolve)));
    const pass = handler.recoverTerminal({ tenantId, terminalId: own }, driver, onlineSince);
    expect(await handler.handle({ kind: 'operation.execute', tenantId, terminalId: own, operationId: queuedHere, replyWhen: 'queued' }, driver)).toEqual({
      ok: true,
      result: { queued: true },
    });
    release();
    await blocker;
    expect(await pass).toEqual({ neverSent: 0, leftPending: 2, markedUnknown: 0, recovered: 0, stillUnknown: 0 });
    expect(await handler.drain()).toBe(true);
    expect(await handler.handle({ kind: 'operation.execute', tenantId, terminalId: own, operationId: inFlight }, driver)).toEqual({
      ok: true,
      result: { ran: true, state: 'approved' },
    });
    expect(await load(queuedHere)).toMatchObject({ state: 'APPROVED' });
    expect(sim.journal.map((e) => e.amount)).toEqual([2102, 2101]);

    // Unchanged for neverSentAfterMs (the bus drops a queued execute after 15 s) and not queued here: failed.
    const orphan = await newOperation('purchase', 2103, undefined, own);
    await owner.$executeRaw`UPDATE "TerminalOperation" SET "updatedAt" = now() - interval '31 seconds' WHERE "id" = ${orphan}::uuid`;
    expect(await handler.recoverTerminal({ tenantId, terminalId: own }, driver, new Date())).toEqual({
      neverSent: 1,
      leftPending: 0,
      markedUnknown: 0,
      recovered: 0,
      stillUnknown: 0,
    });
    expect(await load(orphan)).toMatchObject({ state: 'FAILED', stateReason: expect.stringContaining('never sent') });
  });

  it("recovery reads the terminal's open operations, not its history (20,000 final operations): its read's plan stays bounded", async () => {
    // Issue 19, "flat as tables grow": asked by state alone, the read went through the terminal's every operation
    // (under row-level security a condition on an enum column is never an index condition).
    const busy = (await owner.terminal.create({ data: { tenantId, storeId, name: 'POS history', protocol: 'JOINPROTO', connection: {} } })).id;
    await owner.$executeRaw`
      INSERT INTO "TerminalOperation" (id, "tenantId", "storeId", "terminalId", type, state, amount, currency, "idempotencyKey", "requestHash",
        "createdAt", "updatedAt", "completedAt")
      SELECT gen_random_uuid(), ${tenantId}::uuid, ${storeId}::uuid, ${busy}::uuid, 'PURCHASE', 'APPROVED', 100, 'RUB', 'history-' || n, 'h',
        now() - n * interval '1 second', now(), now()
      FROM generate_series(1, 20000) n`;
    const orphan = (
      await db.withTenant(tenantId, (tx) =>
        insertOperation(tx, {
          tenantId,
          terminalId: busy,
          storeId,
          type: 'purchase',
          amount: 900,
          currency: 'RUB',
          idempotencyKey: 'orphan-h',
          requestHash: 'h',
        }),
      )
    ).row.id;
    await owner.$executeRaw`UPDATE "TerminalOperation" SET "updatedAt" = now() - interval '1 minute' WHERE "id" = ${orphan}::uuid`;
    await owner.$executeRawUnsafe('ANALYZE "TerminalOperation"');
    const recorder = recordPreparedStatements({ unnamed: true });
    let report: Awaited<ReturnType<OperationCommandHandler['recoverTerminal']>>;
    try {
      recorder.recording.on = true;
      report = await new OperationCommandHandler(db).recoverTerminal(
        { tenantId, terminalId: busy },
        fakeDriver(() => Promise.reject(new Error('nothing is sent'))),
        new Date(),
      );
    } finally {
      recorder.restore();
    }
    expect(report).toEqual({ neverSent: 1, leftPending: 0, markedUnknown: 0, recovered: 0, stillUnknown: 0 });
    expect(await load(orphan)).toMatchObject({ state: 'FAILED' });
    // Every statement of the recovery (its read, and the never-sent failure's writes) over a generic plan.
    const statements = [...recorder.statements.values()];
    expect(statements.some((s) => /FROM "TerminalOperation"/.test(s.text))).toBe(true);
    expect(await widePlans(testDb.adminUrl, statements, tenantId)).toEqual([]);
  });

  it('marks an unsupported type failed without sending anything', async () => {
    const make = await rig();
    const operationId = await newOperation('sbp_payment', 100);
    expect(await new OperationExecutor(db).execute({ tenantId, operationId }, make())).toEqual({ ran: true, state: 'FAILED' });
    expect(await load(operationId)).toMatchObject({
      state: 'FAILED',
      protocolRefs: null,
      stateReason: 'JOINPROTO does not support operation type "sbp_payment"',
    });
    expect(sim.journal).toHaveLength(0);
    expect((await load(operationId)).events.map((e) => [e.kind, e.fromState, e.toState])).toEqual([
      ['created', null, 'PENDING'],
      ['transition', 'PENDING', 'FAILED'],
    ]);
  });

  it('fails an operation as never sent when an UNKNOWN one appears between its read and its claim: the driver sends nothing', async () => {
    await rig();
    const unknown = await newOperation('purchase', 310);
    const operationId = await newOperation('purchase', 311);
    let sent = false;
    const report = await new OperationExecutor(db).execute(
      { tenantId, operationId },
      fakeDriver(async (hooks) => {
        // While the session opens, the other operation's answer is lost.
        await owner.terminalOperation.update({ where: { id: unknown }, data: { state: 'UNKNOWN', protocolRefs: { df01: '000310' } } });
        try {
          await hooks.beforeSend({ df01: '000311' });
          sent = true;
          return { state: 'approved' };
        } catch (error) {
          return { state: 'failed', reason: `not sent: ${(error as Error).message}` };
        }
      }),
    );
    expect(report).toEqual({ ran: false, state: 'FAILED' });
    expect(sent).toBe(false);
    expect(await load(operationId)).toMatchObject({ state: 'FAILED', protocolRefs: null, error: { code: 'TERMINAL_RECOVERING', operationId: unknown } });
    await db.withTenant(tenantId, (tx) => resolveManually(tx, unknown, { state: 'DECLINED', note: 'journal', actor: { type: 'api_key', id: null } }));
  });

  it('fails an operation from PENDING when its driver fails before asking to send, with the frames it exchanged', async () => {
    await rig();
    const operationId = await newOperation('purchase', 320);
    const report = await new OperationExecutor(db).execute(
      { tenantId, operationId },
      fakeDriver(async (hooks) => {
        hooks.onFrame?.({ direction: 'out', protocol: 'JOINPROTO', summary: 'Echo (99)', masked: 'link check' });
        hooks.onProgress({ kind: 'display', text: 'not claimed: dropped' });
        return { state: 'failed', reason: 'not sent: terminal unreachable' };
      }),
    );
    expect(report).toEqual({ ran: true, state: 'FAILED' });
    const op = await load(operationId);
    expect(op).toMatchObject({ state: 'FAILED', protocolRefs: null, stateReason: 'not sent: terminal unreachable', completedAt: expect.any(Date) });
    expect(op.events.map((e) => [e.kind, e.fromState, e.toState])).toEqual([
      ['created', null, 'PENDING'],
      ['frame', null, null],
      ['transition', 'PENDING', 'FAILED'],
    ]);
    expect((await domainEvents(operationId)).map((e) => e.type)).toEqual(['operation.created', 'operation.completed']);
  });

  it('stores an outcome a driver reports without asking to send as claimed and decided, in one transaction', async () => {
    await rig();
    const operationId = await newOperation('purchase', 330);
    const report = await new OperationExecutor(db).execute(
      { tenantId, operationId },
      fakeDriver(async () => ({ state: 'approved', rrn: '000000000330' })),
    );
    expect(report).toEqual({ ran: true, state: 'APPROVED' });
    const op = await load(operationId);
    expect(op).toMatchObject({ state: 'APPROVED', rrn: '000000000330' });
    expect(op.events.map((e) => [e.kind, e.fromState, e.toState])).toEqual([
      ['created', null, 'PENDING'],
      ['transition', 'PENDING', 'SENT'],
      ['transition', 'SENT', 'APPROVED'],
    ]);
  });

  it('holds the PENDING row against the never-sent sweep while the driver opens its session, until the claim', async () => {
    await rig();
    const handler = new OperationCommandHandler(db, { pendingHoldIntervalMs: 30 });
    const operationId = await newOperation('purchase', 340);
    const inserted = (await load(operationId)).updatedAt;
    const reply = handler.handle(
      { kind: 'operation.execute', tenantId, terminalId, operationId },
      fakeDriver(async (hooks) => {
        // A slow session: the hold moves the row on while it opens.
        await waitFor(async () => (await load(operationId)).updatedAt > inserted, { what: 'the PENDING row held while the session opens' });
        await hooks.beforeSend({ df01: '000340' });
        return { state: 'approved', rrn: '000000000340' };
      }),
    );
    expect(await reply).toEqual({ ok: true, result: { ran: true, state: 'approved' } });
  });
});
