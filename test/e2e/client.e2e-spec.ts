import { createPayorchClient, EventStream, paginate, type PayorchApi, PayorchApiError, type PayorchEvent, unwrap } from '@payorch/client';
import { withTimeout } from '@payorch/testing';
import { JoinprotoTerminalSimulator } from '@payorch/testing/joinproto-sim';

import { GatewaySession } from './support/gateway-session';
import { InProcessDispatcher } from './support/in-process-dispatcher';

/**
 * The core flow through @payorch/client (the generated types + openapi-fetch), so the client cannot rot:
 * store → agent → terminal → purchase → refund → receipt, pagination, idempotency keys, the live stream.
 */
describe('@payorch/client against a running gateway (in-process dispatcher, Joinproto simulator)', () => {
  const session = new GatewaySession();
  let dispatcher: InProcessDispatcher;
  let joinproto: JoinprotoTerminalSimulator;
  let api: PayorchApi;
  let baseUrl: string;
  let apiKey: string;

  beforeAll(async () => {
    session.dispatcherFactory = (appUrl, publish) => (dispatcher = new InProcessDispatcher(appUrl, publish));
    await session.start();
    apiKey = (await session.tenant()).apiKey;
    baseUrl = (await session.app.getUrl()).replace('[::1]', '127.0.0.1');
    api = createPayorchClient({ baseUrl, apiKey });
    joinproto = new JoinprotoTerminalSimulator({ cardTimeoutMs: 30 });
  });
  afterAll(async () => {
    await dispatcher.close();
    await joinproto.close();
    await session.stop();
  });

  it('drives store → agent → terminal → purchase → refund → receipt with typed calls', async () => {
    const store = await unwrap(api.POST('/v1/stores', { body: { name: 'Main street', timeZone: 'Europe/Moscow' } }));
    const enrollment = await unwrap(api.POST('/v1/agents', { body: { name: 'Till 1', storeId: store.id } }));
    expect(enrollment.agent.status).toBe('pending_enrollment');
    expect(enrollment.enrollmentToken).toEqual(expect.any(String));
    const terminal = await unwrap(
      api.POST('/v1/terminals', {
        body: {
          name: 'POS 1',
          storeId: store.id,
          agentId: enrollment.agent.id,
          protocol: 'joinproto',
          connection: { kind: 'tcp', host: '127.0.0.1', port: 1 },
        },
      }),
    );
    expect(terminal).toMatchObject({ protocol: 'joinproto', status: 'unknown' });
    dispatcher.route(terminal.id, { port: (await joinproto.listen(0)).port, options: { commandTimeoutMs: 2000 } });

    const purchase = await unwrap(
      api.POST('/v1/terminals/{id}/operations', {
        params: { path: { id: terminal.id }, query: { wait: 5000 } },
        body: { type: 'purchase', amount: 1500, currency: 'RUB' },
      }),
    );
    expect(purchase).toMatchObject({ state: 'approved', type: 'purchase', amount: 1500 });
    const refund = await unwrap(
      api.POST('/v1/terminals/{id}/operations', {
        params: { path: { id: terminal.id }, query: { wait: 5000 } },
        body: { type: 'refund', amount: 1500, currency: 'RUB', originalOperationId: purchase.id },
      }),
    );
    expect(refund).toMatchObject({ state: 'approved', type: 'refund', originalOperationId: purchase.id });
    const receipt = await unwrap(api.GET('/v1/operations/{id}/receipt', { params: { path: { id: purchase.id } } }));
    expect(receipt).toMatchObject({ operationId: purchase.id, text: expect.any(String) });

    // Cursor pagination: every operation, one per page.
    const ids: string[] = [];
    for await (const op of paginate((cursor) => api.GET('/v1/operations', { params: { query: { cursor, limit: 1, terminalId: terminal.id } } })))
      ids.push(op.id);
    expect(ids).toEqual([refund.id, purchase.id]);
  });

  it('adds an Idempotency-Key to each mutating call unless given, and throws the error envelope as PayorchApiError', async () => {
    const body = { name: 'Same', timeZone: 'UTC' };
    const first = await unwrap(api.POST('/v1/stores', { body }));
    const second = await unwrap(api.POST('/v1/stores', { body }));
    expect(second.id).not.toBe(first.id); // two calls, two keys
    const key = `pos-retry-${first.id}`;
    const once = await api.POST('/v1/stores', { body, params: { header: { 'Idempotency-Key': key } } });
    const replay = await api.POST('/v1/stores', { body, params: { header: { 'Idempotency-Key': key } } });
    expect(replay.data?.id).toBe(once.data?.id);
    expect(replay.response.headers.get('Idempotent-Replayed')).toBe('true');

    const refused = unwrap(
      api.POST('/v1/terminals', { body: { name: 'x', storeId: first.id, protocol: 'JOINPROTO' as never, connection: { kind: 'tcp', host: 'h', port: 1 } } }),
    );
    await expect(refused).rejects.toBeInstanceOf(PayorchApiError);
    await expect(refused).rejects.toMatchObject({
      status: 400,
      code: 'VALIDATION_FAILED',
      details: { issues: [expect.objectContaining({ field: 'protocol' })] },
    });
  });

  it('follows the live event stream and, restarted with its lastEventId (Last-Event-ID), replays what it missed', async () => {
    const controller = new AbortController();
    const stream = new EventStream({ baseUrl, apiKey, types: ['terminal.created'], signal: controller.signal, reconnectMs: 10 });
    const store = await unwrap(api.POST('/v1/stores', { body: { name: 'Streamed', timeZone: 'UTC' } }));
    const terminal = (name: string) =>
      unwrap(api.POST('/v1/terminals', { body: { name, storeId: store.id, protocol: 'jpay', connection: { kind: 'tcp_listen', port: 7000 } } }));
    const iterator = stream[Symbol.asyncIterator]();
    const firstEvent = iterator.next();
    const created = await terminal('Streamed 1');
    const first = await withTimeout(firstEvent, { timeoutMs: 5000, what: 'first event' });
    const seen: PayorchEvent[] = [first.value as PayorchEvent];
    expect(seen[0]).toMatchObject({ type: 'terminal.created', subjectId: created.id });

    // Resume from the event we processed, as a restarted dashboard does: the next store shows up once.
    controller.abort();
    await iterator.return?.(undefined);
    const resumed = new AbortController();
    const missed = await terminal('Streamed 2'); // created while no stream was open
    const again = new EventStream({ baseUrl, apiKey, types: ['terminal.created'], signal: resumed.signal, lastEventId: stream.lastEventId });
    const it2 = again[Symbol.asyncIterator]();
    const replayed = await withTimeout(it2.next(), { timeoutMs: 5000, what: 'event after resume' });
    expect(replayed.value).toMatchObject({ type: 'terminal.created', subjectId: missed.id });
    expect(again.lastEventId).not.toBe(stream.lastEventId);
    resumed.abort();
    await it2.return?.(undefined);
  });
});
