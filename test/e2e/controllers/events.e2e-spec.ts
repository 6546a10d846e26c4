import { request as httpRequest } from 'node:http';
import type { AddressInfo } from 'node:net';

import { publishEvent } from '@payorch/db';
import { waitFor } from '@payorch/testing';

import { type Caller, ControllerSuite, expectError, expectForbidden, expectInvalid } from '../support/controller-suite';

interface OpenStream {
  status: number;
  headers: Record<string, string | string[] | undefined>;
  text: () => string;
  close: () => void;
}

describe('EventsController (v1/events/stream)', () => {
  const suite = new ControllerSuite();
  const streams: OpenStream[] = [];

  /** Opens the SSE stream and resolves once its headers are in; the body keeps accumulating in text(). */
  function open(caller: Caller, path: string, headers: Record<string, string> = {}): Promise<OpenStream> {
    const { port } = suite.session.app.getHttpServer().address() as AddressInfo;
    return new Promise((resolve, reject) => {
      const req = httpRequest(
        {
          host: '127.0.0.1',
          port,
          path,
          headers: {
            Accept: 'text/event-stream',
            Authorization: `Bearer ${caller.apiKey}`,
            ...headers,
          },
        },
        (res) => {
          let body = '';
          res.setEncoding('utf8');
          res.on('data', (chunk: string) => (body += chunk));
          res.on('error', () => undefined);
          const stream = {
            status: res.statusCode ?? 0,
            headers: res.headers,
            text: () => body,
            close: () => req.destroy(),
          };
          streams.push(stream);
          resolve(stream);
        },
      );
      req.on('error', reject);
      req.end();
    });
  }
  const live = (stream: OpenStream) => waitFor(() => stream.text().includes('\n: live\n'), { what: 'the stream to be live' });

  beforeAll(() => suite.start({ EVENTS_HEARTBEAT_MS: '60000' }));
  afterAll(async () => {
    for (const s of streams) s.close();
    await suite.stop();
  });

  it("answers 200 text/event-stream and streams the tenant's events, replaying after Last-Event-ID", async () => {
    const emit = (n: number) =>
      suite.session.appDb.withTenant(suite.a.tenantId, (tx) =>
        publishEvent(tx, suite.a.tenantId, {
          type: 'agent.online',
          subjectType: 'agent',
          subjectId: null,
          data: { n },
        }),
      );
    const first = await emit(1);
    const second = await emit(2);
    const stream = await open(suite.a, '/v1/events/stream?types=agent.*', {
      'Last-Event-ID': first.id,
    });
    expect(stream.status).toBe(200);
    expect(stream.headers['content-type']).toMatch(/^text\/event-stream/);
    await live(stream);
    expect(stream.text()).toContain(`id: ${second.id}\nevent: agent.online\n`);
    expect(stream.text()).not.toContain(`id: ${first.id}`);
    stream.close();
  });

  it('validates the query and Last-Event-ID with 400 naming the field', async () => {
    expectInvalid(await suite.call('get', '/v1/events/stream', { query: { types: 'nope' } }), 'types');
    expectInvalid(
      await suite.call('get', '/v1/events/stream', {
        query: { types: 'operation.*,agent.exploded' },
      }),
      'types',
    );
    expectInvalid(await suite.call('get', '/v1/events/stream', { query: { after: 'yesterday' } }), 'after');
    expectInvalid(await suite.call('get', '/v1/events/stream', { headers: { 'Last-Event-ID': 'not-an-id' } }), 'Last-Event-ID');
  });

  it('replays nothing for an event id of another tenant (it does not exist for this one)', async () => {
    const ofB = await suite.session.appDb.withTenant(suite.b.tenantId, (tx) =>
      publishEvent(tx, suite.b.tenantId, {
        type: 'agent.offline',
        subjectType: 'agent',
        subjectId: null,
        data: { b: true },
      }),
    );
    const stream = await open(suite.a, `/v1/events/stream?after=${ofB.id}`);
    expect(stream.status).toBe(200);
    await live(stream);
    expect(stream.text()).not.toMatch(/^id: /m);
    stream.close();
  });

  it('needs events:read (403 naming it) and an API key (401), in the envelope', async () => {
    const { apiKey, tenantId } = await suite.session.tenant(undefined, ['operations:read']);
    expectForbidden(await suite.call('get', '/v1/events/stream', { as: { apiKey, tenantId } }), 'events:read');
    expectError(await suite.session.http().get('/v1/events/stream'), 401, 'UNAUTHENTICATED');
    // The read-only key has events:read.
    const stream = await open(suite.readOnly, '/v1/events/stream');
    expect(stream.status).toBe(200);
    stream.close();
  });
});
