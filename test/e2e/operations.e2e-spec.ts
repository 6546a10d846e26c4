import { Prisma } from '@payorch/db';
import type { TerminalCommandReply } from '@payorch/domain';
import { REASON_CODES } from '@payorch/drivers';
import { waitFor } from '@payorch/testing';
import { JoinprotoTerminalSimulator } from '@payorch/testing/joinproto-sim';
import { DEFAULT_ADMIN_PASSWORD, JpaySimulator } from '@payorch/testing/jpay-sim';
import { SsiEcrSimulator } from '@payorch/testing/ssi-ecr-sim';

import { GatewaySession, idem } from './support/gateway-session';
import { InProcessDispatcher } from './support/in-process-dispatcher';

describe('operations API (in-process dispatcher, real simulators over TCP)', () => {
  const session = new GatewaySession();
  let dispatcher: InProcessDispatcher;
  let auth: { Authorization: string };
  let authB: { Authorization: string };
  let tenantId: string;
  let storeId: string;
  const terminals: Record<'JOINPROTO' | 'JPAY' | 'SSI_ECR' | 'OFFLINE', string> = { JOINPROTO: '', JPAY: '', SSI_ECR: '', OFFLINE: '' };
  let joinproto: JoinprotoTerminalSimulator;
  let jpay: JpaySimulator;
  let ssi: SsiEcrSimulator;

  beforeAll(async () => {
    session.dispatcherFactory = (appUrl, publish) => (dispatcher = new InProcessDispatcher(appUrl, publish));
    await session.start();
    const a = await session.tenant();
    auth = { Authorization: `Bearer ${a.apiKey}` };
    tenantId = a.tenantId;
    authB = { Authorization: `Bearer ${(await session.tenant()).apiKey}` };
    storeId = (await session.http().post('/v1/stores').set(auth).set('Idempotency-Key', idem()).send({ name: 'S', timeZone: 'UTC' })).body.id;
    const create = async (protocol: string, extra: object = {}) =>
      (
        await session
          .http()
          .post('/v1/terminals')
          .set(auth)
          .set('Idempotency-Key', idem())
          .send({ name: protocol, storeId, protocol, connection: { kind: 'tcp', host: '127.0.0.1', port: 1 }, ...extra })
      ).body.id as string;
    terminals.JOINPROTO = await create('joinproto');
    terminals.JPAY = await create('jpay', { credentials: { adminPassword: DEFAULT_ADMIN_PASSWORD } });
    terminals.SSI_ECR = await create('ssi_ecr');
    terminals.OFFLINE = await create('joinproto');

    joinproto = new JoinprotoTerminalSimulator({ cardTimeoutMs: 30, dropResponse: (r) => 'amount' in r && r.amount === 4242 });
    dispatcher.route(terminals.JOINPROTO, { port: (await joinproto.listen(0)).port, options: { commandTimeoutMs: 300 } });
    jpay = new JpaySimulator({ dialect: 'aqsi', keepaliveIntervalMs: 2 });
    dispatcher.route(terminals.JPAY, { port: await jpay.listen(0), credentials: { adminPassword: DEFAULT_ADMIN_PASSWORD } });
    ssi = new SsiEcrSimulator({ port: 0 });
    dispatcher.route(terminals.SSI_ECR, { port: (await ssi.start()).port, options: { pollIntervalMs: 1 } });
  });

  afterAll(async () => {
    await dispatcher.close();
    await joinproto.close();
    await jpay.close();
    await ssi.stop();
    await session.stop();
  });

  const start = (terminalId: string, body: object, key = idem(), wait = 5000, headers = auth) =>
    session.http().post(`/v1/terminals/${terminalId}/operations?wait=${wait}`).set(headers).set('Idempotency-Key', key).send(body);
  const get = (id: string, headers = auth) => session.http().get(`/v1/operations/${id}`).set(headers);
  /** The operation once `predicate(state, subStatus)` holds (read through the API). */
  const until = (id: string, predicate: (state: string, subStatus: string | null) => boolean): Promise<Record<string, unknown>> =>
    waitFor(
      async () => {
        const res = await get(id);
        return predicate(res.body.state, res.body.subStatus) && (res.body as Record<string, unknown>);
      },
      { intervalMs: 10, what: `operation ${id} in the expected state` },
    );

  describe.each([
    ['JOINPROTO', 1500, 1516],
    ['JPAY', 1500, 1551],
    ['SSI_ECR', 1500, 1551],
  ] as const)('%s', (protocol, approveAmount, declineAmount) => {
    it('approves a purchase, then refunds and voids it with its stored references; declines another', async () => {
      const terminalId = terminals[protocol];
      const paid = await start(terminalId, { type: 'purchase', amount: approveAmount, currency: 'RUB' });
      expect(paid.status).toBe(201);
      expect(paid.body).toMatchObject({ state: 'approved', type: 'purchase', amount: approveAmount, currency: 'RUB', terminalId, storeId, hasReceipt: true });
      expect(paid.body.maskedPan).toMatch(/\d{4}$/);
      expect(paid.body.rrn).toEqual(expect.any(String));

      const receipt = await session.http().get(`/v1/operations/${paid.body.id}/receipt`).set(auth);
      expect(receipt.status).toBe(200);
      expect(receipt.body).toMatchObject({ operationId: paid.body.id, text: expect.any(String) });

      const refund = await start(terminalId, { type: 'refund', amount: 500, currency: 'RUB', originalOperationId: paid.body.id });
      expect(refund.body).toMatchObject({ state: 'approved', type: 'refund', originalOperationId: paid.body.id });
      const voided = await start(terminalId, { type: 'void', currency: 'RUB', originalOperationId: paid.body.id });
      if (protocol === 'JPAY') {
        // JPAY's void cancels what is left of the original (§8.9), and is recorded so.
        expect(voided.body).toMatchObject({ state: 'approved', type: 'void', amount: approveAmount - 500 });
      } else {
        // Joinproto's void is a refund of the whole original, SSI's cancels the whole transaction: after a partial
        // refund either would give back more than was paid (before, it was sent and approved).
        expect(voided.status).toBe(422);
        expect(voided.body.error).toMatchObject({ code: 'AMOUNT_EXCEEDS_ORIGINAL', details: { remainingAmount: approveAmount - 500 } });
        const untouched = await start(terminalId, { type: 'purchase', amount: approveAmount, currency: 'RUB' });
        const whole = await start(terminalId, { type: 'void', currency: 'RUB', originalOperationId: untouched.body.id });
        expect(whole.body).toMatchObject({ state: 'approved', type: 'void', amount: approveAmount });
      }

      const declined = await start(terminalId, { type: 'purchase', amount: declineAmount, currency: 'RUB' });
      expect(declined.body).toMatchObject({ state: 'declined', hasReceipt: expect.any(Boolean) });
      // The protocol-neutral reason from the protocol's result-code table (docs/protocols/result-codes.md).
      expect([paid.body.reasonCode, Object.keys(REASON_CODES).includes(declined.body.reasonCode)]).toEqual(['approved', true]);
      expect(declined.body.reasonCode).not.toBe('approved');
    });
  });

  it('runs preauth + capture where supported (SSI_ECR, JOINPROTO) and refuses preauth on JPAY with 422 naming the protocol', async () => {
    for (const protocol of ['SSI_ECR', 'JOINPROTO'] as const) {
      const hold = await start(terminals[protocol], { type: 'preauth', amount: 5000, currency: 'RUB' });
      expect(hold.body.state).toBe('approved');
      const capture = await start(terminals[protocol], { type: 'preauth_capture', amount: 4000, currency: 'RUB', originalOperationId: hold.body.id });
      expect(capture.body).toMatchObject({ state: 'approved', type: 'preauth_capture' });
    }
    const refused = await start(terminals.JPAY, { type: 'preauth', amount: 5000, currency: 'RUB' });
    expect(refused.status).toBe(422);
    expect(refused.body.error).toMatchObject({ code: 'UNPROCESSABLE', message: 'JPAY (dialect aqsi) does not support operation type "preauth"' });
  });

  it('same Idempotency-Key + same body → the same operation, executed once, even after the 24 h replay window; different body → 409', async () => {
    const key = idem();
    const body = { type: 'purchase', amount: 1700, currency: 'RUB' };
    const first = await start(terminals.JOINPROTO, body, key);
    const again = await start(terminals.JOINPROTO, body, key);
    expect(again.body.id).toBe(first.body.id);
    // The global replay record expires after 24 h; the operation keeps the key for good.
    await session.owner.idempotencyRecord.deleteMany({ where: { tenantId, key } });
    const later = await start(terminals.JOINPROTO, body, key);
    expect(later.status).toBe(201);
    expect(later.body).toMatchObject({ id: first.body.id, state: 'approved' });
    expect(joinproto.journal.filter((e) => e.amount === 1700)).toHaveLength(1);
    await session.owner.idempotencyRecord.deleteMany({ where: { tenantId, key } });
    const conflict = await start(terminals.JOINPROTO, { ...body, amount: 1800 }, key);
    expect(conflict.status).toBe(409);
    expect(conflict.body.error).toMatchObject({ code: 'IDEMPOTENCY_KEY_REUSED', details: { operationId: first.body.id } });
  });

  it('a key whose gateway died before storing the answer: 409 in progress with Retry-After until the claim lease ends, then the repeat takes it over — once (issue 15)', async () => {
    // A route whose answer the interceptor stores (the operations route keeps its key in the operation itself).
    const key = idem();
    const body = { name: 'Renamed by a dying gateway' };
    const patch = () => session.http().patch(`/v1/stores/${storeId}`).set(auth).set('Idempotency-Key', key).send(body);
    expect((await patch()).status).toBe(200);
    // The gateway died after the change committed and before the answer was stored: a claim without an answer.
    await session.owner.idempotencyRecord.update({
      where: { tenantId_key: { tenantId, key } },
      data: { responseStatus: null, responseBody: Prisma.DbNull, createdAt: new Date() },
    });
    const early = await patch();
    expect(early.status).toBe(409);
    expect(early.body.error.code).toBe('IDEMPOTENCY_KEY_IN_PROGRESS');
    expect(Number(early.headers['retry-after'])).toBeGreaterThanOrEqual(1);
    // Past the lease (IDEMPOTENCY_CLAIM_LEASE_MS, 6 min by default), concurrent repeats: one takes the claim over.
    await session.owner.idempotencyRecord.update({ where: { tenantId_key: { tenantId, key } }, data: { createdAt: new Date(Date.now() - 7 * 60_000) } });
    const repeats = await Promise.all([patch(), patch()]);
    // Exactly one ran the handler; the other was refused as in progress or, arriving after it, replayed its answer.
    const ran = repeats.filter((r) => r.status === 200 && r.headers['idempotent-replayed'] === undefined);
    expect(ran).toHaveLength(1);
    expect(repeats.every((r) => r === ran[0] || r.status === 409 || r.headers['idempotent-replayed'] === 'true')).toBe(true);
    expect(ran[0]!.body).toMatchObject({ id: storeId, name: body.name });
    // The answer is stored again: the next repeat replays it.
    const replay = await patch();
    expect([replay.status, replay.headers['idempotent-replayed']]).toEqual([200, 'true']);
  });

  it("keeps the operation's Idempotency-Key in the operation: no replay record, and a repeat with ?wait= waits for the same run (issue 19)", async () => {
    const key = idem();
    const body = { type: 'purchase', amount: 1720, currency: 'RUB' };
    const [first, repeat] = await Promise.all([start(terminals.JOINPROTO, body, key), start(terminals.JOINPROTO, body, key)]);
    expect([first.status, repeat.status]).toEqual([201, 201]);
    expect(repeat.body).toMatchObject({ id: first.body.id, state: 'approved' });
    expect(await session.owner.idempotencyRecord.count({ where: { tenantId, key } })).toBe(0);
    expect(joinproto.journal.filter((e) => e.amount === 1720)).toHaveLength(1);
  });

  it('a repeat of an operation its gateway never dispatched (PENDING, held by no connector) dispatches it again: approved once (issue 15)', async () => {
    const key = idem();
    const body = { type: 'purchase', amount: 1730, currency: 'RUB' };
    // The first gateway "dies" mid-dispatch: the command never leaves it.
    const dispatch = dispatcher.dispatch.bind(dispatcher);
    let release!: (reply: TerminalCommandReply) => void;
    dispatcher.dispatch = () => new Promise<TerminalCommandReply>((resolve) => (release = resolve));
    const first = await start(terminals.JOINPROTO, body, key, 0);
    dispatcher.dispatch = dispatch;
    expect(first.body.state).toBe('pending');
    // No connector holds it (a queued one is touched every PENDING_HOLD_INTERVAL_MS): it is an orphan.
    await session.owner.terminalOperation.update({ where: { id: first.body.id }, data: { updatedAt: new Date(Date.now() - 20_000) } });
    const repeat = await start(terminals.JOINPROTO, body, key);
    expect(repeat.body).toMatchObject({ id: first.body.id, state: 'approved' });
    expect(joinproto.journal.filter((e) => e.amount === 1730)).toHaveLength(1);
    // The dead gateway's dispatch never matters: the operation is no longer PENDING.
    release({ ok: false, code: 'TIMEOUT', message: 'the first gateway died' });
    expect((await until(first.body.id, (state) => state !== 'pending')).state).toBe('approved');
  });

  it('cancels a purchase waiting for the card, and answers 409 once it cannot be interrupted', async () => {
    const started = await start(terminals.JOINPROTO, { type: 'purchase', amount: 2055, currency: 'RUB' }, idem(), 0);
    expect(started.status).toBe(201);
    await until(started.body.id, (s) => s === 'in_progress');
    const cancel = await session.http().post(`/v1/operations/${started.body.id}/cancel`).set(auth).set('Idempotency-Key', idem());
    expect(cancel.status).toBe(202);
    expect(await until(started.body.id, (s) => s === 'canceled')).toMatchObject({ state: 'canceled' });
    const late = await session.http().post(`/v1/operations/${started.body.id}/cancel`).set(auth).set('Idempotency-Key', idem());
    expect(late.status).toBe(409);
    expect(late.body.error.message).toContain('is canceled and cannot be canceled');
  });

  it('cancels on SSI while waiting for the card (Interrupt) and gives 409 when the bank is already contacted', async () => {
    // The terminal holds each phase until the test has acted in it (its script would otherwise time out on its own).
    ssi.holdAt('S02');
    const waiting = await start(terminals.SSI_ECR, { type: 'purchase', amount: 1555, currency: 'RUB' }, idem(), 0);
    // The driver itself polled S02 (its progress is the operation's subStatus): Interrupt is allowed now.
    await until(waiting.body.id, (s, sub) => s === 'in_progress' && sub === 'waiting_card');
    expect(ssi.status).toBe('S02');
    expect((await session.http().post(`/v1/operations/${waiting.body.id}/cancel`).set(auth).set('Idempotency-Key', idem())).status).toBe(202);
    expect(await until(waiting.body.id, (s) => s === 'canceled')).toMatchObject({ state: 'canceled' });

    ssi.holdAt('S04');
    const slow = await start(terminals.SSI_ECR, { type: 'purchase', amount: 1561, currency: 'RUB' }, idem(), 0);
    await until(slow.body.id, (s, sub) => s === 'in_progress' && sub === 'connecting_host');
    const late = await session.http().post(`/v1/operations/${slow.body.id}/cancel`).set(auth).set('Idempotency-Key', idem());
    expect(late.status).toBe(409);
    expect(late.body.error.message).toContain('can no longer interrupt');
    ssi.holdAt(undefined);
    expect(await until(slow.body.id, (s) => s === 'approved')).toMatchObject({ state: 'approved' });
  });

  it("a lost answer makes the operation unknown (never failed); recovery resolves it to the terminal's true outcome", async () => {
    const lost = await start(terminals.JOINPROTO, { type: 'purchase', amount: 4242, currency: 'RUB' });
    expect(lost.body).toMatchObject({ state: 'unknown', completedAt: null });
    const reply = await dispatcher.dispatch({ kind: 'operation.recover', tenantId, terminalId: terminals.JOINPROTO, operationId: lost.body.id });
    expect(reply).toEqual({ ok: true, result: { attempted: true, state: 'approved' } });
    expect((await get(lost.body.id)).body).toMatchObject({ state: 'approved', amount: 4242, rrn: expect.any(String) });
    expect(joinproto.journal.filter((e) => e.amount === 4242)).toHaveLength(1);
  });

  it('an offline terminal fails the operation as not sent', async () => {
    const res = await start(terminals.OFFLINE, { type: 'purchase', amount: 100, currency: 'RUB' }, idem(), 1000);
    expect(res.body).toMatchObject({ state: 'failed', stateReason: expect.stringContaining('TERMINAL_OFFLINE') });
  });

  it('validates amounts and references: 400 for a bad amount, 422 for a refund of a declined operation', async () => {
    const big = await start(terminals.JOINPROTO, { type: 'purchase', amount: Number.MAX_SAFE_INTEGER + 1, currency: 'RUB' });
    expect(big.status).toBe(400);
    expect(big.body.error.details.issues[0].field).toBe('amount');
    const declined = await start(terminals.JOINPROTO, { type: 'purchase', amount: 1504, currency: 'RUB' });
    const refund = await start(terminals.JOINPROTO, { type: 'refund', amount: 100, currency: 'RUB', originalOperationId: declined.body.id });
    expect(refund.status).toBe(422);
    expect(refund.body.error.message).toContain('declined, not approved');
  });

  it('lists with filters and cursor pagination', async () => {
    const page1 = await session.http().get(`/v1/operations?terminalId=${terminals.SSI_ECR}&state=approved&limit=2`).set(auth);
    expect(page1.status).toBe(200);
    expect(page1.body.data).toHaveLength(2);
    expect(page1.body.data.every((o: { terminalId: string; state: string }) => o.terminalId === terminals.SSI_ECR && o.state === 'approved')).toBe(true);
    const page2 = await session.http().get(`/v1/operations?terminalId=${terminals.SSI_ECR}&state=approved&limit=2&cursor=${page1.body.nextCursor}`).set(auth);
    expect(page2.body.data[0].id).not.toBe(page1.body.data[1].id);
    const future = await session
      .http()
      .get(`/v1/operations?from=${encodeURIComponent(new Date(Date.now() + 60_000).toISOString())}`)
      .set(auth);
    expect(future.body.data).toEqual([]);
    const refunds = await session.http().get(`/v1/operations?type=refund&storeId=${storeId}`).set(auth);
    expect(refunds.body.data.length).toBeGreaterThanOrEqual(3);
    expect(refunds.body.data.every((o: { type: string }) => o.type === 'refund')).toBe(true);
  });

  it("tenant B can neither read nor drive tenant A's terminals and operations (404)", async () => {
    const mine = (await session.http().get('/v1/operations?limit=1').set(auth)).body.data[0].id as string;
    expect((await get(mine, authB)).status).toBe(404);
    expect((await session.http().get(`/v1/operations/${mine}/receipt`).set(authB)).status).toBe(404);
    expect((await session.http().post(`/v1/operations/${mine}/cancel`).set(authB).set('Idempotency-Key', idem())).status).toBe(404);
    expect((await start(terminals.JOINPROTO, { type: 'purchase', amount: 100, currency: 'RUB' }, idem(), 0, authB)).status).toBe(404);
    expect((await session.http().get('/v1/operations').set(authB)).body.data).toEqual([]);
  });
});
