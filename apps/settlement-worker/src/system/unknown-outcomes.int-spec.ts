import type { INestApplication } from '@nestjs/common';
import { Redis } from 'ioredis';
import pg from 'pg';
import { Registry } from 'prom-client';
import request from 'supertest';

import type { WorkerConfig } from '@payorch/config';
import { createPrismaClient, Database, type PrismaClient } from '@payorch/db';
import { createLogger } from '@payorch/logging';
import { createTestDatabase, deleteRedisPrefix, explainPrepared, type TestDatabase, waitFor, widestRead } from '@payorch/testing';

import { createWorkerApp } from '../bootstrap';
import { testWorkerConfig } from '../testing/worker-config.testing';
import { readUnknownOutcomes, watchUnknownOutcomes } from './unknown-outcomes';

/** RECOVERY_MAX_ATTEMPTS of these tests: an UNKNOWN operation with this many attempts waits for a person. */
const MAX_ATTEMPTS = 3;
const FUNCTION = 'payorch_unknown_outcome_counts(int, text[])';

/** The value of `name{kind="…"…}` in Prometheus text, or undefined when the sample is absent. */
function sample(text: string, name: string, labels: string): number | undefined {
  const line = text.split('\n').find((l) => l.startsWith(`${name}{${labels}`));
  return line === undefined ? undefined : Number(line.slice(line.lastIndexOf(' ') + 1));
}

describe('payments whose outcome is unknown: payorch_unknown_outcome_counts and the worker gauges', () => {
  let testDb: TestDatabase;
  let owner: PrismaClient;
  let db: Database;
  let config: WorkerConfig;
  let app: INestApplication;
  const tenants: Array<{ id: string; storeId: string; terminalId: string; merchantId: string }> = [];
  let seq = 0;

  /** A terminal operation as the state machine leaves it: its steps (OperationEvent) at `ago` before now. */
  async function operation(
    t: (typeof tenants)[number],
    o: { state: string; attempts?: number; created: string; updated: string; steps?: Array<{ kind: string; from: string | null; to: string; ago: string }> },
  ): Promise<string> {
    const key = `op-${++seq}`;
    const [{ id }] = await owner.$queryRawUnsafe<[{ id: string }]>(
      `INSERT INTO "TerminalOperation" ("id", "tenantId", "terminalId", "storeId", "type", "amount", "currency", "idempotencyKey", "requestHash",
         "state", "recoveryAttempts", "createdAt", "updatedAt", "completedAt")
       VALUES (gen_random_uuid(), $1::uuid, $2::uuid, $3::uuid, 'PURCHASE', 1500, 'RUB', $4, 'h', $5::"OperationState", $6::int,
         now() - $7::interval, now() - $8::interval, CASE WHEN $5 IN ('APPROVED', 'DECLINED', 'CANCELED', 'FAILED') THEN now() - $8::interval END)
       RETURNING "id"`,
      t.id,
      t.terminalId,
      t.storeId,
      key,
      o.state,
      o.attempts ?? 0,
      o.created,
      o.updated,
    );
    for (const step of o.steps ?? []) {
      await owner.$executeRawUnsafe(
        `INSERT INTO "OperationEvent" ("id", "tenantId", "operationId", "kind", "fromState", "toState", "createdAt")
         VALUES (gen_random_uuid(), $1::uuid, $2::uuid, $3, $4::"OperationState", $5::"OperationState", now() - $6::interval)`,
        t.id,
        id,
        step.kind,
        step.from,
        step.to,
        step.ago,
      );
    }
    return id;
  }

  /** A wallet payment (Apple Pay, RUB) created `created` ago and last written `updated` ago. */
  async function walletPayment(t: (typeof tenants)[number], p: { state: string; errorCode?: string; created: string; updated: string }): Promise<string> {
    const number = `order-${++seq}`;
    const [{ id }] = await owner.$queryRawUnsafe<[{ id: string }]>(
      `INSERT INTO "WalletPayment" ("id", "tenantId", "merchantId", "orderNumber", "amount", "currency", "tokenType", "idempotencyKey", "requestHash",
         "state", "error", "createdAt", "updatedAt")
       VALUES (gen_random_uuid(), $1::uuid, $2::uuid, $3, 10000, 'RUB', 'APPLE_PAY', $3, 'h', $4::"WalletPaymentState",
         CASE WHEN $5::text IS NULL THEN NULL ELSE jsonb_build_object('source', 'payorch', 'code', $5::text, 'message', 'm') END,
         now() - $6::interval, now() - $7::interval)
       RETURNING "id"`,
      t.id,
      t.merchantId,
      number,
      p.state,
      p.errorCode ?? null,
      p.created,
      p.updated,
    );
    return id;
  }

  /** A capture of `paymentId` sent `sent` ago. */
  async function walletOperation(t: (typeof tenants)[number], paymentId: string, o: { state: string; errorCode?: string; sent: string }): Promise<void> {
    await owner.$executeRawUnsafe(
      `INSERT INTO "WalletPaymentOperation" ("id", "tenantId", "paymentId", "kind", "amount", "currency", "idempotencyKey", "state", "error",
         "sentAt", "createdAt", "updatedAt", "completedAt")
       VALUES (gen_random_uuid(), $1::uuid, $2::uuid, 'CAPTURE', 5000, 'RUB', $3, $4::"WalletOperationState",
         CASE WHEN $5::text IS NULL THEN NULL ELSE jsonb_build_object('source', 'integrity', 'code', $5::text, 'message', 'm') END,
         now() - $6::interval, now() - $6::interval, now() - interval '1 minute',
         CASE WHEN $4 IN ('SUCCEEDED', 'FAILED') THEN now() END)`,
      t.id,
      paymentId,
      `wop-${++seq}`,
      o.state,
      o.errorCode ?? null,
      o.sent,
    );
  }

  const expectAbout = (seconds: number, expected: number) => {
    expect(seconds).toBeGreaterThanOrEqual(expected);
    expect(seconds).toBeLessThan(expected + 120);
  };

  beforeAll(async () => {
    testDb = await createTestDatabase();
    owner = createPrismaClient(testDb.adminUrl, { max: 2 });
    db = Database.connect(testDb.appUrl, 2);
    config = testWorkerConfig(testDb.appUrl, 'unknown-outcomes', {
      RECOVERY_MAX_ATTEMPTS: String(MAX_ATTEMPTS),
      // The worker's sweeps leave the planted rows as they are: none is old enough for them.
      RECOVERY_STUCK_AFTER_MS: String(30 * 86_400_000),
      RECOVERY_BACKOFF_BASE_MS: String(30 * 86_400_000),
      WALLET_SWEEP_OLDER_THAN_MS: String(30 * 86_400_000),
    });
    for (const name of ['A', 'B']) {
      const tenant = await owner.tenant.create({ data: { name: `Tenant ${name}` } });
      const store = await owner.store.create({ data: { tenantId: tenant.id, name: 'S', timeZone: 'UTC' } });
      const terminal = await owner.terminal.create({
        data: { tenantId: tenant.id, storeId: store.id, name: 'T', protocol: 'JOINPROTO', connection: { kind: 'tcp', host: '127.0.0.1', port: 1 } },
      });
      const merchant = await owner.assistMerchant.create({
        data: { tenantId: tenant.id, name: 'M', merchantId: `70000${tenants.length + 1}`, serverUrl: 'http://127.0.0.1:1', secretsEncrypted: 'x' },
      });
      tenants.push({ id: tenant.id, storeId: store.id, terminalId: terminal.id, merchantId: merchant.id });
    }
    const [a, b] = tenants as [(typeof tenants)[number], (typeof tenants)[number]];

    // Terminal operations. A: recovery gave up (attempts spent, `recovery_exhausted` written a minute ago), UNKNOWN for
    // 2 h although created 3 h ago and last written a minute ago; still being recovered, UNKNOWN for 30 min.
    await operation(a, {
      state: 'UNKNOWN',
      attempts: MAX_ATTEMPTS,
      created: '3 hours',
      updated: '1 minute',
      steps: [
        { kind: 'created', from: null, to: 'PENDING', ago: '3 hours' },
        { kind: 'transition', from: 'PENDING', to: 'SENT', ago: '3 hours' },
        { kind: 'transition', from: 'SENT', to: 'UNKNOWN', ago: '2 hours' },
        { kind: 'recovery_attempt', from: 'UNKNOWN', to: 'UNKNOWN', ago: '90 minutes' },
        { kind: 'recovery_exhausted', from: 'UNKNOWN', to: 'UNKNOWN', ago: '1 minute' },
      ],
    });
    await operation(a, {
      state: 'UNKNOWN',
      attempts: 1,
      created: '31 minutes',
      updated: '1 minute',
      steps: [{ kind: 'transition', from: 'SENT', to: 'UNKNOWN', ago: '30 minutes' }],
    });
    // B: attempts spent by recovery on reconnect (the connector's), so no `recovery_exhausted` step: a person still decides.
    await operation(b, {
      state: 'UNKNOWN',
      attempts: MAX_ATTEMPTS + 2,
      created: '11 minutes',
      updated: '1 minute',
      steps: [{ kind: 'transition', from: 'IN_PROGRESS', to: 'UNKNOWN', ago: '10 minutes' }],
    });
    // Not in doubt: recovered long ago (it was UNKNOWN 5 h ago), resolved by a person, in flight.
    await operation(b, {
      state: 'APPROVED',
      attempts: 2,
      created: '6 hours',
      updated: '4 hours',
      steps: [
        { kind: 'transition', from: 'SENT', to: 'UNKNOWN', ago: '5 hours' },
        { kind: 'recovered', from: 'UNKNOWN', to: 'APPROVED', ago: '4 hours' },
      ],
    });
    await operation(a, { state: 'DECLINED', attempts: MAX_ATTEMPTS, created: '8 hours', updated: '7 hours' });
    await operation(a, { state: 'SENT', created: '1 minute', updated: '1 minute' });

    // Wallet payments. A: ORDER_NOT_PROVEN (a person), created 4 h ago, read again a minute ago; TIMEOUT (the job is on it).
    // B: ORDER_MISMATCH (a person). Not in doubt: approved, processing, declined by a person.
    await walletPayment(a, { state: 'UNKNOWN', errorCode: 'ORDER_NOT_PROVEN', created: '4 hours', updated: '1 minute' });
    await walletPayment(a, { state: 'UNKNOWN', errorCode: 'TIMEOUT', created: '20 minutes', updated: '1 minute' });
    await walletPayment(b, { state: 'UNKNOWN', errorCode: 'ORDER_MISMATCH', created: '1 hour', updated: '1 minute' });
    const paidA = await walletPayment(a, { state: 'APPROVED', created: '10 hours', updated: '9 hours' });
    const paidB = await walletPayment(b, { state: 'AUTHORIZED', created: '10 hours', updated: '9 hours' });
    const paidB2 = await walletPayment(b, { state: 'PARTIALLY_CAPTURED', created: '10 hours', updated: '9 hours' });
    await walletPayment(b, { state: 'PROCESSING', created: '1 minute', updated: '1 minute' });
    await walletPayment(b, { state: 'DECLINED', errorCode: 'RESOLVED_MANUALLY', created: '12 hours', updated: '11 hours' });

    // Wallet operations (one open per payment). A: a capture every answer about is ORDER_MISMATCH, sent 90 min ago.
    // B: a capture whose answer timed out 5 min ago; finished ones.
    await walletOperation(a, paidA, { state: 'UNKNOWN', errorCode: 'ORDER_MISMATCH', sent: '90 minutes' });
    await walletOperation(b, paidB, { state: 'UNKNOWN', errorCode: 'TIMEOUT', sent: '5 minutes' });
    await walletOperation(b, paidB2, { state: 'SUCCEEDED', sent: '9 hours' });
    await walletOperation(b, paidB2, { state: 'FAILED', errorCode: 'ORDER_MISMATCH', sent: '8 hours' });
  }, 60_000);

  afterAll(async () => {
    await app?.close();
    await db?.close();
    await owner?.$disconnect();
    if (config) {
      const redis = new Redis(config.REDIS_URL);
      await deleteRedisPrefix(redis, config.REDIS_KEY_PREFIX);
      await redis.quit();
    }
    await testDb?.drop();
  });

  it('counts, per kind and across tenants, the UNKNOWN rows, those waiting for a person and the age of the oldest (as payorch_app)', async () => {
    const counts = await readUnknownOutcomes(db, MAX_ATTEMPTS);
    const byKind = Object.fromEntries(counts.map((c) => [c.kind, c]));
    expect(Object.keys(byKind).sort()).toEqual(['operation', 'wallet_operation', 'wallet_payment']);
    expect(byKind.operation).toMatchObject({ unknown: 3, needingHuman: 2 });
    // Since the step that made it UNKNOWN (2 h), not its creation (3 h) nor its last write (1 min).
    expectAbout(byKind.operation!.oldestSeconds, 2 * 3600);
    expect(byKind.wallet_payment).toMatchObject({ unknown: 3, needingHuman: 2 });
    // Since it was created (4 h): its resolution attempts keep moving updatedAt.
    expectAbout(byKind.wallet_payment!.oldestSeconds, 4 * 3600);
    expect(byKind.wallet_operation).toMatchObject({ unknown: 2, needingHuman: 1 });
    expectAbout(byKind.wallet_operation!.oldestSeconds, 90 * 60);
    // More recovery attempts allowed: none has spent them.
    expect((await readUnknownOutcomes(db, 100)).find((c) => c.kind === 'operation')).toMatchObject({ unknown: 3, needingHuman: 0 });
  });

  it('serves the worker /metrics: nothing but the failure counted while the read fails, the counts once it works', async () => {
    app = await createWorkerApp(config, createLogger({ name: 'test', level: 'silent' }));
    await app.init();
    await owner.$executeRawUnsafe(`REVOKE EXECUTE ON FUNCTION ${FUNCTION} FROM payorch_app`);
    let metrics = await request(app.getHttpServer()).get('/metrics');
    expect(metrics.status).toBe(200);
    expect(metrics.text).toContain('# TYPE payorch_jobs_total counter');
    expect(sample(metrics.text, 'payorch_unknown_outcomes_read_failures_total', 'reason="error"')).toBe(1);
    for (const name of ['payorch_unknown_outcomes', 'payorch_unknown_outcomes_needing_human', 'payorch_unknown_outcome_oldest_seconds']) {
      expect(metrics.text).toContain(`# TYPE ${name} gauge`);
      expect(sample(metrics.text, name, 'kind="operation"')).toBeUndefined();
    }

    await owner.$executeRawUnsafe(`GRANT EXECUTE ON FUNCTION ${FUNCTION} TO payorch_app`);
    // The next read comes once the failed one's cache time has passed.
    metrics = await waitFor(
      async () => {
        const res = await request(app.getHttpServer()).get('/metrics');
        return sample(res.text, 'payorch_unknown_outcomes', 'kind="operation"') !== undefined && res;
      },
      { timeoutMs: 20_000, intervalMs: 250, what: 'the unknown-outcome gauges on /metrics' },
    );
    const text = metrics.text;
    expect(text).toContain('payorch_unknown_outcomes{kind="operation",service="settlement-worker"} 3');
    expect(text).toContain('payorch_unknown_outcomes{kind="wallet_payment",service="settlement-worker"} 3');
    expect(text).toContain('payorch_unknown_outcomes{kind="wallet_operation",service="settlement-worker"} 2');
    expect(text).toContain('payorch_unknown_outcomes_needing_human{kind="operation",service="settlement-worker"} 2');
    expect(text).toContain('payorch_unknown_outcomes_needing_human{kind="wallet_payment",service="settlement-worker"} 2');
    expect(text).toContain('payorch_unknown_outcomes_needing_human{kind="wallet_operation",service="settlement-worker"} 1');
    expectAbout(sample(text, 'payorch_unknown_outcome_oldest_seconds', 'kind="operation"')!, 2 * 3600);
    expectAbout(sample(text, 'payorch_unknown_outcome_oldest_seconds', 'kind="wallet_payment"')!, 4 * 3600);
    expectAbout(sample(text, 'payorch_unknown_outcome_oldest_seconds', 'kind="wallet_operation"')!, 90 * 60);
    expect(sample(text, 'payorch_unknown_outcomes_read_failures_total', 'reason="error"')).toBe(1);
  }, 30_000);

  it('reads once per scrape and cache time, keeps the last values when a read fails or hangs, and counts it', async () => {
    const registry = new Registry();
    let clock = 0;
    let reads = 0;
    let landed = 0;
    let hold: Promise<void> | undefined;
    watchUnknownOutcomes(
      registry,
      async () => {
        reads++;
        if (hold) await hold;
        const counts = await readUnknownOutcomes(db, MAX_ATTEMPTS);
        landed++;
        return counts;
      },
      { ttlMs: 5_000, waitMs: 1_000, now: () => clock },
    );
    const scrape = async () => registry.metrics();
    const operations = (text: string) => sample(text, 'payorch_unknown_outcomes', 'kind="operation"');

    expect(operations(await scrape())).toBe(3);
    expect(reads).toBe(1); // three gauges, one read
    clock = 4_000;
    expect(operations(await scrape())).toBe(3);
    expect(reads).toBe(1);

    // The database refuses: the scrape still answers, with the previous values, and the failure is counted.
    await owner.$executeRawUnsafe(`REVOKE EXECUTE ON FUNCTION ${FUNCTION} FROM payorch_app`);
    try {
      clock = 6_000;
      let text = await scrape();
      expect(reads).toBe(2);
      expect(operations(text)).toBe(3);
      expect(sample(text, 'payorch_unknown_outcomes_needing_human', 'kind="wallet_payment"')).toBe(2);
      expect(sample(text, 'payorch_unknown_outcomes_read_failures_total', 'reason="error"')).toBe(1);
      // Not asked again before the cache time has passed.
      clock = 7_000;
      text = await scrape();
      expect(reads).toBe(2);
      expect(sample(text, 'payorch_unknown_outcomes_read_failures_total', 'reason="error"')).toBe(1);
    } finally {
      await owner.$executeRawUnsafe(`GRANT EXECUTE ON FUNCTION ${FUNCTION} TO payorch_app`);
    }

    // A read that does not answer: the scrape stops waiting, shows the previous values and counts it once.
    const another = await operation(tenants[1]!, {
      state: 'UNKNOWN',
      created: '2 minutes',
      updated: '1 minute',
      steps: [{ kind: 'transition', from: 'SENT', to: 'UNKNOWN', ago: '1 minute' }],
    });
    let release!: () => void;
    hold = new Promise<void>((resolve) => (release = resolve));
    clock = 12_000;
    let text = await scrape();
    expect(reads).toBe(3);
    expect(operations(text)).toBe(3);
    expect(sample(text, 'payorch_unknown_outcomes_read_failures_total', 'reason="timeout"')).toBe(1);
    clock = 30_000;
    text = await scrape(); // the same read is still in flight: no second one
    expect(reads).toBe(3);
    expect(sample(text, 'payorch_unknown_outcomes_read_failures_total', 'reason="timeout"')).toBe(1);
    hold = undefined;
    release();
    await waitFor(() => landed === 2, { what: 'the held read to land' });
    expect(operations(await scrape())).toBe(4);
    await owner.$executeRawUnsafe(`DELETE FROM "TerminalOperation" WHERE "id" = $1::uuid`, another);
  });

  it('reads only the rows in doubt, never the history (generic plan of its statement, run by its owner)', async () => {
    const [a] = tenants as [(typeof tenants)[number]];
    // 20,000 finished operations, a tenth of them UNKNOWN once (recovered); 20,000 finished wallet payments, a capture each.
    await owner.$executeRawUnsafe(
      `INSERT INTO "TerminalOperation" ("id", "tenantId", "terminalId", "storeId", "type", "amount", "currency", "idempotencyKey", "requestHash",
         "state", "createdAt", "updatedAt", "completedAt")
       SELECT gen_random_uuid(), $1::uuid, $2::uuid, $3::uuid, 'PURCHASE', 1000, 'RUB', 'past-' || n, 'h', 'APPROVED',
         now() - n * interval '1 minute', now() - n * interval '1 minute', now() - n * interval '1 minute'
       FROM generate_series(1, 20000) n`,
      a.id,
      a.terminalId,
      a.storeId,
    );
    // Statistics first: the foreign key checks of the steps below are planned from them (a sequential scan per step otherwise).
    await owner.$executeRawUnsafe('ANALYZE "TerminalOperation"');
    await owner.$executeRawUnsafe(
      `INSERT INTO "OperationEvent" ("id", "tenantId", "operationId", "kind", "fromState", "toState", "createdAt")
       SELECT gen_random_uuid(), o."tenantId", o."id", s.kind, s.f::"OperationState", s.t::"OperationState", now() - interval '1 day'
       FROM "TerminalOperation" o
       CROSS JOIN LATERAL (VALUES ('transition', 'PENDING', 'SENT'), ('transition', 'SENT', 'UNKNOWN'), ('recovered', 'UNKNOWN', 'APPROVED')) s(kind, f, t)
       WHERE o."idempotencyKey" LIKE 'past-%' AND (s.t <> 'UNKNOWN' OR right(o."idempotencyKey", 1) = '0')`,
    );
    await owner.$executeRawUnsafe(
      `INSERT INTO "WalletPayment" ("id", "tenantId", "merchantId", "orderNumber", "amount", "currency", "tokenType", "idempotencyKey", "requestHash",
         "state", "createdAt", "updatedAt", "completedAt")
       SELECT gen_random_uuid(), $1::uuid, $2::uuid, 'past-' || n, 10000, 'RUB', 'APPLE_PAY', 'past-' || n, 'h', 'APPROVED',
         now() - n * interval '1 minute', now() - n * interval '1 minute', now() - n * interval '1 minute'
       FROM generate_series(1, 20000) n`,
      a.id,
      a.merchantId,
    );
    await owner.$executeRawUnsafe('ANALYZE "WalletPayment"');
    await owner.$executeRawUnsafe(
      `INSERT INTO "WalletPaymentOperation" ("id", "tenantId", "paymentId", "kind", "amount", "currency", "idempotencyKey", "state", "sentAt",
         "createdAt", "updatedAt", "completedAt")
       SELECT gen_random_uuid(), p."tenantId", p."id", 'CAPTURE', 10000, 'RUB', 'past-' || p."id", 'SUCCEEDED', p."createdAt", p."createdAt",
         p."createdAt", p."createdAt"
       FROM "WalletPayment" p WHERE p."orderNumber" LIKE 'past-%'`,
    );
    await owner.$executeRawUnsafe('ANALYZE "TerminalOperation", "OperationEvent", "WalletPayment", "WalletPaymentOperation"');

    const client = new pg.Client({ connectionString: testDb.adminUrl });
    await client.connect();
    try {
      const [fn] = (await client.query<{ src: string }>(`SELECT prosrc AS src FROM pg_proc WHERE proname = 'payorch_unknown_outcome_counts'`)).rows;
      const text = ['p_recovery_max_attempts', 'p_wallet_human_codes'].reduce((sql, name, i) => sql.replaceAll(name, `$${i + 1}`), fn!.src);
      await client.query('SET plan_cache_mode = force_generic_plan');
      await client.query(`PREPARE unknown_outcomes(int, text[]) AS ${text}`);
      const plan = await explainPrepared(client, 'unknown_outcomes', { text, values: [MAX_ATTEMPTS, ['ORDER_NOT_PROVEN', 'ORDER_MISMATCH']] }, a.id);
      // The UNKNOWN rows (3 operations and their 7 steps, 3 payments, 2 operations), not 20,000 of anything.
      expect(widestRead(plan).rows).toBeLessThanOrEqual(20);
      expect(JSON.stringify(plan)).not.toContain('Seq Scan');
    } finally {
      await client.end();
    }
    // Still the same counts.
    const counts = await readUnknownOutcomes(db, MAX_ATTEMPTS);
    expect(counts.map((c) => [c.kind, c.unknown, c.needingHuman]).sort()).toEqual([
      ['operation', 3, 2],
      ['wallet_operation', 2, 1],
      ['wallet_payment', 3, 2],
    ]);
  }, 60_000);
});
