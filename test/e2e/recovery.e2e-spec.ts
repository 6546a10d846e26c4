import type { INestApplication } from '@nestjs/common';

import { createWorkerApp } from '../../apps/settlement-worker/src/bootstrap';
import { loadConfig, workerConfigSchema } from '@payorch/config';
import { createLogger } from '@payorch/logging';
import { insertOperation } from '@payorch/operations';
import { freePort, waitFor } from '@payorch/testing';
import { JoinprotoTerminalSimulator } from '@payorch/testing/joinproto-sim';

import { GatewaySession, idem } from './support/gateway-session';
import { InProcessDispatcher } from './support/in-process-dispatcher';

describe('operation recovery (worker: stuck → unknown → operation.recover; give-up; human resolve)', () => {
  const session = new GatewaySession();
  let dispatcher: InProcessDispatcher;
  let worker: INestApplication;
  let sim: JoinprotoTerminalSimulator;
  let auth: { Authorization: string };
  let authB: { Authorization: string };
  let tenantId: string;
  let storeId: string;
  let liveTerminal: string;
  let deadTerminal: string;

  beforeAll(async () => {
    session.dispatcherFactory = (appUrl, publish) => (dispatcher = new InProcessDispatcher(appUrl, publish));
    await session.start();
    const a = await session.tenant();
    tenantId = a.tenantId;
    auth = { Authorization: `Bearer ${a.apiKey}` };
    authB = { Authorization: `Bearer ${(await session.tenant()).apiKey}` };
    storeId = (await session.http().post('/v1/stores').set(auth).set('Idempotency-Key', idem()).send({ name: 'S', timeZone: 'UTC' })).body.id;
    const terminal = async () =>
      (
        await session
          .http()
          .post('/v1/terminals')
          .set(auth)
          .set('Idempotency-Key', idem())
          .send({ name: 'T', storeId, protocol: 'joinproto', connection: { kind: 'tcp', host: '127.0.0.1', port: 1 } })
      ).body.id as string;
    liveTerminal = await terminal();
    deadTerminal = await terminal();
    sim = new JoinprotoTerminalSimulator({ cardTimeoutMs: 30, dropResponse: (r) => 'amount' in r && r.amount === 4242 });
    dispatcher.route(liveTerminal, { port: (await sim.listen(0)).port, options: { commandTimeoutMs: 300 } });
    dispatcher.route(deadTerminal, { port: await freePort(), options: { commandTimeoutMs: 300 } });

    const config = loadConfig('settlement-worker', workerConfigSchema, {
      DATABASE_APP_URL: session.testDb.appUrl,
      REDIS_URL: session.config.REDIS_URL,
      REDIS_KEY_PREFIX: session.config.REDIS_KEY_PREFIX,
      LOG_LEVEL: 'silent',
      PAYORCH_MASTER_KEY: session.config.PAYORCH_MASTER_KEY,
      RECOVERY_INTERVAL_MS: '150',
      RECOVERY_STUCK_AFTER_MS: '8000',
      RECOVERY_PENDING_AFTER_MS: '3000',
      RECOVERY_BACKOFF_BASE_MS: '50',
      RECOVERY_BACKOFF_MAX_MS: '100',
      RECOVERY_MAX_ATTEMPTS: '2',
      WEBHOOK_SWEEP_INTERVAL_MS: '600000',
      SETTLEMENT_SYNC_INTERVAL_MS: '600000',
      WALLET_SWEEP_INTERVAL_MS: '600000',
    });
    // The worker dispatches `operation.recover` through the same in-process dispatcher (production: the Redis command bus).
    worker = await createWorkerApp(config, createLogger({ name: 'test', level: 'silent' }), { dispatcher });
    await worker.init();
  });

  afterAll(async () => {
    await worker.close();
    await dispatcher.close();
    await sim.close();
    await session.stop();
  });

  const get = (id: string, headers = auth) => session.http().get(`/v1/operations/${id}`).set(headers);
  const until = (id: string, predicate: (body: Record<string, unknown>) => boolean, what: string, ms = 10_000): Promise<Record<string, unknown>> =>
    waitFor(
      async () => {
        const res = await get(id);
        return predicate(res.body) && (res.body as Record<string, unknown>);
      },
      { timeoutMs: ms, intervalMs: 50, what },
    );
  const recovers = (id: string) => dispatcher.commands.filter((c) => c.kind === 'operation.recover' && c.operationId === id).length;
  /** A PENDING operation made as the gateway would, then forced into `state` as if its executor died there. */
  async function abandoned(terminalId: string, state: 'PENDING' | 'SENT' | 'UNKNOWN', refs: Record<string, string> | null, agoMs: number) {
    const { row } = await session.appDb.withTenant(tenantId, (tx) =>
      insertOperation(tx, { tenantId, terminalId, storeId, type: 'purchase', amount: 700, currency: 'RUB', idempotencyKey: idem(), requestHash: 'x' }),
    );
    await session.owner
      .$executeRaw`UPDATE "TerminalOperation" SET "state" = ${state}::"OperationState", "protocolRefs" = ${refs === null ? null : JSON.stringify(refs)}::jsonb,
      "updatedAt" = now() - make_interval(secs => ${agoMs / 1000}::float8) WHERE "id" = ${row.id}::uuid`;
    return row.id;
  }

  it("recovers an operation whose answer was lost to the terminal's true outcome, without executing it twice", async () => {
    const lost = await session
      .http()
      .post(`/v1/terminals/${liveTerminal}/operations?wait=5000`)
      .set(auth)
      .set('Idempotency-Key', idem())
      .send({ type: 'purchase', amount: 4242, currency: 'RUB' });
    expect(lost.body).toMatchObject({ state: 'unknown' });
    const done = await until(lost.body.id, (b) => b.state !== 'unknown', 'recovery');
    expect(done).toMatchObject({ state: 'approved', amount: 4242, rrn: expect.any(String) });
    expect(sim.journal.filter((e) => e.amount === 4242)).toHaveLength(1);
    const steps = await session.owner.operationEvent.findMany({ where: { operationId: lost.body.id }, orderBy: { createdAt: 'asc' } });
    expect(steps.at(-1)).toMatchObject({ kind: 'recovered', fromState: 'UNKNOWN', toState: 'APPROVED' });
    expect(dispatcher.commands.filter((c) => c.kind === 'operation.recover' && c.operationId === lost.body.id).length).toBeGreaterThanOrEqual(1);
  });

  it('moves an operation stuck in SENT past the horizon to UNKNOWN through the state machine, then recovers it (nothing was sent → failed)', async () => {
    const fresh = await abandoned(liveTerminal, 'SENT', null, 0);
    const id = await abandoned(liveTerminal, 'SENT', null, 10_000);
    const done = await until(id, (b) => b.state === 'failed', 'stuck → unknown → failed');
    expect(done.stateReason).toContain('never sent');
    const steps = await session.owner.operationEvent.findMany({ where: { operationId: id }, orderBy: { createdAt: 'asc' } });
    expect(steps.map((s) => [s.kind, s.fromState, s.toState])).toEqual([
      ['created', null, 'PENDING'],
      ['transition', 'SENT', 'UNKNOWN'],
      ['recovered', 'UNKNOWN', 'FAILED'],
    ]);
    const events = await session.owner.domainEvent.findMany({ where: { subjectId: id }, orderBy: { createdAt: 'asc' } });
    expect(events.map((e) => e.type)).toEqual(['operation.created', 'operation.unknown', 'operation.recovered']);
    // The one still within the horizon (its executor may still be running) is left alone.
    expect((await get(fresh)).body.state).toBe('sent');
  });

  it('fails an operation left PENDING past its own short horizon (no executor claimed or queued it: nothing was sent), leaving a fresh one alone', async () => {
    const fresh = await abandoned(deadTerminal, 'PENDING', null, 0);
    // Same age, past RECOVERY_PENDING_AFTER_MS (3 s) but not RECOVERY_STUCK_AFTER_MS (8 s): only the PENDING one is an orphan.
    const sentSameAge = await abandoned(deadTerminal, 'SENT', null, 5_000);
    const id = await abandoned(deadTerminal, 'PENDING', null, 5_000);
    const done = await until(id, (b) => b.state !== 'pending', 'the PENDING sweep');
    expect((await get(sentSameAge)).body.state).toBe('sent');
    await session.owner.terminalOperation.update({ where: { id: sentSameAge }, data: { state: 'CANCELED' } });
    expect(done).toMatchObject({ state: 'failed', stateReason: expect.stringContaining('never sent'), completedAt: expect.any(String) });
    const steps = await session.owner.operationEvent.findMany({ where: { operationId: id }, orderBy: { createdAt: 'asc' } });
    expect(steps.map((s) => [s.kind, s.fromState, s.toState])).toEqual([
      ['created', null, 'PENDING'],
      ['transition', 'PENDING', 'FAILED'],
    ]);
    // Nothing was asked of the terminal: no execute, no recover.
    expect(dispatcher.commands.filter((c) => 'operationId' in c && c.operationId === id)).toEqual([]);
    expect((await get(fresh)).body.state).toBe('pending');
    await session.owner.terminalOperation.update({ where: { id: fresh }, data: { state: 'CANCELED' } });
  });

  it('a terminal with an unrecovered operation takes no new work (409 TERMINAL_RECOVERING, Retry-After) until it is resolved', async () => {
    const id = await abandoned(deadTerminal, 'UNKNOWN', { df01: '000777' }, 0);
    const refused = await session
      .http()
      .post(`/v1/terminals/${deadTerminal}/operations`)
      .set(auth)
      .set('Idempotency-Key', idem())
      .send({ type: 'purchase', amount: 100, currency: 'RUB' });
    expect(refused.status).toBe(409);
    expect(refused.headers['retry-after']).toBe('10');
    expect(refused.body.error).toMatchObject({ code: 'TERMINAL_RECOVERING', details: { terminalId: deadTerminal, operationId: id, retryAfterSeconds: 10 } });
    const closeDay = await session.http().post(`/v1/terminals/${deadTerminal}/settlements`).set(auth).set('Idempotency-Key', idem()).send({});
    expect(closeDay.status).toBe(409);
    expect(closeDay.body.error.code).toBe('TERMINAL_RECOVERING');
    expect(await session.owner.terminalOperation.count({ where: { terminalId: deadTerminal, amount: 100n } })).toBe(0);
    // Reads keep working; a human resolution ends it and lifts the gate.
    expect((await get(id)).status).toBe(200);
    const resolved = await session
      .http()
      .post(`/v1/operations/${id}/resolve`)
      .set(auth)
      .set('Idempotency-Key', idem())
      .send({ state: 'failed', note: 'terminal journal: not performed' });
    expect(resolved.status).toBe(200);
    const accepted = await session
      .http()
      .post(`/v1/terminals/${deadTerminal}/operations`)
      .set(auth)
      .set('Idempotency-Key', idem())
      .send({ type: 'purchase', amount: 100, currency: 'RUB' });
    expect(accepted.status).toBe(201);
  });

  it('gives up after RECOVERY_MAX_ATTEMPTS inconclusive attempts, leaves it UNKNOWN flagged; a human resolves it (audited, only from unknown)', async () => {
    const id = await abandoned(deadTerminal, 'UNKNOWN', { df01: '000123' }, 1_000);
    const flagged = await until(id, (b) => typeof b.stateReason === 'string' && (b.stateReason as string).startsWith('recovery gave up'), 'the give-up');
    expect(flagged).toMatchObject({ state: 'unknown', recoveryAttempts: 2 });
    expect(recovers(id)).toBe(2);
    // A later recovery pass (it picks up an operation made unknown after the give-up) leaves the given-up one alone.
    const later = await abandoned(deadTerminal, 'UNKNOWN', { df01: '000124' }, 1_000);
    await waitFor(() => recovers(later) >= 1, { what: 'a recovery pass after the give-up' });
    expect(recovers(id)).toBe(2);
    await session.owner.terminalOperation.update({ where: { id: later }, data: { state: 'CANCELED' } });
    const exhausted = await session.owner.operationEvent.findMany({ where: { operationId: id, kind: 'recovery_exhausted' } });
    expect(exhausted).toHaveLength(1);

    const resolve = (body: object, headers = auth, op = id) =>
      session.http().post(`/v1/operations/${op}/resolve`).set(headers).set('Idempotency-Key', idem()).send(body);
    expect((await resolve({ state: 'approved', note: 'x' })).status).toBe(400);
    expect((await resolve({ state: 'canceled', note: 'checked the journal' })).status).toBe(400);
    const other = await resolve({ state: 'approved', note: 'checked the journal' }, authB);
    expect(other.status).toBe(404);
    const ok = await resolve({ state: 'approved', note: 'bank statement shows the charge' });
    expect(ok.status).toBe(200);
    expect(ok.body).toMatchObject({
      id,
      state: 'approved',
      stateReason: 'resolved manually: bank statement shows the charge',
      completedAt: expect.any(String),
    });
    const again = await resolve({ state: 'declined', note: 'changed my mind' });
    expect(again.status).toBe(409);
    expect(again.body.error.code).toBe('CONFLICT');
    const audit = await session.owner.auditLog.findMany({ where: { resourceId: id, action: 'operation.resolve' } });
    expect(audit).toHaveLength(1);
    expect(audit[0]!.details).toEqual({ state: 'approved', note: 'bank statement shows the charge' });
    const last = await session.owner.domainEvent.findFirst({ where: { subjectId: id }, orderBy: { createdAt: 'desc' } });
    expect(last).toMatchObject({ type: 'operation.recovered', data: expect.objectContaining({ state: 'approved', resolvedBy: 'human' }) });
  });
});
