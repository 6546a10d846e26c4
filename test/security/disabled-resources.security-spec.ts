import { GatewaySession, idem } from '../e2e/support/gateway-session';
import { InProcessDispatcher } from '../e2e/support/in-process-dispatcher';

/**
 * Attack (issue 13, finding 5): keep using a terminal after it was disabled, or after the agent that
 * bridges it was revoked. New work on it (operations of every type, manual close-day) is 409 with a
 * code naming why, before anything is written or sent to the terminal; reads keep working.
 */
describe('disabled terminals and revoked agents take no new work', () => {
  const session = new GatewaySession();
  let dispatcher: InProcessDispatcher;
  let auth: { Authorization: string };
  let storeId: string;

  beforeAll(async () => {
    // Unrouted terminals answer TERMINAL_OFFLINE: enough to see whether a command was sent at all.
    session.dispatcherFactory = (appUrl, publish) => (dispatcher = new InProcessDispatcher(appUrl, publish));
    await session.start();
    auth = { Authorization: `Bearer ${(await session.tenant()).apiKey}` };
    storeId = (await session.http().post('/v1/stores').set(auth).set('Idempotency-Key', idem()).send({ name: 'S', timeZone: 'UTC' })).body.id;
  });

  afterAll(async () => {
    await dispatcher.close();
    await session.stop();
  });

  const createTerminal = async (extra: object = {}) => {
    const res = await session
      .http()
      .post('/v1/terminals')
      .set(auth)
      .set('Idempotency-Key', idem())
      .send({ name: 'T', storeId, protocol: 'joinproto', connection: { kind: 'tcp', host: '127.0.0.1', port: 1 }, ...extra });
    expect(res.status).toBe(201);
    return res.body.id as string;
  };
  const startOperation = (terminalId: string, body: object = { type: 'purchase', amount: 1000, currency: 'RUB' }) =>
    session.http().post(`/v1/terminals/${terminalId}/operations`).set(auth).set('Idempotency-Key', idem()).send(body);
  const closeDay = (terminalId: string) => session.http().post(`/v1/terminals/${terminalId}/settlements`).set(auth).set('Idempotency-Key', idem()).send({});
  const commandsFor = (terminalId: string) => dispatcher.commands.filter((c) => c.terminalId === terminalId).length;
  const rowsFor = async (terminalId: string) => ({
    operations: await session.owner.terminalOperation.count({ where: { terminalId } }),
    settlements: await session.owner.settlement.count({ where: { terminalId } }),
  });

  /** Every kind of new work is refused with `code`, and nothing was written or dispatched. */
  async function expectNoNewWork(terminalId: string, code: string) {
    const before = { rows: await rowsFor(terminalId), commands: commandsFor(terminalId) };
    for (const body of [
      { type: 'purchase', amount: 1000, currency: 'RUB' },
      { type: 'refund', amount: 500, currency: 'RUB', originalOperationId: '00000000-0000-4000-8000-000000000000' },
      { type: 'settlement' },
      { type: 'report_x' },
      { type: 'terminal_info' },
    ]) {
      const res = await startOperation(terminalId, body);
      expect({ type: body.type, status: res.status, code: res.body.error?.code }).toEqual({ type: body.type, status: 409, code });
      expect(res.body.error.details).toMatchObject({ terminalId });
    }
    const settle = await closeDay(terminalId);
    expect(settle.status).toBe(409);
    expect(settle.body.error.code).toBe(code);
    expect(await rowsFor(terminalId)).toEqual(before.rows);
    expect(commandsFor(terminalId)).toBe(before.commands);
  }

  it('a DISABLED terminal: 409 TERMINAL_DISABLED for every new operation and close-day; reads keep working; enabling lifts it', async () => {
    const terminalId = await createTerminal();
    const earlier = await startOperation(terminalId);
    expect(earlier.status).toBe(201);
    expect(commandsFor(terminalId)).toBe(1);

    const disabled = await session.http().patch(`/v1/terminals/${terminalId}`).set(auth).set('Idempotency-Key', idem()).send({ disabled: true });
    expect(disabled.body.status).toBe('disabled');

    await expectNoNewWork(terminalId, 'TERMINAL_DISABLED');
    const refused = await startOperation(terminalId);
    expect(refused.body.error.message).toContain(`terminal ${terminalId} is disabled`);

    // Reads: the operation, the history, the lists and the terminal itself.
    expect((await session.http().get(`/v1/operations/${earlier.body.id}`).set(auth)).status).toBe(200);
    const history = await session.http().get(`/v1/operations?terminalId=${terminalId}`).set(auth);
    expect(history.status).toBe(200);
    expect(history.body.data.map((o: { id: string }) => o.id)).toEqual([earlier.body.id]);
    expect((await session.http().get(`/v1/settlements?terminalId=${terminalId}`).set(auth)).status).toBe(200);
    const terminal = await session.http().get(`/v1/terminals/${terminalId}`).set(auth);
    expect(terminal.body).toMatchObject({ id: terminalId, status: 'disabled' });
    expect((await session.http().get(`/v1/terminals?status=disabled`).set(auth)).body.data.map((t: { id: string }) => t.id)).toContain(terminalId);

    await session.http().patch(`/v1/terminals/${terminalId}`).set(auth).set('Idempotency-Key', idem()).send({ disabled: false });
    expect((await startOperation(terminalId)).status).toBe(201);
    expect(commandsFor(terminalId)).toBe(2);
  });

  it('a terminal whose agent is REVOKED: 409 AGENT_REVOKED for every new operation and close-day; reads keep working', async () => {
    const agent = await session.http().post('/v1/agents').set(auth).set('Idempotency-Key', idem()).send({ name: 'Till', storeId });
    const agentId = agent.body.agent.id as string;
    const terminalId = await createTerminal({ agentId });
    const earlier = await startOperation(terminalId);
    expect(earlier.status).toBe(201);

    const revoked = await session.http().post(`/v1/agents/${agentId}/revoke`).set(auth).set('Idempotency-Key', idem());
    expect(revoked.body.status).toBe('revoked');

    await expectNoNewWork(terminalId, 'AGENT_REVOKED');
    const refused = await startOperation(terminalId);
    expect(refused.body.error.details).toEqual({ terminalId, agentId });
    expect((await session.http().get(`/v1/operations/${earlier.body.id}`).set(auth)).status).toBe(200);
    expect((await session.http().get(`/v1/operations?terminalId=${terminalId}`).set(auth)).body.data).toHaveLength(1);

    // Moving the terminal off the revoked agent lifts it.
    await session.http().patch(`/v1/terminals/${terminalId}`).set(auth).set('Idempotency-Key', idem()).send({ agentId: null });
    expect((await startOperation(terminalId)).status).toBe(201);
  });

  it('a deleted terminal: 404 for new work, nothing dispatched', async () => {
    const terminalId = await createTerminal();
    expect((await session.http().delete(`/v1/terminals/${terminalId}`).set(auth).set('Idempotency-Key', idem())).status).toBe(204);
    const res = await startOperation(terminalId);
    expect(res.status).toBe(404);
    expect(res.body.error.code).toBe('NOT_FOUND');
    expect((await closeDay(terminalId)).status).toBe(404);
    expect(commandsFor(terminalId)).toBe(0);
  });
});
