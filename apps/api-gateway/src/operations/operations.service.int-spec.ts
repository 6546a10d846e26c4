import { randomBytes, randomUUID } from 'node:crypto';

import { Client } from 'pg';

import { createPrismaClient, Database, type PrismaClient, type PublishedEvent } from '@payorch/db';
import { SecretBox, type TenantContext, type TerminalCommand } from '@payorch/domain';
import type { Logger } from '@payorch/logging';
import { type Publisher, redisEventSink, type TerminalCommandDispatcher, transitionOperation } from '@payorch/operations';
import { createTestDatabase, type TestDatabase, waitFor as waitUntil } from '@payorch/testing';

import type { EventHub, HubListener } from '../events/event-hub';
import { OperationsService } from './operations.service';
import { OperationOutcomeWaiter } from './outcome-waiter';

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

afterAll(() => {
  (Client.prototype as unknown as { query: unknown }).query = originalQuery;
});

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

/**
 * `?wait=` on the hot path (issue 19: at most three transactions on an operation's critical path — the create, the
 * claim, the outcome): the event that ends the run carries the operation as its transition wrote it
 * (`PublishedEvent.subject`), sealed by its publisher with the deployment's master key, and the request answers with
 * that, without reading the row again. Before, every `?wait=` answer was a fourth transaction (set_config and the row)
 * after the outcome. A message whose view is not sealed by a key the gateway holds (an older connector, a forgery by
 * anyone able to PUBLISH on Redis) only ends the wait: the answer is then read from PostgreSQL, as before.
 */
describe(`${OperationsService.name} (?wait= answered from the run-over event)`, () => {
  let testDb: TestDatabase;
  let owner: PrismaClient;
  let db: Database;
  let ctx: TenantContext;
  let storeId: string;
  const newKey = (id: string) => `${id}:${randomBytes(32).toString('base64')}`;
  /** The gateway's and its connectors' master key. */
  const secrets = SecretBox.fromConfig(newKey('k1'));
  const listeners = new Set<HubListener>();
  /** A hub as Redis pub/sub delivers: each published message, parsed, to every listener of the tenant. */
  const hub = {
    add: async (_tenantId: string, listener: HubListener) => {
      listeners.add(listener);
      return () => listeners.delete(listener);
    },
  } as unknown as EventHub;
  /** What a message becomes between its publisher and the gateway (a forger on Redis); identity by default. */
  let onTheWay = (message: Record<string, unknown>) => message;
  const redis: Publisher = {
    publish: async (_channel, message) => {
      const received = onTheWay(JSON.parse(message) as Record<string, unknown>) as unknown as PublishedEvent;
      for (const listener of [...listeners]) listener.deliver(received);
      return 1;
    },
  };
  /** The connector's publisher: the production event sink, with the deployment's key (or another, or none). */
  let sink = redisEventSink(redis, 'p', undefined, secrets);
  type Outcome = 'APPROVED' | 'DECLINED' | 'UNKNOWN';
  /** What the connector's executor writes for a run: the claim, then the outcome, each transaction's events published after it. */
  const run = async (operationId: string, outcome: Outcome) => {
    for (const [from, to, event] of [
      ['PENDING', 'SENT', undefined],
      ['SENT', outcome, outcome === 'UNKNOWN' ? 'operation.unknown' : 'operation.completed'],
    ] as const) {
      const written = await db.withTenantSql(ctx, (tx) =>
        transitionOperation(tx, {
          operationId,
          from: [from],
          to,
          set: to === 'APPROVED' ? { approvalCode: 'A1B2C3', rrn: '000000000777', maskedPan: '220000******0004', responseCode: '00' } : {},
          step: { kind: 'transition', event },
        }),
      );
      if (written?.event) sink([written.event]);
    }
  };
  let runOutcome: Outcome = 'APPROVED';

  beforeAll(async () => {
    testDb = await createTestDatabase();
    owner = createPrismaClient(testDb.adminUrl, { max: 1 });
    db = Database.connect(testDb.appUrl, 2);
    const tenantId = (await owner.tenant.create({ data: { name: 'T' } })).id;
    storeId = (await owner.store.create({ data: { tenantId, name: 'S', timeZone: 'UTC' } })).id;
    ctx = { tenantId, actor: { type: 'api_key', id: null }, requestId: 'req-2' };
  });

  afterEach(() => {
    onTheWay = (message) => message;
    sink = redisEventSink(redis, 'p', undefined, secrets);
  });

  afterAll(async () => {
    await db.close();
    await owner.$disconnect();
    await testDb.drop();
  });

  /** Creates a purchase with `?wait=` on a terminal of its own (an UNKNOWN run leaves its terminal recovering); the request's statements. */
  const waitFor = async (outcome: Outcome, amount: number) => {
    runOutcome = outcome;
    const dispatcher: TerminalCommandDispatcher = {
      dispatch: async (command) => {
        // The connector's statements are not the request's: only the gateway's are counted.
        const was = recording;
        recording = false;
        try {
          if (command.kind === 'operation.execute') await run(command.operationId, runOutcome);
        } finally {
          recording = was;
        }
        return { ok: true, result: { queued: true } };
      },
    };
    const logger = { error: () => undefined, warn: () => undefined } as unknown as Logger;
    const sut = new OperationsService(db, dispatcher, logger, new OperationOutcomeWaiter(hub, db, logger, undefined, undefined, secrets));
    const terminalId = (await owner.terminal.create({ data: { tenantId: ctx.tenantId, storeId, name: 'POS', protocol: 'JOINPROTO', connection: {} } })).id;
    recorded.length = 0;
    recording = true;
    try {
      const answer = await sut.create(ctx, terminalId, { type: 'purchase', amount, currency: 'RUB' }, `wait-${randomUUID()}`, 30_000);
      return { answer, transactions: recorded.filter((s) => s === 'BEGIN').length, stored: await sut.get(ctx, answer.id) };
    } finally {
      recording = false;
      await sut.onApplicationShutdown();
    }
  };

  it.each(['APPROVED', 'DECLINED', 'UNKNOWN'] as const)(
    'answers a run that ended %s with the sealed view its event carried: one transaction, the create',
    async (outcome) => {
      const { answer, transactions, stored } = await waitFor(outcome, 2500);
      expect(transactions).toBe(1);
      expect(recorded.filter((s) => /FROM "TerminalOperation" o WHERE o\."id" = \$1::uuid$/.test(s))).toEqual([]);
      // The answer is the operation as it is stored: the same as a read of it now.
      expect(answer).toEqual(stored);
      expect(answer).toMatchObject({
        state: outcome.toLowerCase(),
        amount: 2500,
        ...(outcome === 'APPROVED' ? { approvalCode: 'A1B2C3', rrn: '000000000777' } : {}),
      });
    },
  );

  it('answers a repeat of the key that waits for the run (the same request again) with the sealed view too', async () => {
    const logger = { error: () => undefined, warn: () => undefined } as unknown as Logger;
    // The first request's dispatch reaches a connector that runs it later (below), once the repeat waits.
    const dispatcher: TerminalCommandDispatcher = { dispatch: async () => ({ ok: true, result: { queued: true } }) };
    const sut = new OperationsService(db, dispatcher, logger, new OperationOutcomeWaiter(hub, db, logger, undefined, undefined, secrets));
    const terminalId = (await owner.terminal.create({ data: { tenantId: ctx.tenantId, storeId, name: 'POS', protocol: 'JOINPROTO', connection: {} } })).id;
    const body = { type: 'purchase' as const, amount: 3100, currency: 'RUB' };
    const key = `repeat-${randomUUID()}`;
    try {
      const first = await sut.create(ctx, terminalId, body, key, 0);
      expect(first.state).toBe('pending');
      recorded.length = 0;
      recording = true;
      const repeat = sut.create(ctx, terminalId, body, key, 30_000);
      await waitUntil(() => listeners.size === 1, { what: 'the repeat waiting for the run' });
      recording = false;
      await run(first.id, 'APPROVED');
      recording = true;
      const answer = await repeat;
      recording = false;
      // The repeat's read of its key, and nothing after the outcome.
      expect(recorded.filter((s) => s === 'BEGIN')).toHaveLength(1);
      expect(answer).toEqual(await sut.get(ctx, first.id));
      expect(answer).toMatchObject({ id: first.id, state: 'approved', approvalCode: 'A1B2C3' });
    } finally {
      recording = false;
      await sut.onApplicationShutdown();
    }
  });

  it('reads the row when the run-over message carries no sealed view (a publisher without the key: an older connector)', async () => {
    sink = redisEventSink(redis, 'p');
    const seen: Record<string, unknown>[] = [];
    onTheWay = (message) => (seen.push(message), message);
    const { answer, transactions } = await waitFor('APPROVED', 2600);
    expect(seen.some((message) => 'subject' in message || 'subjectSeal' in message)).toBe(false);
    // The create, and the read of the row for the answer.
    expect(transactions).toBe(2);
    expect(answer).toMatchObject({ state: 'approved', amount: 2600, approvalCode: 'A1B2C3' });
  });

  it.each([
    [
      'its view changed on Redis (declined made approved)',
      (m: Record<string, unknown>) => ({ ...m, subject: { ...(m.subject as object), state: 'approved', approvalCode: 'FORGED' } }),
    ],
    ['a seal of another key', (m: Record<string, unknown>) => ({ ...m, subjectSeal: `hmac1.k1.${'0'.repeat(64)}` })],
    ['no seal', (m: Record<string, unknown>) => ({ ...m, subjectSeal: undefined })],
  ])('never answers with a forged view (%s): the wait ends and the answer is read from PostgreSQL', async (_, forge) => {
    onTheWay = (message) => (message.type === 'operation.completed' ? forge(message) : message);
    const { answer, transactions, stored } = await waitFor('DECLINED', 2700);
    expect(transactions).toBe(2);
    expect(answer).toEqual(stored);
    expect(answer).toMatchObject({ state: 'declined', approvalCode: null });
  });

  it('never answers with a view sealed by a key this gateway does not hold, nor one moved to another event', async () => {
    sink = redisEventSink(redis, 'p', undefined, SecretBox.fromConfig(newKey('k1')));
    expect(await waitFor('DECLINED', 2800)).toMatchObject({ transactions: 2, answer: { state: 'declined' } });
    // A genuine sealed view replayed under another event id (the seal covers the event it came with).
    sink = redisEventSink(redis, 'p', undefined, secrets);
    onTheWay = (message) => (message.type === 'operation.completed' ? { ...message, id: randomUUID() } : message);
    expect(await waitFor('DECLINED', 2900)).toMatchObject({ transactions: 2, answer: { state: 'declined' } });
  });
});
