import { fc, it } from '@fast-check/jest';

import { createPrismaClient, Database, type PrismaClient } from '@payorch/db';
import { createTestDatabase, type TestDatabase } from '@payorch/testing';

import { eventData, operationById, type OperationRow, toOperationView } from './records';
import { transitionOperation } from './transition';

/**
 * Issue 19: a transition writes its DomainEvent in its own statement, the event's data made by PostgreSQL from the
 * written row (`eventDataSql`), where it was `eventData(row)` in TypeScript, a statement later. Property: for any row
 * (nullable columns, any text, any `result` JSON, amounts up to the safe integer limit) and any step data (including
 * keys that override the row's, as `reason` does), the event the transition returns and the row it stored carry
 * exactly `eventData(row, { ...step.data, previousState })`; its live message's `subject` is the operation's API view, as
 * a read answers it.
 */
const TYPES = ['PURCHASE', 'PURCHASE_WITH_CASHBACK', 'REFUND', 'VOID', 'PREAUTH_CAPTURE', 'SETTLEMENT', 'REPORT_Z', 'TERMINAL_INFO'] as const;
const text = fc.option(fc.string({ maxLength: 24 }), { nil: null });
const json: fc.Arbitrary<unknown> = fc.oneof(
  fc.constant(null),
  fc.record(
    { reasonCode: fc.option(fc.string({ maxLength: 12 }), { nil: null }), data: fc.dictionary(fc.string({ maxLength: 6 }), fc.integer()) },
    { requiredKeys: [] },
  ),
  fc.record({ reasonCode: fc.integer() }),
  fc.array(fc.integer(), { maxLength: 3 }),
  fc.string({ maxLength: 8 }),
  fc.integer(),
);
const rowArb = fc.record({
  type: fc.constantFrom(...TYPES),
  subStatus: text,
  amount: fc.option(fc.bigInt({ min: 0n, max: BigInt(Number.MAX_SAFE_INTEGER) }), { nil: null }),
  currency: fc.option(fc.constantFrom('RUB', 'USD', '643'), { nil: null }),
  maskedPan: text,
  rrn: text,
  approvalCode: text,
  responseCode: text,
  stateReason: text,
  result: json,
});
const stepData = fc.dictionary(
  fc.constantFrom('reason', 'code', 'state', 'note', 'amount', 'x'),
  fc.oneof(fc.string({ maxLength: 8 }), fc.integer(), fc.constant(null)),
  {
    maxKeys: 4,
  },
);

describe('the DomainEvent of a transition (property, real PostgreSQL)', () => {
  let testDb: TestDatabase;
  let owner: PrismaClient;
  let db: Database;
  let tenantId: string;
  let storeId: string;
  let terminalId: string;
  let n = 0;

  beforeAll(async () => {
    testDb = await createTestDatabase();
    owner = createPrismaClient(testDb.adminUrl, { max: 2 });
    db = Database.connect(testDb.appUrl, 2);
    tenantId = (await owner.tenant.create({ data: { name: 'T' } })).id;
    storeId = (await owner.store.create({ data: { tenantId, name: 'S', timeZone: 'UTC' } })).id;
    terminalId = (await owner.terminal.create({ data: { tenantId, storeId, name: 'POS', protocol: 'JOINPROTO', connection: {} } })).id;
  });

  afterAll(async () => {
    await db.close();
    await owner.$disconnect();
    await testDb.drop();
  });

  it.prop([rowArb, stepData, fc.constantFrom('stays', 'moves', 'run over')], { numRuns: 60 })(
    'carries eventData(row, step data + previousState), as stored',
    async (columns, data, how) => {
      const moves = how !== 'stays';
      const type = how === 'run over' ? 'operation.unknown' : 'operation.progress';
      const operation = await owner.terminalOperation.create({
        data: {
          tenantId,
          storeId,
          terminalId,
          type: columns.type,
          state: 'SENT',
          subStatus: columns.subStatus,
          amount: columns.amount,
          currency: columns.currency,
          maskedPan: columns.maskedPan,
          rrn: columns.rrn,
          approvalCode: columns.approvalCode,
          responseCode: columns.responseCode,
          stateReason: columns.stateReason,
          result: columns.result === null ? undefined : (columns.result as never),
          idempotencyKey: `event-data-${++n}`,
          requestHash: 'h',
        },
      });
      const written = await db.withTenantSql(tenantId, (tx) =>
        transitionOperation(tx, {
          operationId: operation.id,
          from: ['SENT'],
          to: how === 'run over' ? 'UNKNOWN' : moves ? 'IN_PROGRESS' : null,
          step: { kind: how === 'run over' ? 'transition' : 'progress', data, event: type },
        }),
      );
      expect(written).not.toBeNull();
      const expected = eventData(written!.row, { ...data, ...(moves ? { previousState: 'sent' } : {}) });
      expect(written!.event!.data).toEqual(expected);
      const stored = await owner.domainEvent.findUniqueOrThrow({ where: { id: written!.event!.id } });
      expect(stored).toMatchObject({ tenantId, type, subjectType: 'operation', subjectId: operation.id });
      expect(stored.data).toEqual(expected);
      expect(stored.createdAt.toISOString()).toBe(written!.event!.createdAt);
      // The live message's view of the operation on an event that ends the run (PublishedEvent.subject; not stored:
      // `stored.data` above is exactly the summary) is the operation as a read of it answers now: a `?wait=` request
      // answers with it instead of reading. A progress event carries none.
      const [now] = await db.querySql<OperationRow>(tenantId, operationById(operation.id));
      expect(written!.event!.subject).toEqual(how === 'run over' ? toOperationView(now!) : undefined);
    },
  );
});
