import { connect, type Socket } from 'node:net';

import { Client } from 'pg';

import { createPrismaClient, Database, type PrismaClient } from '@payorch/db';
import { createDriver } from '@payorch/drivers';
import { createTestDatabase, type TestDatabase } from '@payorch/testing';
import { JoinprotoTerminalSimulator } from '@payorch/testing/joinproto-sim';

import { insertOperation, OperationExecutor } from './index';

interface Statement {
  sql: string;
  values: unknown[];
}

/** Every statement any pg client of this process sends while `recording` is set (Prisma's adapter included). */
const recorded: Statement[] = [];
let recording = false;
const originalQuery = Client.prototype.query;
(Client.prototype as unknown as { query: (...args: unknown[]) => unknown }).query = function (this: Client, ...args: unknown[]) {
  if (recording) {
    const first = args[0] as string | { text?: string; values?: unknown[] };
    const sql = typeof first === 'string' ? first : (first.text ?? '');
    const values = (typeof first === 'string' ? args[1] : first.values) ?? [];
    recorded.push({ sql: sql.replace(/\s+/g, ' ').trim(), values: values as unknown[] });
  }
  return (originalQuery as (...a: unknown[]) => unknown).apply(this, args);
};

/**
 * The cost of one approved Joinproto purchase on the operation's write path (issue #14's budget): created as
 * the gateway does and executed as the connector does, against the simulator, counting what reaches PostgreSQL.
 * Before the owner it took 5 transactions and 39 statements (a read before and after every conditional update,
 * the OperationEvent as a separate INSERT); now 5 transactions and 28 statements.
 */
describe('operation write path (statement budget)', () => {
  let testDb: TestDatabase;
  let owner: PrismaClient;
  let db: Database;
  let sim: JoinprotoTerminalSimulator;
  let tenantId: string;
  let storeId: string;
  let terminalId: string;

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

  it('creates and runs one approved purchase with one compare-and-set per step and no reads of the row', async () => {
    const { port } = await sim.listen(0);
    const driver = createDriver({
      terminalRowId: terminalId,
      protocol: 'JOINPROTO',
      dialect: null,
      terminalId: null,
      merchantId: null,
      department: null,
      credentials: null,
      link: () =>
        new Promise<Socket>((resolve, reject) => {
          const socket = connect(port, '127.0.0.1');
          socket.once('connect', () => resolve(socket));
          socket.once('error', reject);
        }),
    });
    recorded.length = 0;
    recording = true;
    try {
      const { row } = await db.withTenant(tenantId, (tx) =>
        insertOperation(tx, { tenantId, terminalId, storeId, type: 'purchase', amount: 1500, currency: 'RUB', idempotencyKey: 'budget-1', requestHash: 'h' }),
      );
      expect(await new OperationExecutor(db).execute({ tenantId, operationId: row.id }, driver)).toEqual({ ran: true, state: 'APPROVED' });
    } finally {
      recording = false;
      await driver.close();
    }
    const transactions = splitTransactions(recorded);
    // create · claim · refs (committed before the first byte) · progress ("processing") · outcome.
    expect(transactions.map((tx) => tx.kind)).toEqual(['created', 'transition', 'refs', 'progress', 'transition']);
    for (const tx of transactions) {
      // set_config, the one statement on the row (which appends the OperationEvent), the DomainEvent when there is one.
      expect(tx.statements.filter((s) => s.sql.includes('"TerminalOperation"'))).toHaveLength(1);
      expect(tx.statements.length).toBeLessThanOrEqual(3);
    }
    expect(recorded.filter((s) => /^SELECT .*FROM "public"\."TerminalOperation"/.test(s.sql))).toEqual([]);
    expect(recorded.length).toBeLessThanOrEqual(28);
  });
});

interface RecordedTransaction {
  /** The OperationEvent kind its one owner statement wrote. */
  kind: string;
  /** Statements between BEGIN and COMMIT. */
  statements: Statement[];
}

const STEP_KINDS = ['transition', 'refs', 'progress', 'recovered'];

function splitTransactions(statements: readonly Statement[]): RecordedTransaction[] {
  const out: RecordedTransaction[] = [];
  let open: Statement[] | undefined;
  for (const statement of statements) {
    if (statement.sql === 'BEGIN') open = [];
    else if (statement.sql === 'COMMIT' || statement.sql === 'ROLLBACK') {
      const write = open!.find((s) => s.sql.includes('INSERT INTO "OperationEvent"'));
      const kind = write?.sql.includes("'created'") ? 'created' : (write?.values.find((v) => STEP_KINDS.includes(v as string)) as string | undefined);
      out.push({ kind: kind ?? '(none)', statements: open! });
      open = undefined;
    } else open?.push(statement);
  }
  return out;
}
