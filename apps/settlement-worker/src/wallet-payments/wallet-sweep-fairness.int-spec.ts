import { randomUUID } from 'node:crypto';

import pg from 'pg';

import type { WorkerConfig } from '@payorch/config';
import { createPrismaClient, Database, type PrismaClient } from '@payorch/db';
import { SecretBox } from '@payorch/domain';
import { createLogger, createMetricsRegistry } from '@payorch/logging';
import { createTestDatabase, explainPrepared, type TestDatabase, widestRead } from '@payorch/testing';
import { type ResolveQueue, resolveJobId } from '@payorch/wallet-payments';

import { testWorkerConfig } from '../testing/worker-config.testing';
import { walletMetrics } from './wallet-payments.tokens';
import { WalletResolutionService } from './wallet-resolution.service';

/**
 * Found in the sixteenth session: each wallet sweep took the 500 open payments / operations with the oldest "updatedAt".
 * A payment whose resolution job waits out a long backoff (Assist down for hours: the sweep finds its job there and adds
 * nothing), or that waits for a person (ORDER_NOT_PROVEN, OPERATION_NOT_PROVEN), keeps its "updatedAt": with 500 of them
 * every pass returned only those, and a newer payment whose job was lost (Redis flushed) was never re-enqueued.
 */
describe('the wallet sweep gives every open payment its turn, whatever the oldest do (payorch_unresolved_wallet_payments)', () => {
  let testDb: TestDatabase;
  let owner: PrismaClient;
  let db: Database;
  let config: WorkerConfig;
  let service: WalletResolutionService;
  let tenantId: string;
  let merchantRowId: string;

  /**
   * BullMQ as the sweep sees it: the jobs that exist (by job id, with their state); the payments the sweep asked about
   * (each one it takes), and those whose job it added.
   */
  const jobs = new Map<string, string>();
  let asked: string[] = [];
  let added: string[] = [];
  const queue: ResolveQueue = {
    getJob: async (id) => {
      asked.push(id.slice(resolveJobId('').length));
      const state = jobs.get(id);
      if (state === undefined) return undefined;
      return { getState: async () => state, retry: async () => void jobs.set(id, 'waiting'), remove: async () => void jobs.delete(id) };
    },
    add: async (_name, data, opts) => {
      jobs.set(opts.jobId!, 'waiting');
      added.push((data as { paymentId: string }).paymentId);
    },
  };

  /**
   * `count` payments in `state`, unchanged since `minutesAgo` (one second apart, the first the oldest), with `error`; with
   * `operation`, each has that capture open instead (the payment itself AUTHORIZED). Raw SQL, as the gateway left them.
   */
  async function payments(
    count: number,
    minutesAgo: number,
    fields: { state: 'UNKNOWN' | 'PROCESSING' | 'AUTHORIZED'; errorCode?: string; operation?: { state: 'UNKNOWN' | 'PENDING'; errorCode?: string } },
  ): Promise<string[]> {
    const ids = Array.from({ length: count }, () => randomUUID());
    const error = (code: string | undefined) =>
      code === undefined ? null : JSON.stringify({ source: 'payorch', code, message: code, firstCode: null, secondCode: null, field: null });
    await owner.$executeRaw`
      INSERT INTO "WalletPayment" ("id", "tenantId", "merchantId", "orderNumber", "amount", "currency", "tokenType", "idempotencyKey",
        "requestHash", "state", "error", "twoStage", "authorizedAmount", "createdAt", "updatedAt")
      SELECT id, ${tenantId}::uuid, ${merchantRowId}::uuid, id::text, 10000, 'RUB', 'APPLE_PAY', 'k-' || id::text, 'h',
        ${fields.state}::"WalletPaymentState", ${error(fields.errorCode)}::jsonb, ${fields.state === 'AUTHORIZED'},
        ${fields.state === 'AUTHORIZED' ? 10_000 : 0}, now() - make_interval(mins => ${minutesAgo}) + n * interval '1 second',
        now() - make_interval(mins => ${minutesAgo}) + n * interval '1 second'
      FROM unnest(${ids}::uuid[]) WITH ORDINALITY AS t(id, n)`;
    if (fields.operation) {
      await owner.$executeRaw`
        INSERT INTO "WalletPaymentOperation" ("id", "tenantId", "paymentId", "kind", "amount", "currency", "idempotencyKey", "state",
          "error", "sentAt", "createdAt", "updatedAt")
        SELECT gen_random_uuid(), ${tenantId}::uuid, id, 'CAPTURE', 10000, 'RUB', 'c-' || id::text, ${fields.operation.state}::"WalletOperationState",
          ${error(fields.operation.errorCode)}::jsonb, now() - make_interval(mins => ${minutesAgo}) + n * interval '1 second',
          now() - make_interval(mins => ${minutesAgo}) + n * interval '1 second', now() - make_interval(mins => ${minutesAgo}) + n * interval '1 second'
        FROM unnest(${ids}::uuid[]) WITH ORDINALITY AS t(id, n)`;
    }
    return ids;
  }

  /** Their resolution jobs exist (waiting out a long backoff): the sweep finds them and adds nothing, the rows stay as they are. */
  const jobsWaiting = (ids: readonly string[]) => ids.forEach((id) => jobs.set(resolveJobId(id), 'delayed'));

  /** One pass: the payments it took, in its order. */
  async function pass(): Promise<string[]> {
    asked = [];
    const result = await service.sweep(queue);
    expect(result.found).toBe(asked.length);
    expect(asked.length).toBeLessThanOrEqual(service.batchSize);
    return asked;
  }

  beforeAll(async () => {
    testDb = await createTestDatabase();
    owner = createPrismaClient(testDb.adminUrl, { max: 2 });
    db = Database.connect(testDb.appUrl, 2);
    config = testWorkerConfig(testDb.appUrl, 'wallet-sweep-fairness', { WALLET_SWEEP_OLDER_THAN_MS: '600000' });
    service = new WalletResolutionService(
      db,
      config,
      createLogger({ name: 'test', level: 'silent' }),
      SecretBox.fromConfig(config.PAYORCH_MASTER_KEY, config.PAYORCH_PREVIOUS_MASTER_KEYS),
      walletMetrics(createMetricsRegistry('test')),
    );
    tenantId = (await owner.tenant.create({ data: { name: 'Wallet tenant' } })).id;
    merchantRowId = (
      await owner.assistMerchant.create({
        data: { tenantId, merchantId: '700001', name: 'm', secretsEncrypted: 'unused', serverUrl: 'https://assist.example.com' },
      })
    ).id;
  }, 60_000);

  afterAll(async () => {
    await db?.close();
    await owner?.$disconnect();
    await testDb?.drop();
  });

  it('more open payments than one pass takes: the newest lost jobs are re-enqueued within ceil(open / 500) passes, and every pass after', async () => {
    expect(service.batchSize).toBe(500);
    // The oldest 600, for days: 300 whose jobs wait out Assist's outage, 200 left to a person (ORDER_NOT_PROVEN), 100
    // with a capture left to a person (OPERATION_NOT_PROVEN). Their jobs exist: a sweep adds nothing for them.
    const waiting = await payments(300, 3 * 24 * 60, { state: 'UNKNOWN', errorCode: 'TIMEOUT' });
    const orderNotProven = await payments(200, 2 * 24 * 60, { state: 'UNKNOWN', errorCode: 'ORDER_NOT_PROVEN' });
    const operationNotProven = await payments(100, 24 * 60, {
      state: 'AUTHORIZED',
      operation: { state: 'UNKNOWN', errorCode: 'OPERATION_NOT_PROVEN' },
    });
    const stuck = [...waiting, ...orderNotProven, ...operationNotProven];
    jobsWaiting(stuck);
    // An hour ago: a payment and a capture whose jobs were lost with Redis.
    const [lostPayment] = await payments(1, 60, { state: 'PROCESSING' });
    const [lostCapture] = await payments(1, 60, { state: 'AUTHORIZED', operation: { state: 'PENDING' } });
    // Just now: not open for WALLET_SWEEP_OLDER_THAN_MS (10 min) yet, never taken.
    const [fresh] = await payments(1, 0, { state: 'UNKNOWN' });
    const open = [...stuck, lostPayment!, lostCapture!];

    // ceil(602 / 500) = 2 passes take every open payment once, the lost ones' jobs added.
    added = [];
    const first = await pass();
    const second = await pass();
    expect(first).toHaveLength(500);
    expect(new Set([...first, ...second])).toEqual(new Set(open));
    expect(added.sort()).toEqual([lostPayment!, lostCapture!].sort());
    expect([...first, ...second]).not.toContain(fresh);

    // From then on, any two passes in a row take each open payment at least once (the least recently taken first).
    const seen = new Set<string>();
    for (let n = 0; n < 4; n++) {
      const taken = await pass();
      for (const id of taken) seen.add(id);
      if (n % 2 === 1) {
        expect(seen).toEqual(new Set(open));
        seen.clear();
      }
    }

    // A job lost now (a payment that just passed the horizon) is taken by the very next pass, ahead of all those taken before.
    const [lostNow] = await payments(1, 20, { state: 'UNKNOWN' });
    added = [];
    expect(await pass()).toContain(lostNow);
    expect(added).toContain(lostNow);
  }, 60_000);

  it('reads no more rows than it returns, over its partial indexes, however many payments are open', async () => {
    await owner.$executeRawUnsafe('ANALYZE "WalletPayment"');
    await owner.$executeRawUnsafe('ANALYZE "WalletPaymentOperation"');
    // The function's own statement, prepared with its parameters as $1, $2 and planned generically (as a long-lived
    // connection keeps it), run by the function's owner: what the SECURITY DEFINER function runs.
    const client = new pg.Client({ connectionString: testDb.adminUrl });
    await client.connect();
    try {
      const [fn] = (await client.query<{ src: string }>(`SELECT prosrc AS src FROM pg_proc WHERE proname = 'payorch_unresolved_wallet_payments'`)).rows;
      const text = ['p_older_than', 'p_limit'].reduce((sql, name, i) => sql.replaceAll(name, `$${i + 1}`), fn!.src);
      await client.query('SET plan_cache_mode = force_generic_plan');
      await client.query(`PREPARE unresolved(interval, int) AS ${text}`);
      const plan = await explainPrepared(client, 'unresolved', { text, values: ['1 minute', 10] }, tenantId);
      expect(widestRead(plan).rows).toBeLessThanOrEqual(20);
      expect(JSON.stringify(plan)).toContain('WalletPayment_open_by_swept_at_idx');
      expect(JSON.stringify(plan)).toContain('WalletPaymentOperation_open_by_swept_at_idx');
    } finally {
      await client.end();
    }
  });

  it('a pass whose Redis fails midway sends to the back only the payments whose job it made sure of', async () => {
    await owner.$executeRaw`UPDATE "WalletPayment" SET "state" = 'APPROVED' WHERE "state" <> 'APPROVED'`;
    await owner.$executeRaw`UPDATE "WalletPaymentOperation" SET "state" = 'SUCCEEDED' WHERE "state" IN ('PENDING', 'UNKNOWN')`;
    const ids = await payments(3, 30, { state: 'UNKNOWN' });
    let calls = 0;
    const failing: ResolveQueue = {
      getJob: async () => undefined,
      add: async () => {
        if (++calls === 2) throw new Error('Connection is closed.');
      },
    };
    await expect(service.sweep(failing)).rejects.toThrow('Connection is closed.');
    const swept = await owner.$queryRaw<Array<{ id: string; swept: boolean }>>`
      SELECT "id", "sweptAt" IS NOT NULL AS swept FROM "WalletPayment" WHERE "id" = ANY (${ids}::uuid[])`;
    expect(Object.fromEntries(swept.map((r) => [r.id, r.swept]))).toEqual({ [ids[0]!]: true, [ids[1]!]: false, [ids[2]!]: false });
    // "updatedAt" (the horizon, what a resolution writes) is left alone.
    const [row] = await owner.$queryRaw<Array<{ recent: boolean }>>`
      SELECT "updatedAt" > now() - interval '5 minutes' AS recent FROM "WalletPayment" WHERE "id" = ${ids[0]!}::uuid`;
    expect(row!.recent).toBe(false);
  });

  it('never waits for a row lock: a payment written right now keeps its place and is taken first next pass', async () => {
    await owner.$executeRaw`UPDATE "WalletPayment" SET "state" = 'APPROVED' WHERE "state" <> 'APPROVED'`;
    const ids = await payments(2, 30, { state: 'UNKNOWN' });
    const noJobs: ResolveQueue = { getJob: async () => undefined, add: async () => undefined };
    // An owner's transaction holds the first payment's row (as a settlement does while it writes).
    const writer = new pg.Client({ connectionString: testDb.adminUrl });
    await writer.connect();
    try {
      await writer.query('BEGIN');
      await writer.query('SELECT 1 FROM "WalletPayment" WHERE "id" = $1 FOR UPDATE', [ids[0]]);
      await expect(service.sweep(noJobs)).resolves.toMatchObject({ found: 2, added: 2 });
      const swept = await owner.$queryRaw<Array<{ id: string; swept: boolean }>>`
        SELECT "id", "sweptAt" IS NOT NULL AS swept FROM "WalletPayment" WHERE "id" = ANY (${ids}::uuid[])`;
      expect(Object.fromEntries(swept.map((r) => [r.id, r.swept]))).toEqual({ [ids[0]!]: false, [ids[1]!]: true });
    } finally {
      await writer.query('ROLLBACK');
      await writer.end();
    }
  });
});
