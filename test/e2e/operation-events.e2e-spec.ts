import { luhnValid } from '@payorch/logging';
import { JoinprotoTerminalSimulator } from '@payorch/testing/joinproto-sim';

import { GatewaySession, idem } from './support/gateway-session';
import { InProcessDispatcher } from './support/in-process-dispatcher';

/** GET /v1/operations/{id}/events: the recorded steps of one operation, oldest first, masked, tenant-scoped. */
describe('operation events API (the timeline of an operation)', () => {
  const session = new GatewaySession();
  let dispatcher: InProcessDispatcher;
  let sim: JoinprotoTerminalSimulator;
  let auth: { Authorization: string };
  let authB: { Authorization: string };
  let tenantB: string;
  let terminalId: string;

  beforeAll(async () => {
    session.dispatcherFactory = (appUrl, publish) => (dispatcher = new InProcessDispatcher(appUrl, publish));
    await session.start();
    auth = { Authorization: `Bearer ${(await session.tenant()).apiKey}` };
    const b = await session.tenant();
    authB = { Authorization: `Bearer ${b.apiKey}` };
    tenantB = b.tenantId;
    const storeId = (await session.http().post('/v1/stores').set(auth).set('Idempotency-Key', idem()).send({ name: 'S', timeZone: 'UTC' })).body.id;
    terminalId = (
      await session
        .http()
        .post('/v1/terminals')
        .set(auth)
        .set('Idempotency-Key', idem())
        .send({ name: 'T', storeId, protocol: 'joinproto', connection: { kind: 'tcp', host: '127.0.0.1', port: 1 } })
    ).body.id;
    // 4242: the terminal takes the payment but its answer is lost, so the operation becomes unknown.
    sim = new JoinprotoTerminalSimulator({ cardTimeoutMs: 30, dropResponse: (r) => 'amount' in r && r.amount === 4242 });
    dispatcher.route(terminalId, { port: (await sim.listen(0)).port, options: { commandTimeoutMs: 300 } });
  });

  afterAll(async () => {
    await dispatcher.close();
    await sim.close();
    await session.stop();
  });

  const purchase = (amount: number) =>
    session
      .http()
      .post(`/v1/terminals/${terminalId}/operations?wait=5000`)
      .set(auth)
      .set('Idempotency-Key', idem())
      .send({ type: 'purchase', amount, currency: 'RUB' });
  const events = (id: string, query = '', headers = auth) => session.http().get(`/v1/operations/${id}/events${query}`).set(headers);

  interface Step {
    id: string;
    kind: string;
    fromState: string | null;
    toState: string | null;
    data: Record<string, unknown> | null;
    createdAt: string;
  }

  it('lists the steps of an approved purchase oldest first, the state changes forming one chain from pending to approved', async () => {
    const paid = await purchase(1500);
    expect(paid.body.state).toBe('approved');
    const res = await events(paid.body.id);
    expect(res.status).toBe(200);
    const steps = res.body.data as Step[];
    expect(res.body.nextCursor).toBeNull();
    expect(steps[0]).toMatchObject({ kind: 'created', fromState: null, toState: 'pending', operationId: paid.body.id });
    expect(steps.map((s) => s.createdAt)).toEqual([...steps.map((s) => s.createdAt)].sort());
    const changes = steps.filter((s) => s.toState !== null);
    for (let i = 1; i < changes.length; i++) expect(changes[i]!.fromState).toBe(changes[i - 1]!.toState);
    expect(changes.at(-1)!.toState).toBe('approved');
    // Terminal progress is recorded too (status / display text), and so is each protocol frame, masked: the
    // request we sent, then the terminal's answer with the card's first 6 / last 4 only (docs/operations.md).
    expect(steps.some((s) => s.kind === 'progress')).toBe(true);
    const frames = steps.filter((s) => s.kind === 'frame');
    expect(frames.map((s) => [s.data?.direction, s.data?.summary, s.fromState, s.toState]).slice(-2)).toEqual([
      ['out', 'Purchase (01)', null, null],
      ['in', 'Purchase (01)', null, null],
    ]);
    expect(frames.at(-1)!.data).toEqual({
      direction: 'in',
      summary: 'Purchase (01)',
      masked: expect.stringMatching(/DF04=\d{6}\*+\d{4} /),
      at: expect.any(String),
    });
    // No step carries a card number: no Luhn-valid 13–19 digit run (the 15-digit merchant id DF13 is not one).
    const runs = JSON.stringify(steps).match(/\d{13,19}/g) ?? [];
    expect(runs.filter((run) => luhnValid(run))).toEqual([]);
  });

  it('pages with the opaque cursor: the pages together are the single list, in the same order', async () => {
    const paid = await purchase(1600);
    const whole = (await events(paid.body.id, '?limit=200')).body.data as Step[];
    expect(whole.length).toBeGreaterThan(2);
    const walked: Step[] = [];
    let cursor: string | null = null;
    do {
      const page: { body: { data: Step[]; nextCursor: string | null } } = await events(paid.body.id, `?limit=2${cursor ? `&cursor=${cursor}` : ''}`);
      expect(page.body.data.length).toBeLessThanOrEqual(2);
      walked.push(...page.body.data);
      cursor = page.body.nextCursor;
    } while (cursor);
    expect(walked.map((s) => s.id)).toEqual(whole.map((s) => s.id));
    const bad = await events(paid.body.id, '?cursor=nonsense');
    expect(bad.status).toBe(400);
    expect(bad.body.error).toMatchObject({ code: 'VALIDATION_FAILED', details: { issues: [{ field: 'cursor' }] } });
  });

  it('keeps the order the steps were written in when they share a millisecond (ids are random, so not by id)', async () => {
    const paid = await purchase(1700);
    const { tenantId } = (await session.owner.terminalOperation.findUniqueOrThrow({ where: { id: paid.body.id } })) as { tenantId: string };
    // Three steps written one after another in one millisecond, their ids in the reverse of that order.
    const at = new Date(Date.now() + 60_000);
    const ids = ['ffffffff-0000-4000-8000-000000000003', '88888888-0000-4000-8000-000000000002', '00000000-0000-4000-8000-000000000001'];
    for (const [i, id] of ids.entries()) {
      await session.owner.operationEvent.create({ data: { id, tenantId, operationId: paid.body.id, kind: 'progress', data: { n: i }, createdAt: at } });
    }
    const whole = (await events(paid.body.id, '?limit=200')).body.data as Step[];
    expect(whole.slice(-3).map((s) => s.id)).toEqual(ids);
    // Paged one by one across the tie, too.
    const walked: string[] = [];
    let cursor: string | null = null;
    do {
      const page: { body: { data: Step[]; nextCursor: string | null } } = await events(paid.body.id, `?limit=1${cursor ? `&cursor=${cursor}` : ''}`);
      walked.push(...page.body.data.map((s) => s.id));
      cursor = page.body.nextCursor;
    } while (cursor);
    expect(walked).toEqual(whole.map((s) => s.id));
  });

  it('shows an unknown operation and its manual resolution, with a card number in the note masked', async () => {
    const lost = await purchase(4242);
    expect(lost.body.state).toBe('unknown');
    const unknown = (await events(lost.body.id)).body.data as Step[];
    expect(unknown.at(-1)).toMatchObject({ toState: 'unknown' });
    const resolved = await session
      .http()
      .post(`/v1/operations/${lost.body.id}/resolve`)
      .set(auth)
      .set('Idempotency-Key', idem())
      .send({ state: 'approved', rrn: '123456789012', note: 'journal shows card 4111 1111 1111 1111 approved' });
    expect(resolved.status).toBe(200);
    expect(resolved.body.stateReason).toBe('resolved manually: journal shows card 411111******1111 approved');
    const steps = (await events(lost.body.id)).body.data as Step[];
    expect(steps.at(-1)).toMatchObject({
      kind: 'resolved_manually',
      fromState: 'unknown',
      toState: 'approved',
      data: { note: 'journal shows card 411111******1111 approved', rrn: '123456789012', resolvedBy: 'human' },
    });
    expect(JSON.stringify(steps)).not.toContain('4111 1111 1111 1111');
  });

  it('should not read the events of an operation of another tenant: 404, and RLS hides the rows', async () => {
    const paid = await purchase(1700);
    const res = await events(paid.body.id, '', authB);
    expect(res.status).toBe(404);
    expect(res.body.error).toMatchObject({ code: 'NOT_FOUND', details: { resource: 'operation', id: paid.body.id } });
    // RLS, not a WHERE clause: the same read through tenant B's scoped client sees no row.
    const seen = await session.appDb.withTenant(tenantB, (tx) => tx.operationEvent.findMany({ where: { operationId: paid.body.id } }));
    expect(seen).toEqual([]);
    expect((await session.owner.operationEvent.count({ where: { operationId: paid.body.id } })) > 0).toBe(true);
    expect((await events('00000000-0000-4000-8000-000000000000')).status).toBe(404);
    expect((await events('not-a-uuid')).status).toBe(400);
  });

  it('needs operations:read', async () => {
    const paid = await purchase(1800);
    const tenantId = (await session.owner.terminalOperation.findUniqueOrThrow({ where: { id: paid.body.id } })).tenantId;
    const narrow = await session.admin.createApiKey({ tenantId, name: 'fleet only', scopes: ['terminals:read'] });
    const res = await events(paid.body.id, '', { Authorization: `Bearer ${narrow.apiKey}` });
    expect(res.status).toBe(403);
    expect(
      (await events(paid.body.id, '', { Authorization: `Bearer ${(await session.admin.createApiKey({ tenantId, name: 'r', scopes: ['read'] })).apiKey}` }))
        .status,
    ).toBe(200);
  });
});
