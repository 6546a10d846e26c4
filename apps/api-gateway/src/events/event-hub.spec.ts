import { EventEmitter } from 'node:events';

import type { Redis } from 'ioredis';

import type { GatewayConfig } from '@payorch/config';
import { createLogger } from '@payorch/logging';

import { CHANNEL_LINGER_MS, EventHub } from './event-hub';

const TENANT = '7b0c1d1e-3f9a-4c55-9a42-6f1a2b3c4d5e';
const CHANNEL = `hubtest:events:${TENANT}`;

/** The subscriber connection as the hub uses it: SUBSCRIBE / UNSUBSCRIBE recorded, answered when the test says. */
class FakeSubscriber extends EventEmitter {
  readonly commands: string[] = [];
  private pending: { resolve: () => void; reject: (error: Error) => void }[] = [];

  subscribe(channel: string): Promise<number> {
    this.commands.push(`SUBSCRIBE ${channel}`);
    return new Promise<void>((resolve, reject) => this.pending.push({ resolve, reject })).then(() => 1);
  }

  unsubscribe(...channels: string[]): Promise<number> {
    this.commands.push(`UNSUBSCRIBE ${channels.join(' ')}`);
    return Promise.resolve(0);
  }

  answer(error?: Error): void {
    for (const { resolve, reject } of this.pending.splice(0)) {
      if (error) reject(error);
      else resolve();
    }
  }
}

function hubOn(subscriber: FakeSubscriber): EventHub {
  const config = { REDIS_KEY_PREFIX: 'hubtest', EVENTS_HEARTBEAT_MS: 60_000 } as GatewayConfig;
  return new EventHub(config, createLogger({ name: 'test', level: 'silent' }), subscriber as unknown as Redis);
}

const listener = () => ({ deliver: jest.fn() });

describe(EventHub.name, () => {
  afterEach(() => jest.useRealTimers());

  it('sends one SUBSCRIBE per channel, however many listeners wait for it, and every listener waits for its answer', async () => {
    const subscriber = new FakeSubscriber();
    const hub = hubOn(subscriber);
    let ready = 0;
    const adds = Array.from({ length: 5 }, () => hub.add(TENANT, listener()).then((off) => (ready++, off)));
    await Promise.resolve();
    expect(ready).toBe(0);
    subscriber.answer();
    const offs = await Promise.all(adds);
    expect(ready).toBe(5);
    // Later listeners of a subscribed channel send nothing.
    offs.push(await hub.add(TENANT, listener()));
    expect(subscriber.commands).toEqual([`SUBSCRIBE ${CHANNEL}`]);
    for (const off of offs) off();
    await hub.onApplicationShutdown();
  });

  it('keeps the channel for CHANNEL_LINGER_MS after its last listener: listeners one after another send no SUBSCRIBE/UNSUBSCRIBE each', async () => {
    jest.useFakeTimers();
    const subscriber = new FakeSubscriber();
    const hub = hubOn(subscriber);
    for (let request = 0; request < 3; request++) {
      const adding = hub.add(TENANT, listener());
      subscriber.answer();
      (await adding)();
      jest.advanceTimersByTime(CHANNEL_LINGER_MS / 2);
    }
    expect(subscriber.commands).toEqual([`SUBSCRIBE ${CHANNEL}`]);
    jest.advanceTimersByTime(CHANNEL_LINGER_MS);
    expect(subscriber.commands).toEqual([`SUBSCRIBE ${CHANNEL}`, `UNSUBSCRIBE ${CHANNEL}`]);
    // After the linger the next listener subscribes again.
    const adding = hub.add(TENANT, listener());
    subscriber.answer();
    (await adding)();
    expect(subscriber.commands).toEqual([`SUBSCRIBE ${CHANNEL}`, `UNSUBSCRIBE ${CHANNEL}`, `SUBSCRIBE ${CHANNEL}`]);
    await hub.onApplicationShutdown();
  });

  it('delivers to the listeners of the channel only, and nothing while the channel lingers without listeners', async () => {
    const subscriber = new FakeSubscriber();
    const hub = hubOn(subscriber);
    const a = listener();
    const adding = hub.add(TENANT, a);
    subscriber.answer();
    const off = await adding;
    const event = { id: 'e1', tenantId: TENANT, type: 'operation.completed', subjectType: 'operation', subjectId: 'o1', data: {}, createdAt: '' };
    subscriber.emit('message', CHANNEL, JSON.stringify(event));
    expect(a.deliver).toHaveBeenCalledWith(event);
    off();
    subscriber.emit('message', CHANNEL, JSON.stringify(event));
    expect(a.deliver).toHaveBeenCalledTimes(1);
    expect(hub.size).toBe(0);
    await hub.onApplicationShutdown();
  });

  it('drops a message that is JSON of no object (null, an array, a number, a string) without throwing', async () => {
    // Whoever can PUBLISH on Redis chooses the message: `null` threw in ioredis's emit and ended the gateway's process
    // (until 2026-12-07).
    const subscriber = new FakeSubscriber();
    const hub = hubOn(subscriber);
    const a = listener();
    const adding = hub.add(TENANT, a);
    subscriber.answer();
    const off = await adding;
    for (const message of ['null', '[]', '1', '"x"', 'true', '{']) expect(() => subscriber.emit('message', CHANNEL, message)).not.toThrow();
    expect(a.deliver).not.toHaveBeenCalled();
    const event = { id: 'e2', tenantId: TENANT, type: 'operation.completed', subjectType: 'operation', subjectId: 'o2', data: {}, createdAt: '' };
    subscriber.emit('message', CHANNEL, JSON.stringify(event));
    expect(a.deliver).toHaveBeenCalledWith(event);
    off();
    await hub.onApplicationShutdown();
  });

  it('forgets a failed SUBSCRIBE and its listeners: the next listener sends it again', async () => {
    const subscriber = new FakeSubscriber();
    const hub = hubOn(subscriber);
    const failing = [hub.add(TENANT, listener()), hub.add(TENANT, listener())];
    subscriber.answer(new Error('connection closed'));
    for (const add of failing) await expect(add).rejects.toThrow('connection closed');
    expect(hub.size).toBe(0);
    const adding = hub.add(TENANT, listener());
    subscriber.answer();
    (await adding)();
    expect(subscriber.commands).toEqual([`SUBSCRIBE ${CHANNEL}`, `SUBSCRIBE ${CHANNEL}`]);
    await hub.onApplicationShutdown();
  });
});
