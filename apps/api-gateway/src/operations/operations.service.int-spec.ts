import { Client } from 'pg';

import { createPrismaClient, Database, type PrismaClient } from '@payorch/db';
import type { TenantContext, TerminalCommand } from '@payorch/domain';
import type { Logger } from '@payorch/logging';
import type { TerminalCommandDispatcher } from '@payorch/operations';
import { createTestDatabase, type TestDatabase } from '@payorch/testing';

import { OperationsService } from './operations.service';
import type { OperationOutcomeWaiter } from './outcome-waiter';

/** Every statement any pg client of this process sends while `recording` is set (Prisma's adapter and SqlTransaction alike). */
const recorded: string[] = [];
let recording = false;
const originalQuery = Client.prototype.query;
(Client.prototype as unknown as { query: (...args: unknown[]) => unknown }).query = function (this: Client, ...args: unknown[]) {
  if (recording) {
    const first = args[0] as string | { text?: string };
    recorded.push((typeof first === 'string' ? first : (first.text ?? '')).replace(/\s+/g, ' ').trim());
  }
  return (originalQuery as (...a: unknown[]) => unknown).apply(this, args);
};

/**
 * The gateway's half of the operation hot path (issue 19): creating an operation is one pipelined transaction
 * (the idempotency key and the terminal gate read together, the insert, its event and audit row), and the answer
 * one read. Before, the same create took 9 statements in a Prisma transaction (the gate alone four: terminal,
 * agent, store, oldest UNKNOWN) and the answer another Prisma transaction.
 */
describe(`${OperationsService.name} (create on the hot path)`, () => {
  let testDb: TestDatabase;
  let owner: PrismaClient;
  let db: Database;
  let sut: OperationsService;
  let ctx: TenantContext;
  let terminalId: string;
  const dispatched: TerminalCommand[] = [];

  beforeAll(async () => {
    testDb = await createTestDatabase();
    owner = createPrismaClient(testDb.adminUrl, { max: 1 });
    db = Database.connect(testDb.appUrl, 2);
    const tenantId = (await owner.tenant.create({ data: { name: 'T' } })).id;
    const storeId = (await owner.store.create({ data: { tenantId, name: 'S', timeZone: 'UTC' } })).id;
    terminalId = (await owner.terminal.create({ data: { tenantId, storeId, name: 'POS', protocol: 'JOINPROTO', connection: {} } })).id;
    ctx = { tenantId, actor: { type: 'api_key', id: null }, requestId: 'req-1' };
    const dispatcher: TerminalCommandDispatcher = {
      dispatch: async (command) => {
        dispatched.push(command);
        return { ok: true, result: { queued: true } };
      },
    };
    const logger = { error: () => undefined } as unknown as Logger;
    sut = new OperationsService(db, dispatcher, logger, {} as OperationOutcomeWaiter);
  });

  afterAll(async () => {
    (Client.prototype as unknown as { query: unknown }).query = originalQuery;
    await sut.onApplicationShutdown();
    await db.close();
    await owner.$disconnect();
    await testDb.drop();
  });

  it('creates an operation in one transaction whose gate is one statement, and answers with one read', async () => {
    recorded.length = 0;
    recording = true;
    let created;
    try {
      created = await sut.create(ctx, terminalId, { type: 'purchase', amount: 1500, currency: 'RUB' }, 'hot-path-1', 0);
    } finally {
      recording = false;
    }
    expect(created).toMatchObject({ terminalId, state: 'pending', amount: 1500 });
    await sut.onApplicationShutdown();
    // With the command as inserted: the connector's executor checks it at its claim instead of reading the row first.
    expect(dispatched).toEqual([
      {
        kind: 'operation.execute',
        tenantId: ctx.tenantId,
        terminalId,
        operationId: created.id,
        replyWhen: 'queued',
        command: { type: 'purchase', amount: 1500, currency: 'RUB' },
      },
    ]);
    const transactions = recorded.filter((s) => s === 'BEGIN').length;
    // The background numbering of the committed event (Database.sequenceEvents) is not the request's.
    const statements = recorded.filter((s) => !['BEGIN', 'COMMIT', 'ROLLBACK'].includes(s) && !s.includes('payorch_sequence_events'));
    // create (set_config, key, gate, insert, event, audit) · the answer (set_config, the row).
    expect(transactions).toBe(2);
    expect(statements).toHaveLength(8);
    expect(statements.filter((s) => /FROM "(public"\.")?Terminal"/.test(s))).toHaveLength(1);
    expect(await owner.auditLog.count({ where: { tenantId: ctx.tenantId, action: 'operation.create', resourceId: created.id } })).toBe(1);
    expect(await owner.domainEvent.count({ where: { tenantId: ctx.tenantId, type: 'operation.created', subjectId: created.id } })).toBe(1);
  });

  it('dispatches a reversal without a copy of its command: its executor reads the original it refers to', async () => {
    const original = await sut.create(ctx, terminalId, { type: 'purchase', amount: 900, currency: 'RUB' }, 'reversal-original', 0);
    await owner.terminalOperation.update({ where: { id: original.id }, data: { state: 'APPROVED', rrn: '000000000901', completedAt: new Date() } });
    dispatched.length = 0;
    const refund = await sut.create(ctx, terminalId, { type: 'refund', amount: 400, currency: 'RUB', originalOperationId: original.id }, 'reversal-refund', 0);
    await sut.onApplicationShutdown();
    expect(dispatched).toEqual([{ kind: 'operation.execute', tenantId: ctx.tenantId, terminalId, operationId: refund.id, replyWhen: 'queued' }]);
  });

  it('answers a repeat of the key with its operation, and refuses the key for another request (409)', async () => {
    const again = await sut.create(ctx, terminalId, { type: 'purchase', amount: 1500, currency: 'RUB' }, 'hot-path-1', 0);
    expect(again).toMatchObject({ state: 'pending', amount: 1500 });
    await expect(sut.create(ctx, terminalId, { type: 'purchase', amount: 1600, currency: 'RUB' }, 'hot-path-1', 0)).rejects.toMatchObject({
      code: 'IDEMPOTENCY_KEY_REUSED',
    });
  });

  it('refuses new work on a disabled terminal or one that is recovering an UNKNOWN operation, writing nothing', async () => {
    const before = await owner.terminalOperation.count();
    await owner.terminal.update({ where: { id: terminalId }, data: { status: 'DISABLED' } });
    await expect(sut.create(ctx, terminalId, { type: 'purchase', amount: 100, currency: 'RUB' }, 'hot-path-2', 0)).rejects.toMatchObject({
      code: 'TERMINAL_DISABLED',
    });
    await owner.terminal.update({ where: { id: terminalId }, data: { status: 'ONLINE' } });
    const unknown = await owner.terminalOperation.findFirstOrThrow({ where: { terminalId } });
    await owner.terminalOperation.update({ where: { id: unknown.id }, data: { state: 'UNKNOWN' } });
    await expect(sut.create(ctx, terminalId, { type: 'purchase', amount: 100, currency: 'RUB' }, 'hot-path-3', 0)).rejects.toMatchObject({
      code: 'TERMINAL_RECOVERING',
      details: { operationId: unknown.id },
    });
    await expect(
      sut.create(ctx, '00000000-0000-4000-8000-000000000000', { type: 'purchase', amount: 100, currency: 'RUB' }, 'hot-path-4', 0),
    ).rejects.toMatchObject({
      code: 'NOT_FOUND',
    });
    expect(await owner.terminalOperation.count()).toBe(before);
  });

  it("queues new work behind an operation of the terminal that is sent or in progress (the executor's claim is the safety), not behind an unknown one", async () => {
    // A payment in progress is never interrupted and new work waits in the terminal's queue; a row left SENT by an
    // executor that is gone is refused at the claim (libs/operations in-doubt.int-spec), never here.
    const { storeId } = await owner.terminal.findUniqueOrThrow({ where: { id: terminalId } });
    const other = (await owner.terminal.create({ data: { tenantId: ctx.tenantId, storeId, name: 'POS 2', protocol: 'JOINPROTO', connection: {} } })).id;
    const body = { type: 'purchase' as const, amount: 100, currency: 'RUB' };
    const first = await sut.create(ctx, other, body, 'behind-1', 0);
    for (const state of ['SENT', 'IN_PROGRESS'] as const) {
      await owner.terminalOperation.update({ where: { id: first.id }, data: { state, protocolRefs: { df01: '000001' } } });
      expect(await sut.create(ctx, other, body, `behind-${state}`, 0)).toMatchObject({ terminalId: other, state: 'pending' });
    }
    await owner.terminalOperation.update({ where: { id: first.id }, data: { state: 'UNKNOWN' } });
    await expect(sut.create(ctx, other, body, 'behind-UNKNOWN', 0)).rejects.toMatchObject({
      code: 'TERMINAL_RECOVERING',
      details: { terminalId: other, operationId: first.id, state: 'unknown', retryAfterSeconds: 10 },
    });
  });
});
