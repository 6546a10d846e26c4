import { Client } from 'pg';

import { Registry } from 'prom-client';

import { createPrismaClient, Database, type PrismaClient } from '@payorch/db';
import type { Logger } from '@payorch/logging';
import { createTestDatabase, type TestDatabase, waitFor } from '@payorch/testing';

import type { EventHub } from '../events/event-hub';
import { OperationOutcomeWaiter } from './outcome-waiter';

/**
 * Without live events (the subscription cannot be made: Redis away) every waiting `?wait=` request re-reads its
 * operation every 250 ms, and the hub's heartbeat makes every waiting request re-read at once: those re-reads are
 * one statement per tenant and tick, not one per request (issue 19: a poll per request is a read storm on PostgreSQL
 * exactly when Redis is already in trouble).
 */
describe(`${OperationOutcomeWaiter.name} (re-reads without live events)`, () => {
  let testDb: TestDatabase;
  let owner: PrismaClient;
  let db: Database;
  let tenantId: string;
  let operationIds: string[];

  beforeAll(async () => {
    testDb = await createTestDatabase();
    owner = createPrismaClient(testDb.adminUrl, { max: 1 });
    db = Database.connect(testDb.appUrl, 4);
    tenantId = (await owner.tenant.create({ data: { name: 'T' } })).id;
    const storeId = (await owner.store.create({ data: { tenantId, name: 'S', timeZone: 'UTC' } })).id;
    const terminalId = (await owner.terminal.create({ data: { tenantId, storeId, name: 'POS', protocol: 'JOINPROTO', connection: {} } })).id;
    const rows = await owner.terminalOperation.createManyAndReturn({
      data: Array.from({ length: 20 }, (_, i) => ({
        tenantId,
        storeId,
        terminalId,
        type: 'PURCHASE' as const,
        state: 'SENT' as const,
        amount: 100 + i,
        currency: 'RUB',
        idempotencyKey: `k-${i}`,
        requestHash: 'h',
      })),
      select: { id: true },
    });
    operationIds = rows.map((row) => row.id);
  });

  afterAll(async () => {
    await db.close();
    await owner.$disconnect();
    await testDb.drop();
  });

  it('reads the states of every operation waited on in one statement per poll, and lets each wait end when its operation is final', async () => {
    const hub = { add: () => Promise.reject(new Error('redis away')) } as unknown as EventHub;
    const logger = { warn: () => undefined } as unknown as Logger;
    const waiter = new OperationOutcomeWaiter(hub, db, logger);
    const waits = await Promise.all(operationIds.map((id) => waiter.prepare(tenantId, id)));

    const query = jest.spyOn(Client.prototype, 'query');
    // The ids asked by every re-read of operation states (the batched statement, or a former one per request).
    const reads = (): unknown[] =>
      query.mock.calls
        .map(([q]) => q as unknown as { text?: string; values?: unknown[] } | string)
        .filter(
          (q): q is { text?: string; values?: unknown[] } => typeof q === 'object' && /SELECT "(id", ")?state" FROM "TerminalOperation"/.test(q.text ?? ''),
        )
        .map((q) => q.values?.[0]);
    let settled = 0;
    const done = waits.map((wait) => wait.settled(30_000).then(() => (settled += 1)));
    let seen: unknown[] | undefined;
    try {
      const asked = () => new Set(reads().flatMap((ids) => ids as string[]));
      await waitFor(() => asked().size >= operationIds.length || undefined, { timeoutMs: 5_000, intervalMs: 20, what: 'every wait re-read once' });
      // The twenty waits' re-reads share statements (per request it was one each): a timer that fires while a read is
      // in flight joins the next one, so on a loaded machine the first poll may take two or three, never twenty.
      const coverage = new Set<string>();
      const statementsToCoverAll = reads().findIndex((ids) => {
        for (const id of ids as string[]) coverage.add(id);
        return coverage.size >= operationIds.length;
      });
      expect(statementsToCoverAll + 1).toBeLessThan(operationIds.length / 2);
      await owner.terminalOperation.updateMany({ where: { id: { in: operationIds.slice(0, 10) } }, data: { state: 'APPROVED' } });
      await waitFor(() => settled === 10 || undefined, { timeoutMs: 5_000, intervalMs: 20, what: 'the final half ended' });
      await owner.terminalOperation.updateMany({ where: { id: { in: operationIds.slice(10) } }, data: { state: 'DECLINED' } });
      await Promise.all(done);
      seen = reads();
    } finally {
      query.mockRestore();
      for (const wait of waits) wait.close();
    }
    // Many waits per statement (one per request was 1): the waits that poll in the same tick, or while a read runs, share one.
    const ids = (seen ?? []).reduce<number>((n, asked) => n + (asked as string[]).length, 0);
    expect(seen?.length).toBeGreaterThan(1);
    expect(ids / seen!.length).toBeGreaterThanOrEqual(3);
  });

  it("holds at most OPERATION_WAITS_MAX_PER_TENANT waits of one tenant: one more is over at once, another tenant's still waits, and a closed wait frees its place", async () => {
    // Live events that never come: a wait ends only at its deadline (or when it is closed).
    const hub = { add: () => Promise.resolve(() => undefined) } as unknown as EventHub;
    const logger = { warn: () => undefined } as unknown as Logger;
    const registry = new Registry();
    const waiter = new OperationOutcomeWaiter(hub, db, logger, { OPERATION_WAITS_MAX_PER_TENANT: 2 }, registry);
    const over = (wait: { settled(ms: number): Promise<void> }) =>
      Promise.race([wait.settled(60_000).then(() => true), new Promise<boolean>((resolve) => setImmediate(() => resolve(false)))]);

    const held = [await waiter.prepare(tenantId, operationIds[0]!), await waiter.prepare(tenantId, operationIds[1]!)];
    const third = await waiter.prepare(tenantId, operationIds[2]!);
    const otherTenant = await waiter.prepare('another-tenant', operationIds[3]!);
    try {
      // Before: the third waited like the others (no bound but the request budget).
      expect(await over(third)).toBe(true);
      expect(await over(held[0]!)).toBe(false);
      expect(await over(otherTenant)).toBe(false);
      expect(await registry.getSingleMetricAsString('payorch_operation_waits_refused_total')).toMatch(/ 1$/m);
      expect(await registry.getSingleMetricAsString('payorch_operation_waits')).toMatch(/ 3$/m);

      held[0]!.close();
      third.close();
      const fourth = await waiter.prepare(tenantId, operationIds[4]!);
      expect(await over(fourth)).toBe(false);
      fourth.close();
    } finally {
      for (const wait of [...held, third, otherTenant]) wait.close();
    }
    expect(await registry.getSingleMetricAsString('payorch_operation_waits')).toMatch(/ 0$/m);
  });

  it('a wait whose key stops authenticating ends at once with 401, whether it is heard of before or during the wait; close stops watching', async () => {
    // Live events that never come: without the key a wait would end only at its deadline.
    const hub = { add: () => Promise.resolve(() => undefined) } as unknown as EventHub;
    const logger = { warn: () => undefined } as unknown as Logger;
    const waiter = new OperationOutcomeWaiter(hub, db, logger);
    /** A watched key: `fail` is what KeyWatch calls once the key fails; `watching` until the wait stops watching it. */
    const key = () => {
      const watched = { fail: undefined as unknown as () => void, watching: false };
      const watchKey = (end: (reason: string) => void) => {
        watched.fail = () => end('revoked');
        watched.watching = true;
        return () => (watched.watching = false);
      };
      return { watched, watchKey };
    };
    const refused = expect.objectContaining({ code: 'UNAUTHENTICATED', message: expect.stringContaining('the operation was created and goes on') });

    // Revoked while the operation is being dispatched, before the request waits.
    const early = key();
    const before = await waiter.prepare(tenantId, operationIds[0]!, early.watchKey);
    early.watched.fail();
    await expect(before.settled(60_000)).rejects.toEqual(refused);
    before.close();
    expect(early.watched.watching).toBe(false);

    // Revoked while the request waits.
    const late = key();
    const during = await waiter.prepare(tenantId, operationIds[1]!, late.watchKey);
    const settled = during.settled(60_000);
    expect(late.watched.watching).toBe(true);
    late.watched.fail();
    await expect(settled).rejects.toEqual(refused);
    during.close();
    expect(late.watched.watching).toBe(false);

    // A key that stays valid: the wait ends as before (here closed), and is no longer watched.
    const kept = key();
    const valid = await waiter.prepare(tenantId, operationIds[2]!, kept.watchKey);
    const running = valid.settled(60_000);
    valid.close();
    await expect(running).resolves.toBeUndefined();
    expect(kept.watched.watching).toBe(false);
  });
});
