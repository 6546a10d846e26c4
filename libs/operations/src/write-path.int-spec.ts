import { Client } from 'pg';

import { createPrismaClient, Database, type PrismaClient } from '@payorch/db';
import type { OperationCommandCopy } from '@payorch/domain';
import type { TerminalDriver } from '@payorch/drivers';
import { createTestDatabase, socketWriteTexts, type TestDatabase, waitFor } from '@payorch/testing';
import { JoinprotoTerminalSimulator } from '@payorch/testing/joinproto-sim';

import { commandCopyOf, insertOperation, MAX_PROGRESS_PER_RUN, OperationExecutor } from './index';
import { fakeDriver, joinprotoDriverTo } from './testing/fake-driver.testing';

interface Statement {
  sql: string;
  values: unknown[];
  /** Which connection sent it: pipelined transactions of several connections interleave in `recorded`. */
  connection: number;
}

/** Every statement any pg client of this process sends while `recording` is set (Prisma's adapter included). */
const recorded: Statement[] = [];
let recording = false;
const connections = new Map<Client, number>();
const originalQuery = Client.prototype.query;
(Client.prototype as unknown as { query: (...args: unknown[]) => unknown }).query = function (this: Client, ...args: unknown[]) {
  if (recording) {
    const first = args[0] as string | { text?: string; values?: unknown[] };
    const sql = typeof first === 'string' ? first : (first.text ?? '');
    const values = (typeof first === 'string' ? args[1] : first.values) ?? [];
    if (!connections.has(this)) connections.set(this, connections.size);
    recorded.push({ sql: sql.replace(/\s+/g, ' ').trim(), values: values as unknown[], connection: connections.get(this)! });
  }
  return (originalQuery as (...a: unknown[]) => unknown).apply(this, args);
};
/**
 * The cost of one approved purchase on the operation's write path (issues #14 and #19): created as the gateway
 * does and executed as the connector does, counting what reaches PostgreSQL. Issue #14 took it from 39 to 28
 * statements (one compare-and-set per step); issue #19 to one read and two writing transactions on the executor's
 * critical path (read · claim with the refs · outcome, the progress step taken along by the outcome or written in
 * the background) on the bare-driver path, pipelined: before it, 5 transactions and 28 statements with BEGIN/COMMIT.
 */
describe('operation write path (statement budget)', () => {
  let testDb: TestDatabase;
  let owner: PrismaClient;
  let db: Database;
  let sim: JoinprotoTerminalSimulator;
  let tenantId: string;
  let storeId: string;
  let terminalId: string;
  let keys = 0;

  beforeAll(async () => {
    testDb = await createTestDatabase();
    owner = createPrismaClient(testDb.adminUrl, { max: 1 });
    db = Database.connect(testDb.appUrl, 2);
    tenantId = (await owner.tenant.create({ data: { name: 'T' } })).id;
    storeId = (await owner.store.create({ data: { tenantId, name: 'S', timeZone: 'UTC' } })).id;
    terminalId = (await owner.terminal.create({ data: { tenantId, storeId, name: 'POS', protocol: 'JOINPROTO', connection: {} } })).id;
    sim = new JoinprotoTerminalSimulator({ cardTimeoutMs: 30 });
  });

  afterAll(async () => {
    (Client.prototype as unknown as { query: unknown }).query = originalQuery;
    await sim.close();
    await db.close();
    await owner.$disconnect();
    await testDb.drop();
  });

  const create = () =>
    db.withTenantSql(tenantId, (tx) =>
      insertOperation(tx, {
        tenantId,
        terminalId,
        storeId,
        type: 'purchase',
        amount: 1500,
        currency: 'RUB',
        idempotencyKey: `budget-${++keys}`,
        requestHash: 'h',
      }),
    );

  /** Runs the operation with `driver` (and the dispatch's copy of its command), recording every statement of the executor. */
  async function record(operationId: string, driver: TerminalDriver, dispatched?: OperationCommandCopy) {
    recorded.length = 0;
    recording = true;
    try {
      return await new OperationExecutor(db).execute({ tenantId, operationId }, driver, dispatched);
    } finally {
      recording = false;
    }
  }

  it('creates and runs one approved purchase with one read and one compare-and-set per step', async () => {
    const { port } = await sim.listen(0);
    const driver = joinprotoDriverTo(terminalId, port);
    recorded.length = 0;
    recording = true;
    const { row } = await create();
    recording = false;
    const created = splitTransactions(recorded);
    try {
      expect(await record(row.id, driver)).toEqual({ ran: true, state: 'APPROVED' });
    } finally {
      await driver.close();
    }
    const run = splitTransactions(recorded);
    // create: set_config, the insert (which appends the OperationEvent), the DomainEvent.
    expect(created.map((tx) => [tx.kinds, tx.statements.length])).toEqual([[['created'], 3]]);
    // read (no write) · claim with the refs (its terminal's claim lock, then the compare-and-set; committed before the
    // first byte) · outcome; "processing" and the masked
    // protocol frames are taken along by the outcome, or (a slow card) written in transactions of their own off the
    // critical path.
    const background = (tx: RecordedTransaction) => tx.kinds.length > 0 && tx.kinds.every((k) => k === 'progress' || k === 'frame');
    const critical = run.filter((tx) => !background(tx));
    expect(critical.map((tx) => tx.kinds.filter((k) => k !== 'progress' && k !== 'frame'))).toEqual([[], ['transition'], ['transition']]);
    expectRead(critical[0]!);
    expect(run.flatMap((tx) => tx.kinds).filter((k) => k !== 'frame')).toEqual(['transition', 'progress', 'transition']);
    // Background batches, at most one at a time, each waiting PROGRESS_COALESCE_MS for more steps: the held link check
    // with "processing", the request frame, the answer frame; whatever is not written yet goes with the outcome.
    expect(run.filter(background).length).toBeLessThanOrEqual(3);
    expectClaimWithRefs(critical[1]!, { df01: expect.stringMatching(/^\d{6}$/), command: 'Purchase' });
    for (const tx of run.slice(2)) {
      // set_config, then per step the one statement on the row, which appends its OperationEvent and its DomainEvent;
      // a run of consecutive frames is one INSERT … SELECT from the row (no DomainEvent).
      expect(tx.statements.filter((s) => s.sql.includes('"TerminalOperation"'))).toHaveLength(tx.kinds.length);
      expect(tx.statements).toHaveLength(1 + tx.kinds.length);
    }
    // The one read of the row is the executor's, before it opens the session (the claim's lock reads only its terminal id).
    const reads = recorded.filter((s) => /^SELECT .*FROM "(public"\.")?TerminalOperation"/.test(s.sql) && !s.sql.includes('pg_advisory_xact_lock'));
    expect(reads).toEqual([critical[0]!.statements[1]]);
    // Without frames: with the create, 10 statements (11 when the progress step has its own transaction) in 4 (5)
    // transactions, 3 of them writes, 18 (21) with BEGIN and COMMIT, against 13 (14) and 19 (24) while each step's
    // DomainEvent was a statement of its own, and 28 before issue 19; plus the claim's lock of its terminal (issue:
    // operations in doubt block the claim), which travels in the claim's write. The frame journal adds one INSERT per run of
    // consecutive frames in a batch — the link check as the session opens, the request and the answers after
    // "processing": two runs, three when a background batch took the request before the answer came (a busy machine) —
    // and at most one background transaction per run. (The background numbering of the events is not counted.)
    const frameStatements = run.reduce((n, tx) => n + tx.kinds.filter((k) => k === 'frame').length, 0);
    expect(frameStatements).toBeGreaterThanOrEqual(1);
    expect(frameStatements).toBeLessThanOrEqual(3);
    expect(run.reduce((n, tx) => n + tx.statements.length, 0) - frameStatements).toBeLessThanOrEqual(9);
    expect(run.reduce((n, tx) => n + tx.statements.length + 2, 0)).toBeLessThanOrEqual(17 + frameStatements + 2);
    // The journal, in wire order: the simulator's link check (Echo 99 and our answer) as the session opens, then
    // "processing" (persisted with DF01 before the request is written), the request, and the answer, PAN masked.
    const steps = await owner.operationEvent.findMany({ where: { operationId: row.id }, orderBy: { seq: 'asc' } });
    const timeline = steps.filter((s) => s.kind === 'progress' || s.kind === 'frame').map((s) => s.data as Record<string, unknown>);
    const processing = timeline.findIndex((d) => d.progress === 'status' && d.subStatus === 'processing');
    expect(timeline.slice(0, processing).map((d) => [d.direction, d.summary])).toEqual([
      ['in', 'Echo (99)'],
      ['out', 'Echo (99)'],
    ]);
    expect(timeline.slice(processing + 1)).toEqual([
      { direction: 'out', summary: 'Purchase (01)', masked: expect.stringContaining('DF05=000000001500'), at: expect.any(String) },
      { direction: 'in', summary: 'Purchase (01)', masked: expect.stringMatching(/DF04=\d{6}\*+\d{4} .*DF0A=<\d+ bytes>/), at: expect.any(String) },
    ]);
    expect(steps.at(-1)!.kind).toBe('transition');
  });

  it('journals frames in order with progress, one INSERT per run of frames, in the outcome transaction', async () => {
    const { row } = await create();
    const frame = (direction: 'out' | 'in', summary: string) => ({ direction, protocol: 'JOINPROTO' as const, summary, masked: `${summary} masked` });
    const report = await record(
      row.id,
      fakeDriver(async (hooks) => {
        await hooks.beforeSend({ df01: '000004' });
        hooks.onProgress({ kind: 'status', subStatus: 'processing' });
        hooks.onFrame?.(frame('out', 'Purchase (01)'));
        hooks.onFrame?.(frame('in', 'Relay (91)'));
        hooks.onProgress({ kind: 'display', text: 'Insert card' });
        hooks.onFrame?.(frame('in', 'Purchase (01)'));
        return { state: 'approved', rrn: '000000000004' };
      }),
    );
    expect(report).toEqual({ ran: true, state: 'APPROVED' });
    const run = splitTransactions(recorded);
    expect(run.map((tx) => tx.kinds)).toEqual([[], ['transition'], ['progress', 'frame', 'progress', 'frame', 'transition']]);
    // 2 (read) + 3 (claim with refs: set_config, the terminal's claim lock, the compare-and-set) + (set_config + 3 steps,
    // each one statement with its events + 2 frame INSERTs).
    expect(run.reduce((n, tx) => n + tx.statements.length, 0)).toBe(11);
    const steps = await owner.operationEvent.findMany({ where: { operationId: row.id }, orderBy: { seq: 'asc' } });
    expect(
      steps.map((s) => [
        s.kind,
        (s.data as { summary?: string; progress?: string } | null)?.summary ?? (s.data as { progress?: string } | null)?.progress ?? null,
      ]),
    ).toEqual([
      ['created', null],
      ['transition', null],
      ['progress', 'status'],
      ['frame', 'Purchase (01)'],
      ['frame', 'Relay (91)'],
      ['progress', 'display'],
      ['frame', 'Purchase (01)'],
      ['transition', null],
    ]);
    expect(steps[3]).toMatchObject({ fromState: null, toState: null, data: { direction: 'out', masked: 'Purchase (01) masked', at: expect.any(String) } });
  });

  it('writes at most MAX_PROGRESS_PER_RUN progress steps of a run, says how many more came, and stores the outcome', async () => {
    const { row } = await create();
    const report = await new OperationExecutor(db).execute(
      { tenantId, operationId: row.id },
      fakeDriver(async (hooks) => {
        await hooks.beforeSend({ df01: '000006' });
        // A terminal that pushes progress without end (a hostile one, or a chatty JPAY event stream).
        for (let i = 0; i < MAX_PROGRESS_PER_RUN + 50; i++) hooks.onProgress({ kind: 'display', text: `step ${i}` });
        return { state: 'approved', rrn: '000000000006' };
      }),
    );
    expect(report).toEqual({ ran: true, state: 'APPROVED' });
    expect(await owner.operationEvent.count({ where: { operationId: row.id, kind: 'progress' } })).toBe(MAX_PROGRESS_PER_RUN);
    const note = await owner.operationEvent.findFirst({ where: { operationId: row.id, kind: 'frame' } });
    expect(note?.data).toMatchObject({ direction: null, summary: 'progress not recorded', masked: expect.stringContaining('50 more progress steps') });
    expect(await owner.domainEvent.count({ where: { subjectId: row.id, type: 'operation.progress' } })).toBeLessThanOrEqual(MAX_PROGRESS_PER_RUN + 1);
  });

  it('journals no frame with recordFrames off, and does not ask the driver for them', async () => {
    const { row } = await create();
    let asked = true;
    const report = await new OperationExecutor(db, { recordFrames: false }).execute(
      { tenantId, operationId: row.id },
      fakeDriver(async (hooks) => {
        asked = hooks.onFrame !== undefined;
        await hooks.beforeSend({ df01: '000005' });
        return { state: 'approved', rrn: '000000000005' };
      }),
    );
    expect(report).toEqual({ ran: true, state: 'APPROVED' });
    expect(asked).toBe(false);
    expect(await owner.operationEvent.count({ where: { operationId: row.id, kind: 'frame' } })).toBe(0);
  });

  it('runs a purchase whose outcome follows its progress at once in two writing transactions after one read: claim with refs, progress + outcome', async () => {
    const { row } = await create();
    const report = await record(
      row.id,
      fakeDriver(async (hooks) => {
        await hooks.beforeSend({ df01: '000001' });
        hooks.onProgress({ kind: 'status', subStatus: 'processing' });
        hooks.onProgress({ kind: 'display', text: 'Insert card' });
        return { state: 'approved', rrn: '123456789012' };
      }),
    );
    expect(report).toEqual({ ran: true, state: 'APPROVED' });
    const run = splitTransactions(recorded);
    expect(run.map((tx) => tx.kinds)).toEqual([[], ['transition'], ['progress', 'progress', 'transition']]);
    expectRead(run[0]!);
    expectClaimWithRefs(run[1]!, { df01: '000001' });
    // 2 (read) + 3 (claim with refs: set_config, the terminal's claim lock, the compare-and-set) + (set_config + 3 steps,
    // each one statement with its OperationEvent and DomainEvent).
    expect(run.reduce((n, tx) => n + tx.statements.length, 0)).toBe(9);
    // Every step is logged and published, in order.
    const steps = await owner.operationEvent.findMany({ where: { operationId: row.id }, orderBy: { createdAt: 'asc' } });
    expect(steps.map((s) => [s.kind, s.toState])).toEqual([
      ['created', 'PENDING'],
      ['transition', 'SENT'],
      ['progress', 'IN_PROGRESS'],
      ['progress', null],
      ['transition', 'APPROVED'],
    ]);
    await db.eventsSettled();
    const events = await owner.domainEvent.findMany({ where: { subjectId: row.id }, orderBy: { seq: 'asc' } });
    expect(events.map((e) => e.type)).toEqual(['operation.created', 'operation.progress', 'operation.progress', 'operation.progress', 'operation.completed']);
  });

  it('runs a purchase dispatched with its command without reading it first: claim with refs, then progress + outcome', async () => {
    // Issue 19: the executor's read (the row, its command, the terminal's operations in doubt) was a transaction on every
    // payment's critical path; the gateway now dispatches the command it has just inserted, checked at the claim.
    const { row } = await create();
    const copy = commandCopyOf(row);
    expect(copy).toEqual({ type: 'purchase', amount: 1500, currency: 'RUB' });
    let sent: unknown;
    const report = await record(
      row.id,
      {
        ...fakeDriver(async () => ({ state: 'failed', reason: 'unused' })),
        execute: async (command, hooks) => {
          await hooks.beforeSend({ df01: '000011' });
          sent = command;
          hooks.onProgress({ kind: 'status', subStatus: 'processing' });
          return { state: 'approved', rrn: '000000000011' };
        },
      },
      copy,
    );
    expect(report).toEqual({ ran: true, state: 'APPROVED' });
    expect(sent).toEqual({ operationId: row.id, type: 'purchase', amount: 1500, currency: 'RUB' });
    const run = splitTransactions(recorded);
    expect(run.map((tx) => tx.kinds)).toEqual([['transition'], ['progress', 'transition']]);
    expectClaimWithRefs(run[0]!, { df01: '000011' });
    // No read of the row at all: the claim's lock reads only its terminal id, the compare-and-sets return the row.
    expect(recorded.filter((s) => /^SELECT .*FROM "(public"\.")?TerminalOperation"/.test(s.sql) && !s.sql.includes('pg_advisory_xact_lock'))).toEqual([]);
    // 3 (claim with refs) + 3 (set_config, the progress step, the outcome): 2 statements fewer than with the read.
    expect(run.reduce((n, tx) => n + tx.statements.length, 0)).toBe(6);
  });

  it('does not send a dispatched command that is not the stored operation, and fails it as never sent', async () => {
    const { row } = await create();
    const terminal = sendingDriver('000012');
    // A copy that lies about the amount (a bug, or a forged bus message): PostgreSQL's row decides.
    const report = await record(row.id, terminal.driver, { ...commandCopyOf(row)!, amount: 150_000 });
    expect(terminal.wrote).toBe(false);
    expect(report).toEqual({ ran: false, state: 'FAILED' });
    const stored = await owner.terminalOperation.findUniqueOrThrow({ where: { id: row.id } });
    expect(stored).toMatchObject({ state: 'FAILED', stateReason: 'not sent: the dispatched command is not the stored operation', amount: 1500n });
    expect(stored.completedAt).not.toBeNull();
    const transitions = await owner.operationEvent.findMany({ where: { operationId: row.id, kind: 'transition' }, orderBy: { seq: 'asc' } });
    expect(transitions.map((t) => t.toState)).toEqual(['SENT', 'FAILED']);
  });

  it('refuses at the claim a dispatched command whose terminal has an operation in doubt, without sending it', async () => {
    const { row: first } = await create();
    await owner.terminalOperation.update({ where: { id: first.id }, data: { state: 'SENT', protocolRefs: { df01: '000013' } } });
    try {
      const { row } = await create();
      const terminal = sendingDriver('000014');
      const report = await record(row.id, terminal.driver, commandCopyOf(row));
      expect(terminal.wrote).toBe(false);
      expect(report).toEqual({ ran: false, state: 'FAILED' });
      expect(await owner.terminalOperation.findUniqueOrThrow({ where: { id: row.id } })).toMatchObject({
        state: 'FAILED',
        error: { code: 'TERMINAL_RECOVERING', operationId: first.id, state: 'sent' },
      });
    } finally {
      await owner.terminalOperation.update({ where: { id: first.id }, data: { state: 'FAILED', completedAt: new Date() } });
    }
  });

  it('runs a dispatched command already claimed by another run not at all', async () => {
    const { row } = await create();
    const first = sendingDriver('000015');
    expect(await record(row.id, first.driver, commandCopyOf(row))).toEqual({ ran: true, state: 'APPROVED' });
    expect(first.wrote).toBe(true);
    const terminal = sendingDriver('000016');
    const again = await record(row.id, terminal.driver, commandCopyOf(row));
    expect(terminal.wrote).toBe(false);
    expect(again).toEqual({ ran: false, state: 'APPROVED' });
    expect(await owner.terminalOperation.findUniqueOrThrow({ where: { id: row.id } })).toMatchObject({ state: 'APPROVED', protocolRefs: { df01: '000015' } });
  });

  it('writes the claim, and the progress steps with the outcome, each with its COMMIT in one write: one round trip each', async () => {
    // Issue 19: a step's DomainEvent was a second statement, sent once the compare-and-set had answered, so the claim
    // (before the first byte reaches the terminal) and the outcome cost two round trips each.
    const plain = Database.connect(testDb.appUrl, 1, { preparedStatements: false }); // statements travel as text
    try {
      const { row } = await create();
      const writes = await socketWriteTexts(() =>
        new OperationExecutor(plain).execute(
          { tenantId, operationId: row.id },
          fakeDriver(async (hooks) => {
            await hooks.beforeSend({ df01: '000009' });
            hooks.onProgress({ kind: 'status', subStatus: 'processing' });
            return { state: 'approved', rrn: '000000000009' };
          }),
        ),
      );
      const claim = writes.filter((w) => w.includes('"protocolRefs" ='));
      expect(claim).toHaveLength(1);
      // The terminal's claim lock goes ahead of the compare-and-set in the same write: no round trip of its own.
      expect(claim[0]).toContain('pg_advisory_xact_lock');
      expect(claim[0]!.indexOf('pg_advisory_xact_lock')).toBeLessThan(claim[0]!.indexOf('UPDATE "TerminalOperation"'));
      expect(claim[0]).toContain('INSERT INTO "DomainEvent"');
      expect(claim[0]).toContain('COMMIT');
      // The event sequencer's call travels with that COMMIT: the transaction announced its event when it sent the
      // statement (expectEvents), although the event's row comes back only with the answer.
      expect(claim[0]).toContain('payorch_sequence_events');
      const outcome = writes.filter((w) => w.includes('"completedAt" ='));
      expect(outcome).toHaveLength(1);
      // The progress step's statement, the outcome's, and COMMIT.
      expect(outcome[0]!.split('INSERT INTO "DomainEvent"')).toHaveLength(3);
      expect(outcome[0]).toContain('COMMIT');
      expect(await owner.terminalOperation.findUniqueOrThrow({ where: { id: row.id } })).toMatchObject({ state: 'APPROVED' });
    } finally {
      await plain.close();
    }
  });

  it('writes progress in the background while the terminal works, before the outcome', async () => {
    const { row } = await create();
    const report = await record(
      row.id,
      fakeDriver(async (hooks) => {
        await hooks.beforeSend({ df01: '000002' });
        hooks.onProgress({ kind: 'status', subStatus: 'waiting_card' });
        // The card takes a while: the step is on the row (and the live stream) before the outcome.
        await waitFor(async () => (await owner.terminalOperation.findUniqueOrThrow({ where: { id: row.id } })).subStatus === 'waiting_card', {
          what: 'progress written before the outcome',
        });
        return { state: 'declined', responseCode: '05' };
      }),
    );
    expect(report).toEqual({ ran: true, state: 'DECLINED' });
    expect(splitTransactions(recorded).map((tx) => tx.kinds)).toEqual([[], ['transition'], ['progress'], ['transition']]);
  });

  it('stores the outcome even when its progress steps cannot be written', async () => {
    const { row } = await create();
    const report = await record(
      row.id,
      fakeDriver(async (hooks) => {
        await hooks.beforeSend({ df01: '000003' });
        // PostgreSQL's jsonb refuses \u0000: this step's write fails, and the outcome's transaction with it.
        hooks.onProgress({ kind: 'display', text: 'bad\u0000text' });
        return { state: 'approved', rrn: '000000000003' };
      }),
    );
    expect(report).toEqual({ ran: true, state: 'APPROVED' });
    const stored = await owner.terminalOperation.findUniqueOrThrow({ where: { id: row.id }, include: { events: { orderBy: { createdAt: 'asc' } } } });
    expect(stored).toMatchObject({ state: 'APPROVED', rrn: '000000000003' });
    expect(stored.events.map((e) => e.kind)).toEqual(['created', 'transition', 'transition']);
  });

  it("retries a sent command's outcome whose write was lost with its connection, and returns only once it is stored", async () => {
    // Before, the run threw and left the row SENT while the terminal's queue moved on to the next command, whose
    // answer then replaced this one's as the terminal's last (recovery later stored FAILED for an approved payment).
    const { row } = await create();
    let sent = false;
    let failures = 0;
    const withTenantSql = db.withTenantSql.bind(db);
    const spy = jest.spyOn(db, 'withTenantSql').mockImplementation(((...args: Parameters<Database['withTenantSql']>) => {
      if (sent && failures === 0) {
        failures += 1;
        return Promise.reject(new Error('Connection terminated unexpectedly'));
      }
      return withTenantSql(...args);
    }) as Database['withTenantSql']);
    try {
      const report = await new OperationExecutor(db, { outcomeRetryMs: () => 1 }).execute(
        { tenantId, operationId: row.id },
        fakeDriver(async (hooks) => {
          await hooks.beforeSend({ df01: '000004' });
          sent = true;
          return { state: 'approved', rrn: '000000000004' };
        }),
      );
      expect(failures).toBe(1);
      expect(report).toEqual({ ran: true, state: 'APPROVED' });
      expect(await owner.terminalOperation.findUniqueOrThrow({ where: { id: row.id } })).toMatchObject({ state: 'APPROVED', rrn: '000000000004' });
    } finally {
      spy.mockRestore();
    }
  });

  it.each([
    ['', false],
    // SSI reads its baseline and JPAY its anchors (journaled frames) before the claim: until 2026-12-07 a run with
    // progress steps to store took another path that left the row SENT.
    [' (frames journaled before the claim)', true],
  ])('fails at once a run whose claim committed but whose answer was lost: the driver sent nothing%s', async (_, framesBeforeClaim) => {
    // Before, the row stayed SENT (in flight for a settlement) until the recovery sweep made it UNKNOWN ten minutes later.
    const { row } = await create();
    let claiming = false;
    const withTenantSql = db.withTenantSql.bind(db);
    const spy = jest.spyOn(db, 'withTenantSql').mockImplementation((async (...args: Parameters<Database['withTenantSql']>) => {
      if (!claiming) return withTenantSql(...args);
      claiming = false;
      await withTenantSql(...args);
      throw new Error('Connection terminated unexpectedly');
    }) as Database['withTenantSql']);
    let sent = false;
    try {
      const report = await new OperationExecutor(db).execute(
        { tenantId, operationId: row.id },
        fakeDriver(async (hooks) => {
          if (framesBeforeClaim) hooks.onFrame?.({ direction: 'out', protocol: 'SSI_ECR', summary: 'GetLastResult', masked: 'GetLastResult' });
          claiming = true;
          try {
            await hooks.beforeSend({ df01: '000006' });
            sent = true;
            return { state: 'approved', rrn: '000000000006' };
          } catch {
            // The driver contract: beforeSend refused, nothing is sent.
            return { state: 'failed', reason: 'not sent' };
          }
        }),
      );
      expect(sent).toBe(false);
      expect(report).toEqual({ ran: false, state: 'FAILED' });
      expect(await owner.terminalOperation.findUniqueOrThrow({ where: { id: row.id } })).toMatchObject({
        state: 'FAILED',
        protocolRefs: { df01: '000006' },
        completedAt: expect.any(Date),
      });
    } finally {
      spy.mockRestore();
    }
  });

  it('stores a sent command as UNKNOWN when PostgreSQL refuses its outcome, so the gate keeps new work off the terminal', async () => {
    const { row } = await create();
    const report = await new OperationExecutor(db).execute(
      { tenantId, operationId: row.id },
      fakeDriver(async (hooks) => {
        await hooks.beforeSend({ df01: '000005' });
        // text refuses \u0000: the outcome itself cannot be stored.
        return { state: 'approved', rrn: 'bad\u0000rrn' };
      }),
    );
    expect(report).toEqual({ ran: true, state: 'UNKNOWN' });
    const stored = await owner.terminalOperation.findUniqueOrThrow({ where: { id: row.id }, include: { events: { orderBy: { createdAt: 'asc' } } } });
    expect(stored.state).toBe('UNKNOWN');
    expect(JSON.stringify(stored.events.at(-1)!.data)).toContain('the outcome could not be stored');
    // Decided (as a human would after asking the terminal), so the terminal takes the next tests' operations.
    await owner.terminalOperation.update({ where: { id: row.id }, data: { state: 'DECLINED', completedAt: new Date() } });
  });

  it("keeps running when a migration adds a column to TerminalOperation under the connections' prepared statements", async () => {
    const purchase = (df01: string) =>
      fakeDriver(async (hooks) => {
        await hooks.beforeSend({ df01 });
        hooks.onProgress({ kind: 'status', subStatus: 'processing' });
        return { state: 'approved', rrn: `000000${df01}` };
      });
    // Prepares the write path's statements on the connections (the pool has two).
    for (const df01 of ['000010', '000011']) expect(await record((await create()).row.id, purchase(df01))).toEqual({ ran: true, state: 'APPROVED' });
    await owner.$executeRawUnsafe('ALTER TABLE "TerminalOperation" ADD COLUMN "addedByMigration" int');
    try {
      for (const df01 of ['000012', '000013']) expect(await record((await create()).row.id, purchase(df01))).toEqual({ ran: true, state: 'APPROVED' });
    } finally {
      await owner.$executeRawUnsafe('ALTER TABLE "TerminalOperation" DROP COLUMN "addedByMigration"');
    }
  });
});

/** The executor's read before the session: the tenant scope and one SELECT, nothing written. */
function expectRead(tx: RecordedTransaction): void {
  expect(tx.statements).toHaveLength(2);
  expect(tx.statements[1]!.sql).toMatch(/^SELECT .* AS "original" FROM "TerminalOperation" o WHERE o\."id" = \$1::uuid$/);
}

/**
 * The claim: the terminal's claim lock (claims of one terminal one at a time, so that the guard "no other operation of
 * the terminal in doubt" holds), then ONE statement, the compare-and-set PENDING → SENT that stores the protocol
 * references with its events.
 */
function expectClaimWithRefs(tx: RecordedTransaction, refs: Record<string, unknown>): void {
  const updates = tx.statements.filter((s) => s.sql.includes('UPDATE "TerminalOperation"'));
  expect(updates).toHaveLength(1);
  const cas = updates[0];
  expect(cas!.sql).toContain('"protocolRefs" =');
  expect(cas!.values).toContainEqual(['PENDING']);
  expect(cas!.values.map((v) => (typeof v === 'string' && v.startsWith('{') ? JSON.parse(v) : v))).toContainEqual(refs);
  expect(cas!.sql).toContain('INSERT INTO "DomainEvent"');
  expect(tx.statements).toHaveLength(3);
  expect(tx.statements[1]!.sql).toMatch(/^SELECT pg_advisory_xact_lock\(.*"terminalId".*\) FROM "TerminalOperation" o WHERE o\."id" = \$1::uuid$/);
  expect(tx.statements[2]).toBe(cas);
}

interface RecordedTransaction {
  /** The OperationEvent kinds its owner statements wrote, in order. */
  kinds: string[];
  /** Statements between BEGIN and COMMIT. */
  statements: Statement[];
}

const STEP_KINDS = ['transition', 'refs', 'progress', 'recovered', 'frame'];

function splitTransactions(statements: readonly Statement[]): RecordedTransaction[] {
  const out: RecordedTransaction[] = [];
  const open = new Map<number, Statement[]>();
  for (const statement of statements) {
    if (statement.sql === 'BEGIN') open.set(statement.connection, []);
    else if (statement.sql === 'COMMIT' || statement.sql === 'ROLLBACK') {
      const transaction = open.get(statement.connection)!;
      open.delete(statement.connection);
      const writes = transaction.filter((s) => s.sql.includes('INSERT INTO "OperationEvent"'));
      const kinds = writes.map((w) =>
        w.sql.includes("'created'") ? 'created' : ((w.values.find((v) => STEP_KINDS.includes(v as string)) as string | undefined) ?? '(none)'),
      );
      out.push({ kinds, statements: transaction });
    } else open.get(statement.connection)?.push(statement);
  }
  return out;
}

/** A driver that asks to send (`beforeSend` with DF01 `df01`) and, if allowed, "writes" the command and is approved. */
function sendingDriver(df01: string): { driver: TerminalDriver; wrote: boolean } {
  const terminal = { wrote: false, driver: undefined as unknown as TerminalDriver };
  terminal.driver = fakeDriver(async (hooks) => {
    try {
      await hooks.beforeSend({ df01 });
    } catch (error) {
      return { state: 'failed', reason: `not sent: ${(error as Error).message}` };
    }
    terminal.wrote = true;
    return { state: 'approved', rrn: `000000${df01}` };
  });
  return terminal;
}
