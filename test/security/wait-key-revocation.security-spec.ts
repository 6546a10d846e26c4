import type { Response } from 'supertest';

import { waitFor, withTimeout } from '@payorch/testing';
import { SsiEcrSimulator } from '@payorch/testing/ssi-ecr-sim';

import { GatewaySession, idem } from '../e2e/support/gateway-session';
import { InProcessDispatcher } from '../e2e/support/in-process-dispatcher';

/** Far longer than any test here: a wait that ends before it ended for its key, not for its deadline. */
const LONG_WAIT_MS = 60_000;
/** How long a refused wait may take to answer: the key is checked again as soon as its change is heard. */
const PROMPTLY_MS = 10_000;

/**
 * `POST /v1/terminals/{id}/operations?wait=` holds its request for up to 120 s after the key authenticated it: once
 * that key no longer authenticates (revoked through the API or the admin CLI, expired, its tenant disabled) the wait
 * must stop at once with 401, not go on and then answer the operation to a caller that lost access to it
 * (apps/api-gateway/src/events/key-watch.ts, as for live event streams). The operation itself goes on.
 */
describe('?wait= ends with its API key', () => {
  const session = new GatewaySession();
  let dispatcher: InProcessDispatcher;
  let ssi: SsiEcrSimulator;
  let tenantId: string;
  let adminKey: string;
  let terminalId: string;

  beforeAll(async () => {
    session.dispatcherFactory = (appUrl, publish) => (dispatcher = new InProcessDispatcher(appUrl, publish));
    // A long heartbeat: a revocation must end the wait at once, not at the next heartbeat's check.
    await session.start({ EVENTS_HEARTBEAT_MS: '60000' });
    ({ tenantId, apiKey: adminKey } = await session.tenant());
    const admin = { Authorization: `Bearer ${adminKey}` };
    const store = await session.http().post('/v1/stores').set(admin).set('Idempotency-Key', idem()).send({ name: 'S', timeZone: 'UTC' });
    const terminal = await session
      .http()
      .post('/v1/terminals')
      .set(admin)
      .set('Idempotency-Key', idem())
      .send({ name: 'POS', storeId: store.body.id, protocol: 'ssi_ecr', connection: { kind: 'tcp', host: '127.0.0.1', port: 1 } });
    terminalId = terminal.body.id;
    ssi = new SsiEcrSimulator({ port: 0 });
    dispatcher.route(terminalId, { port: (await ssi.start()).port, options: { pollIntervalMs: 5 } });
  });

  afterAll(async () => {
    ssi.holdAt(undefined);
    await dispatcher.close();
    await ssi.stop();
    await session.stop();
  });

  /** The request, sent now; `answered` tells whether its response has come. */
  const start = (apiKey: string, key: string, amount: number) => {
    const request = { answered: false, response: undefined as unknown as Promise<Response> };
    request.response = session
      .http()
      .post(`/v1/terminals/${terminalId}/operations?wait=${LONG_WAIT_MS}`)
      .set('Authorization', `Bearer ${apiKey}`)
      .set('Idempotency-Key', key)
      .send({ type: 'purchase', amount, currency: 'RUB' })
      .then((res) => {
        request.answered = true;
        return res;
      });
    return request;
  };
  /** The operation of an Idempotency-Key once the terminal holds it waiting for the card (read as the owner). */
  const heldAtTheTerminal = (key: string) =>
    waitFor(
      async () => {
        const row = await session.owner.terminalOperation.findFirst({ where: { tenantId, idempotencyKey: key } });
        return row?.state === 'IN_PROGRESS' && ssi.status === 'S02' && row;
      },
      { what: 'the operation held at the terminal' },
    );
  const stateOf = async (id: string) => (await session.owner.terminalOperation.findUniqueOrThrow({ where: { id } })).state;

  it('a key revoked through the API ends its wait with 401 at once; another key waiting on the operation gets it; the operation goes on', async () => {
    const pos = await session.apiKey(adminKey, ['operate'], 'pos');
    const key = idem();
    ssi.holdAt('S02');
    const revoked = start(pos.apiKey, key, 1_500);
    const operation = await heldAtTheTerminal(key);
    // The same operation waited on with a key that stays valid (a repeat of its Idempotency-Key).
    const kept = start(adminKey, key, 1_500);

    const revocation = await session.revokeApiKey(adminKey, pos.id);
    expect(revocation.status).toBe(200);
    const refused = await withTimeout(revoked.response, { timeoutMs: PROMPTLY_MS, what: 'the revoked key’s wait to answer' });
    // Answered while the terminal still holds the operation: the wait stopped for the key, not for its outcome or deadline.
    expect(await stateOf(operation.id)).toBe('IN_PROGRESS');
    expect(refused.status).toBe(401);
    expect(refused.body.error).toMatchObject({ code: 'UNAUTHENTICATED', requestId: expect.any(String) });
    expect(refused.body.error.message).toContain('invalid, revoked or expired API key');
    expect(refused.body.error.message).toContain('the operation was created and goes on');
    expect(kept.answered).toBe(false);

    ssi.holdAt(undefined);
    const answered = await kept.response;
    expect(answered.status).toBe(201);
    expect(answered.body).toMatchObject({ id: operation.id, state: 'approved' });
  });

  it('a tenant disabled by the admin CLI ends the waits of its keys with 401', async () => {
    const key = idem();
    ssi.holdAt('S02');
    const waiting = start(adminKey, key, 1_600);
    const operation = await heldAtTheTerminal(key);
    await session.admin.setTenantStatus(tenantId, 'DISABLED');
    try {
      const refused = await withTimeout(waiting.response, { timeoutMs: PROMPTLY_MS, what: 'the disabled tenant’s wait to answer' });
      expect(await stateOf(operation.id)).toBe('IN_PROGRESS');
      expect([refused.status, refused.body.error.code]).toEqual([401, 'UNAUTHENTICATED']);
    } finally {
      await session.admin.setTenantStatus(tenantId, 'ACTIVE');
      ssi.holdAt(undefined);
    }
    await waitFor(async () => (await stateOf(operation.id)) === 'APPROVED', { what: 'the operation approved' });
  });
});
