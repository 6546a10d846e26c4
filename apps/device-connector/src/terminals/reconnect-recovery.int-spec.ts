import { Redis } from 'ioredis';

import type { Database, Prisma } from '@payorch/db';
import { type KeyedSerialQueue } from '@payorch/domain';
import { createDriver, type DriverConfig } from '@payorch/drivers';
import type { Registry } from '@payorch/logging';
import { ANOTHER_DEVICE } from '@payorch/operations';
import { deleteRedisPrefix, testRedisPrefix, testRedisUrl, waitFor } from '@payorch/testing';
import { JoinprotoTerminalSimulator } from '@payorch/testing/joinproto-sim';

import { CommandRouter } from '../bus/command-router';
import { bridgeLinksToLoopback, ConnectorHarness, dialAgent } from '../testing/connector-harness.testing';
import { DATABASE, REGISTRY, TERMINAL_QUEUE } from '../tokens';
import { TerminalHub } from './terminal-hub';

/**
 * A failed recovery on reconnect no longer leaves the terminal refusing every payment until the recovery sweep (review
 * finding): the claim refuses new work while an operation of the terminal is in doubt, and when the connector's one
 * recovery pass on reconnect failed (PostgreSQL, the terminal's link, a driver error) only the sweep's
 * RECOVERY_STUCK_AFTER_MS (10 min) decided the orphan — every payment meanwhile was failed TERMINAL_RECOVERING. The
 * connector holding the terminal now retries the pass (capped backoff) while its session is open, and an operation
 * refused behind an orphan brings the pass forward.
 */
describe('device-connector: the recovery on reconnect is retried until it decided the orphans', () => {
  const h = new ConnectorHarness({ poolSize: 4 });
  const prefix = testRedisPrefix('rrec');
  let hub: TerminalHub;
  let router: CommandRouter;
  let connectorDb: Database;
  let registry: Registry;
  let sim: JoinprotoTerminalSimulator;
  let simPort: number;
  /** Recovery queries (driver.recover) still to refuse, as a driver whose link is not up yet would. */
  let refuseRecoveries = 0;
  const tunnels: Array<{ close(): Promise<void> }> = [];
  const restores: Array<() => void> = [];

  /** The production driver, whose recovery query fails while `refuseRecoveries` says so. */
  const driverFactory = (config: DriverConfig) => {
    const driver = createDriver(config);
    const recover = driver.recover.bind(driver);
    driver.recover = async (command, refs) => {
      if (refuseRecoveries > 0) {
        refuseRecoveries--;
        throw new Error('the link to the terminal is not up yet');
      }
      return recover(command, refs);
    };
    return driver;
  };

  beforeAll(async () => {
    await h.start();
    const redis = new Redis(testRedisUrl());
    h.onStop(async () => {
      await deleteRedisPrefix(redis, prefix);
      await redis.quit();
    });
    await h.connector('rrec-a', prefix, { driverFactory });
    hub = h.app.get(TerminalHub);
    router = h.app.get(CommandRouter);
    connectorDb = h.app.get<Database>(DATABASE);
    registry = h.app.get<Registry>(REGISTRY);
  });

  beforeEach(async () => {
    sim = new JoinprotoTerminalSimulator({ cardTimeoutMs: 10 });
    ({ port: simPort } = await sim.listen(0));
    refuseRecoveries = 0;
    hub.recoveryRetry = { delayMs: () => 20, undecidedRetries: 5 };
  });

  afterEach(async () => {
    for (const restore of restores.splice(0)) restore();
    await Promise.all(tunnels.splice(0).map((tunnel) => tunnel.close()));
    await sim.close();
  });

  afterAll(() => h.stop());

  /** A tenant, a store, an enrolled agent and its Joinproto terminal (the simulator; its info read just now). */
  const shop = () => h.joinprotoShop(simPort);
  type Shop = Awaited<ReturnType<typeof shop>>;

  /** The agent's tunnel: every link the connector opens is bridged to the simulator. Resolves once the terminal is held here. */
  async function connectAgent(s: Shop) {
    const { ws, mux } = dialAgent(h.url, s.token);
    bridgeLinksToLoopback(mux, simPort);
    let closed = false;
    const tunnel = {
      close: async () => {
        if (closed) return;
        closed = true;
        if (ws.readyState !== ws.CLOSED) await new Promise<void>((resolve) => (ws.once('close', () => resolve()), ws.close()));
        // Its close is handled (handles closed, presence written) before the next tunnel of the agent is set up.
        await waitFor(() => hub.find(s.tenantId, s.terminalId) === undefined, { what: 'the terminal let go' });
        await hub.reconcile(s.agentId);
      },
    };
    tunnels.push(tunnel);
    await waitFor(() => hub.find(s.tenantId, s.terminalId)?.driver, { what: 'the terminal held here' });
    return tunnel;
  }

  const newPayment = (s: Shop, amount: number) => h.purchase(s, amount);

  /** The bus command `operation.execute` as the connector receives it. */
  const execute = (s: Shop, operationId: string) => router.handle({ kind: 'operation.execute', tenantId: s.tenantId, terminalId: s.terminalId, operationId });

  const load = async (id: string) =>
    (
      await h.admin.query<{ state: string; rrn: string | null; error: { code?: string; operationId?: string } | null }>(
        `SELECT state::text, rrn, error FROM "TerminalOperation" WHERE id = $1`,
        [id],
      )
    ).rows[0]!;
  /** The operation's state steps (not its progress and frames), in order. */
  const steps = async (id: string) =>
    (
      await h.admin.query<{ kind: string; fromState: string | null; toState: string | null }>(
        `SELECT kind, "fromState"::text AS "fromState", "toState"::text AS "toState" FROM "OperationEvent"
         WHERE "operationId" = $1 AND kind IN ('created', 'transition', 'recovery_attempt', 'recovered') ORDER BY seq`,
        [id],
      )
    ).rows.map((e) => [e.kind, e.fromState, e.toState]);

  /**
   * A purchase the terminal approved whose connector died (kill -9) before it stored the outcome: run to the end through
   * the agent's first tunnel, which then drops; the row is put back to what the dead executor left (SENT, no outcome,
   * its claim's DF01 kept), last changed a minute ago.
   */
  async function orphanApprovedOnTheTerminal(s: Shop, amount: number): Promise<string> {
    const first = await connectAgent(s);
    const id = await newPayment(s, amount);
    expect(await execute(s, id)).toEqual({ ok: true, result: { ran: true, state: 'approved' } });
    await first.close();
    await h.admin.query(
      `UPDATE "TerminalOperation" SET state = 'SENT', "subStatus" = NULL, "completedAt" = NULL, rrn = NULL, "approvalCode" = NULL,
         "responseCode" = NULL, "responseMessage" = NULL, "maskedPan" = NULL, receipt = NULL, result = NULL, "stateReason" = NULL,
         error = NULL, "updatedAt" = now() - interval '1 minute'
       WHERE id = $1`,
      [id],
    );
    return id;
  }

  /** PostgreSQL fails the next read of a recovery pass (the terminal's open operations) once, as in a failover. */
  function failNextRecoveryRead(): { failed: () => number } {
    const querySql = connectorDb.querySql.bind(connectorDb);
    let failed = 0;
    const spy = jest.spyOn(connectorDb, 'querySql').mockImplementation(((tenant: string | { tenantId: string }, query: Prisma.Sql) => {
      if (failed === 0 && query.sql.includes('o."completedAt" IS NULL AND o."state" IN (') && query.sql.includes('ORDER BY o."createdAt" ASC, o."id" ASC')) {
        failed++;
        return Promise.reject(new Error('Connection terminated unexpectedly'));
      }
      return querySql(tenant, query);
    }) as typeof connectorDb.querySql);
    restores.push(() => spy.mockRestore());
    return { failed: () => failed };
  }

  async function counter(name: string, labels: Record<string, string>): Promise<number> {
    const metric = await registry.getSingleMetric(name)!.get();
    return metric.values.find((v) => Object.entries(labels).every(([k, l]) => v.labels[k] === l))?.value ?? 0;
  }
  const failures = (reason: 'error' | 'undecided') => counter('payorch_connector_reconnect_recovery_failures_total', { reason });
  const retries = (trigger: 'backoff' | 'refusal') => counter('payorch_connector_reconnect_recovery_retries_total', { trigger });

  it('retries a recovery on reconnect that PostgreSQL failed: the orphan SENT is recovered as the terminal says, then the next payment runs', async () => {
    const s = await shop();
    const lost = await orphanApprovedOnTheTerminal(s, 1501);
    const [failedBefore, retriedBefore] = [await failures('error'), await retries('backoff')];
    const hiccup = failNextRecoveryRead();

    // The agent reconnects (after a connector crash, to this instance): the first pass fails on its first read.
    await connectAgent(s);
    const recovered = await waitFor(
      async () => {
        const op = await load(lost);
        return op.state === 'APPROVED' && op;
      },
      { what: 'the orphan recovered by a retry of the pass' },
    );
    expect(hiccup.failed()).toBe(1);
    expect(recovered.rrn).toBe(sim.journal[0]!.rrn);
    // Its first run's steps, then the recovery's (by a retry: the first pass wrote nothing).
    expect((await steps(lost)).slice(-2)).toEqual([
      ['transition', 'SENT', 'UNKNOWN'],
      ['recovered', 'UNKNOWN', 'APPROVED'],
    ]);
    expect(await failures('error')).toBe(failedBefore + 1);
    expect(await retries('backoff')).toBeGreaterThan(retriedBefore);

    // The terminal takes payments again, and nothing was executed twice.
    const next = await newPayment(s, 1502);
    expect(await execute(s, next)).toEqual({ ok: true, result: { ran: true, state: 'approved' } });
    expect(sim.journal.map((e) => e.amount)).toEqual([1501, 1502]);
  });

  it('a terminal re-pointed at another device while a payment is in doubt: the reconnect recovery does not ask the new device, a person decides', async () => {
    // Found in the eleventh session: the new device's Joinproto 95 knows no such DF01, and the payment the first device
    // approved was stored FAILED "not performed".
    const s = await shop();
    const lost = await orphanApprovedOnTheTerminal(s, 1601);
    expect(sim.journal.map((e) => [e.amount, e.approved])).toEqual([[1601, true]]);
    const replacement = new JoinprotoTerminalSimulator({ cardTimeoutMs: 10 });
    try {
      const { port } = await replacement.listen(0);
      await h.admin.query(`UPDATE "Terminal" SET connection = $2, "updatedAt" = now() WHERE id = $1`, [s.terminalId, { kind: 'tcp', host: '127.0.0.1', port }]);
      await connectAgent(s);
      const left = await waitFor(
        async () => {
          const { rows } = await h.admin.query<{ state: string; stateReason: string | null; recoveryAttempts: number }>(
            `SELECT state::text, "stateReason", "recoveryAttempts" FROM "TerminalOperation" WHERE id = $1`,
            [lost],
          );
          const row = rows[0]!;
          return (row.recoveryAttempts > 0 || !['SENT', 'UNKNOWN'].includes(row.state)) && row;
        },
        { what: 'the payment in doubt recovered, or a recovery attempt of it' },
      );
      expect(left).toMatchObject({ state: 'UNKNOWN', stateReason: ANOTHER_DEVICE });
      // The replacement can take payments only once a person has resolved the one in doubt (from the first device's journal).
      const next = await newPayment(s, 1602);
      expect(await execute(s, next)).toMatchObject({ ok: true, result: { ran: false, state: 'failed' } });
      expect((await load(next)).error).toMatchObject({ code: 'TERMINAL_RECOVERING', operationId: lost });
      expect(replacement.journal).toEqual([]);
    } finally {
      await replacement.close();
    }
  });

  it("a payment waiting in the terminal's queue when the terminal's row changed runs on the rebuilt driver, not on the closed one", async () => {
    // Found in the eleventh session: a command took its driver when it arrived, so a change of the terminal's row
    // (credentials, merchant, department, connection) that rebuilt the driver while it waited failed it "not sent".
    const s = await shop();
    await connectAgent(s);
    const before = hub.find(s.tenantId, s.terminalId)!;
    const queue = h.app.get<KeyedSerialQueue>(TERMINAL_QUEUE);
    let release!: () => void;
    const blocker = queue.run(s.terminalId, () => new Promise<void>((resolve) => (release = resolve)));
    const waiting = await newPayment(s, 1801);
    const reply = execute(s, waiting);
    await h.admin.query(`UPDATE "Terminal" SET "merchantId" = 'M-2', "updatedAt" = now() WHERE id = $1`, [s.terminalId]);
    await hub.reconcile(s.agentId);
    const after = hub.find(s.tenantId, s.terminalId)!;
    expect(after).not.toBe(before);
    expect(before.isClosed).toBe(true);
    release();
    await blocker;
    expect(await reply).toEqual({ ok: true, result: { ran: true, state: 'approved' } });
    expect(sim.journal.map((e) => [e.amount, e.approved])).toEqual([[1801, true]]);
  });

  it('asks the terminal again when its first recovery query failed (the link not up yet), instead of leaving the operation unknown to the sweep', async () => {
    const s = await shop();
    const lost = await orphanApprovedOnTheTerminal(s, 1601);
    const undecidedBefore = await failures('undecided');
    refuseRecoveries = 1;

    await connectAgent(s);
    await waitFor(async () => (await load(lost)).state === 'APPROVED', { what: 'the orphan recovered by a retry of the pass' });
    expect(refuseRecoveries).toBe(0);
    expect((await steps(lost)).slice(-3)).toEqual([
      ['transition', 'SENT', 'UNKNOWN'],
      ['recovery_attempt', 'UNKNOWN', 'UNKNOWN'],
      ['recovered', 'UNKNOWN', 'APPROVED'],
    ]);
    expect(await failures('undecided')).toBe(undecidedBefore + 1);

    const next = await newPayment(s, 1602);
    expect(await execute(s, next)).toEqual({ ok: true, result: { ran: true, state: 'approved' } });
    expect(sim.journal.map((e) => e.amount)).toEqual([1601, 1602]);
  });

  it('recovers the orphan as soon as a payment is refused behind it, not at the next retry (an hour away here)', async () => {
    hub.recoveryRetry = { delayMs: () => 3_600_000, undecidedRetries: 5 };
    const s = await shop();
    const lost = await orphanApprovedOnTheTerminal(s, 1701);
    const [failedBefore, refusalsBefore] = [await failures('error'), await retries('refusal')];
    failNextRecoveryRead();

    await connectAgent(s);
    // The first pass failed; its retry is an hour away.
    await waitFor(async () => (await failures('error')) === failedBefore + 1, { what: 'the first pass failed' });
    expect((await load(lost)).state).toBe('SENT');

    // A payment reaches its claim behind the orphan: refused, never sent; the refusal brings the recovery forward.
    const refused = await newPayment(s, 1702);
    expect(await execute(s, refused)).toEqual({ ok: true, result: { ran: false, state: 'failed' } });
    expect(await load(refused)).toMatchObject({ state: 'FAILED', error: { code: 'TERMINAL_RECOVERING', operationId: lost } });
    await waitFor(async () => (await load(lost)).state === 'APPROVED', { what: 'the orphan recovered after the refusal' });
    expect(await retries('refusal')).toBe(refusalsBefore + 1);

    const next = await newPayment(s, 1703);
    expect(await execute(s, next)).toEqual({ ok: true, result: { ran: true, state: 'approved' } });
    expect(sim.journal.map((e) => e.amount)).toEqual([1701, 1703]);
  });

  it('leaves alone an operation in doubt that changed since the terminal came online here (an executor elsewhere still reports on it)', async () => {
    hub.recoveryRetry = { delayMs: () => 3_600_000, undecidedRetries: 5 };
    const s = await shop();
    await connectAgent(s);
    // Another instance claimed it after this tunnel came up (the terminal was moved while its command ran there).
    const elsewhere = await newPayment(s, 1801);
    await h.admin.query(`UPDATE "TerminalOperation" SET state = 'IN_PROGRESS', "protocolRefs" = '{"df01":"424242"}', "updatedAt" = now() WHERE id = $1`, [
      elsewhere,
    ]);
    const refused = await newPayment(s, 1802);
    expect(await execute(s, refused)).toEqual({ ok: true, result: { ran: false, state: 'failed' } });
    // The pass the refusal woke has run (it is queued behind the refused command, in the terminal's queue).
    await hub.recoveryOf(s.tenantId, s.terminalId)!.running;
    expect(hub.recoveryOf(s.tenantId, s.terminalId)!.settled).toBe(true);
    expect((await load(elsewhere)).state).toBe('IN_PROGRESS');
    expect(await steps(elsewhere)).toEqual([['created', null, 'PENDING']]);
    expect(sim.journal).toEqual([]);
  });

  it('stops retrying once the session holding the terminal closed', async () => {
    hub.recoveryRetry = { delayMs: () => 3_600_000, undecidedRetries: 5 };
    const s = await shop();
    const lost = await orphanApprovedOnTheTerminal(s, 1901);
    const failedBefore = await failures('error');
    failNextRecoveryRead();
    const tunnel = await connectAgent(s);
    await waitFor(async () => (await failures('error')) === failedBefore + 1, { what: 'the first pass failed' });
    const recovery = hub.recoveryOf(s.tenantId, s.terminalId)!;
    expect(recovery.settled).toBe(false); // its retry is due
    await tunnel.close();
    expect(recovery.settled).toBe(true);
    expect((await load(lost)).state).toBe('SENT');
  });
});
