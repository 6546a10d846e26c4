import { randomBytes, randomUUID } from 'node:crypto';
import type { Socket } from 'node:net';

import { Redis } from 'ioredis';

import type { PublishedEvent } from '@payorch/db';
import { SecretBox } from '@payorch/domain';
import { testRedisPrefix, testRedisUrl, waitFor } from '@payorch/testing';

import { accessChannel, announceKeysChanged, eventsChannel, notifyCommitted, redisEventSink, sealedSubjectOf } from './event-channel';

const event = (tenantId: string, n: number): PublishedEvent => ({
  id: randomUUID(),
  tenantId,
  type: 'operation.progress',
  subjectType: 'operation',
  subjectId: `op-${n}`,
  data: { n },
  createdAt: new Date().toISOString(),
});

describe(redisEventSink.name, () => {
  const prefix = testRedisPrefix('sink');
  const publisher = new Redis(testRedisUrl());
  const subscriber = new Redis(testRedisUrl());

  afterAll(async () => {
    await publisher.quit();
    await subscriber.quit();
  });

  it('publishes the batches handed over in one tick in one socket write, in order, every event on its tenant channel', async () => {
    const [a, b] = [randomUUID(), randomUUID()];
    const received: { channel: string; n: number }[] = [];
    subscriber.on('message', (channel: string, message: string) => received.push({ channel, n: (JSON.parse(message) as PublishedEvent).data.n as number }));
    await subscriber.subscribe(eventsChannel(prefix, a), eventsChannel(prefix, b));
    await publisher.ping();
    const socket = (publisher as unknown as { stream: Socket }).stream;
    const write = jest.spyOn(socket, 'write');
    const errors: Error[] = [];
    const sink = redisEventSink(publisher, prefix, (error) => errors.push(error));
    // As the Database's sequencer hands them over: one call per committed transaction, in one loop.
    sink([event(a, 1)]);
    sink([event(a, 2), event(b, 3)]);
    sink([event(a, 4)]);
    await waitFor(() => received.length === 4, { what: 'four events received' });
    expect(write).toHaveBeenCalledTimes(1);
    expect(received).toEqual([
      { channel: eventsChannel(prefix, a), n: 1 },
      { channel: eventsChannel(prefix, a), n: 2 },
      { channel: eventsChannel(prefix, b), n: 3 },
      { channel: eventsChannel(prefix, a), n: 4 },
    ]);
    // A later tick is a later write (after the first, so the order across ticks holds too).
    sink([event(b, 5)]);
    await waitFor(() => received.length === 5, { what: 'the fifth event received' });
    expect(write).toHaveBeenCalledTimes(2);
    expect(received[4]).toEqual({ channel: eventsChannel(prefix, b), n: 5 });
    expect(errors).toEqual([]);
    write.mockRestore();
  });

  it("publishes the events that can change an agent's access on the tenant's access channel too, and only those", async () => {
    const tenant = randomUUID();
    const on = new Redis(testRedisUrl());
    const received: { channel: string; type: string }[] = [];
    try {
      on.on('message', (channel: string, message: string) => received.push({ channel, type: (JSON.parse(message) as PublishedEvent).type }));
      await on.subscribe(eventsChannel(prefix, tenant), accessChannel(prefix, tenant));
      const revoked: PublishedEvent = { ...event(tenant, 1), type: 'agent.revoked', subjectType: 'agent' };
      redisEventSink(publisher, prefix)([event(tenant, 2), revoked]);
      await waitFor(() => received.length === 3, { what: "the sink's three messages" });
      await notifyCommitted(publisher, prefix, [{ ...event(tenant, 3), type: 'terminal.updated', subjectType: 'terminal' }]);
      await waitFor(() => received.length === 5, { what: 'five messages' });
      expect(received).toEqual([
        { channel: eventsChannel(prefix, tenant), type: 'operation.progress' },
        { channel: eventsChannel(prefix, tenant), type: 'agent.revoked' },
        { channel: accessChannel(prefix, tenant), type: 'agent.revoked' },
        { channel: eventsChannel(prefix, tenant), type: 'terminal.updated' },
        { channel: accessChannel(prefix, tenant), type: 'terminal.updated' },
      ]);
    } finally {
      await on.quit();
    }
  });
});

describe(`${redisEventSink.name}: the subject of an event (an operation's view, which a ?wait= answer uses)`, () => {
  const key = (id: string) => `${id}:${randomBytes(32).toString('base64')}`;
  const [k1, k2] = [key('k1'), key('k2')];
  const withSubject = (): PublishedEvent => ({ ...event(randomUUID(), 1), type: 'operation.completed', subject: { id: 'op-1', state: 'approved' } });
  /** The message the sink publishes for `e`, as a subscriber parses it. */
  const published = async (e: PublishedEvent, sealer?: SecretBox) => {
    const messages: string[] = [];
    redisEventSink({ publish: async (_channel, message) => messages.push(message) }, 'p', undefined, sealer)([e]);
    await waitFor(() => messages.length === 1, { what: 'the message' });
    return JSON.parse(messages[0]!) as PublishedEvent & { subjectSeal?: string };
  };

  it('publishes it sealed with the active master key, and the readers that hold that key (active or previous) believe it', async () => {
    const e = withSubject();
    const message = await published(e, SecretBox.fromConfig(k1));
    expect(message).toMatchObject({ id: e.id, subject: e.subject, subjectSeal: expect.stringMatching(/^hmac1\.k1\./) });
    expect(sealedSubjectOf(message, SecretBox.fromConfig(k1))).toEqual(e.subject);
    // During a rotation: a reader whose active key is already k2 still holds k1 as a previous key.
    expect(sealedSubjectOf(message, SecretBox.fromConfig(k2, [k1]))).toEqual(e.subject);
    expect(sealedSubjectOf(message, SecretBox.fromConfig(k2))).toBeUndefined();
    expect(sealedSubjectOf(message, undefined)).toBeUndefined();
    // The seal covers the event it came with and the subject itself.
    for (const moved of [
      { ...message, tenantId: randomUUID() },
      { ...message, type: 'operation.unknown' },
      { ...message, subjectId: 'op-2' },
    ]) {
      expect(sealedSubjectOf(moved as PublishedEvent & { subjectSeal?: string }, SecretBox.fromConfig(k1))).toBeUndefined();
    }
    expect(sealedSubjectOf({ ...message, subject: { id: 'op-1', state: 'declined' } }, SecretBox.fromConfig(k1))).toBeUndefined();
  });

  it('leaves it out of the message when the publisher holds no key (nobody would believe it)', async () => {
    const message = await published(withSubject());
    expect(message).not.toHaveProperty('subject');
    expect(message).not.toHaveProperty('subjectSeal');
  });
});

describe(announceKeysChanged.name, () => {
  it('reports an announcement Redis refused to its caller (the admin CLI warns), and never throws after the commit', async () => {
    const tenantId = randomUUID();
    // A client whose connection is closed for good: every PUBLISH is refused at once.
    const closed = new Redis(testRedisUrl(), { lazyConnect: true, enableOfflineQueue: false, maxRetriesPerRequest: 0 });
    const failures: [string, string][] = [];
    await expect(announceKeysChanged(closed, 'any', (error, tenant) => failures.push([tenant, error.message]))(tenantId)).resolves.toBeUndefined();
    expect(failures).toEqual([[tenantId, expect.any(String)]]);
    closed.disconnect();
  });
});
