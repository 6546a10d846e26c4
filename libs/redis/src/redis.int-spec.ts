import { createServer, type Socket } from 'node:net';

import { Inject, Injectable, Module, type OnApplicationShutdown } from '@nestjs/common';
import { Test } from '@nestjs/testing';
import { Cluster, Redis } from 'ioredis';

import { OwnedRedis, OwnedRedisCluster, testRedisPrefix, testRedisUrl, trackTimers, waitFor } from '@payorch/testing';

import { RedisConnections } from './connections';
import { InjectRedis, RedisModule, redisToken } from './redis.module';

/** CLIENT LIST names (and last command) of the connections whose name starts with `prefix`. */
async function clients(probe: Redis, prefix: string): Promise<Array<{ name: string; cmd: string }>> {
  const list = (await probe.client('LIST')) as string;
  return list
    .trim()
    .split('\n')
    .map((line) => ({ name: /\bname=(\S*)/.exec(line)?.[1] ?? '', cmd: /\bcmd=(\S*)/.exec(line)?.[1] ?? '' }))
    .filter((c) => c.name.startsWith(prefix));
}

describe(RedisConnections.name, () => {
  const probe = new Redis(testRedisUrl());
  const prefix = testRedisPrefix('redis');

  afterAll(() => probe.quit());

  it('opens only the declared connections, once each, named <clientName>:<name> in CLIENT LIST', async () => {
    const sut = new RedisConnections({ url: testRedisUrl(), clientName: `${prefix}:a`, connections: { command: {}, subscriber: {} } });
    expect(sut.names).toEqual(['command', 'subscriber']);
    const command = sut.get('command');
    expect(sut.get('command')).toBe(command);
    // `command` fails fast (no offline queue): a command before the first connect is refused, not queued.
    await expect(command.ping()).rejects.toThrow("Stream isn't writeable and enableOfflineQueue options is false");
    await waitFor(() => command.status === 'ready', { what: 'command connected' });
    await command.ping();
    await sut.get('subscriber').subscribe(`${prefix}:channel`);
    expect((await clients(probe, `${prefix}:a:`)).map((c) => c.name).sort()).toEqual([`${prefix}:a:command`, `${prefix}:a:subscriber`]);
    expect(() => sut.get('blocking')).toThrow('Redis connection "blocking" is not declared by this process (declared: command, subscriber)');
    await sut.close();
    await waitFor(async () => (await clients(probe, `${prefix}:a:`)).length === 0, { what: 'connections closed' });
    expect(() => sut.get('subscriber')).not.toThrow(); // the ended one: a late user gets errors, not a new socket
  });

  it('applies the defaults per name, overridden per process', async () => {
    const sut = new RedisConnections({
      url: testRedisUrl(),
      clientName: `${prefix}:b`,
      connections: { command: {}, blocking: {}, subscriber: { autoResubscribe: false, connectionName: 'payorch-access-c1' } },
    });
    expect(sut.get('command').options).toMatchObject({ enableOfflineQueue: false, maxRetriesPerRequest: 2, connectionName: `${prefix}:b:command` });
    expect(sut.get('blocking').options).toMatchObject({ maxRetriesPerRequest: null });
    // A name operators already know replaces the generated one.
    expect(sut.get('subscriber').options).toMatchObject({ maxRetriesPerRequest: null, autoResubscribe: false, connectionName: 'payorch-access-c1' });
    await sut.close();
  });

  it('settles once every connection is up, or at once when Redis is not there (the process starts degraded)', async () => {
    const up = new RedisConnections({ url: testRedisUrl(), clientName: `${prefix}:c`, connections: { command: {}, subscriber: {} } });
    up.get('command');
    up.get('subscriber');
    await up.settled();
    expect([up.get('command').status, up.get('subscriber').status]).toEqual(['ready', 'ready']);
    await up.close();

    const down = new RedisConnections({ url: 'redis://127.0.0.1:1', clientName: `${prefix}:d`, connections: { command: {} } });
    down.get('command');
    const started = Date.now();
    await down.settled(5_000);
    expect(Date.now() - started).toBeLessThan(2_000);
    expect(down.get('command').status).not.toBe('ready');
    await down.close();
  });

  it('closes without leaving a timer behind, also when something sharing a connection ended it first', async () => {
    const sut = new RedisConnections({ url: testRedisUrl(), clientName: `${prefix}:e`, connections: { bull: {}, command: {} } });
    const bull = sut.get('bull');
    const command = sut.get('command');
    await sut.settled();
    expect([bull.status, command.status]).toEqual(['ready', 'ready']);
    // What @nestjs/bullmq's FlowProducer did on shutdown to the worker's shared `bull` connection.
    bull.disconnect();
    await waitFor(() => bull.status === 'end', { what: 'bull ended by its other user' });

    const timers = trackTimers();
    try {
      await sut.close();
      expect([bull.status, command.status]).toEqual(['end', 'end']);
      // Before: close() disconnected the ended one again, arming ioredis's 2 s timer on its closed stream.
      expect(timers.pending()).toEqual([]);
    } finally {
      timers.stop();
    }
    await waitFor(async () => (await clients(probe, `${prefix}:e:`)).length === 0, { what: 'connections closed' });
  });

  it('refuses a name that is not one of the four', () => {
    expect(() => new RedisConnections({ url: testRedisUrl(), clientName: prefix, connections: { cache: {} } as never })).toThrow(
      'unknown Redis connection "cache"',
    );
  });
});

/**
 * close() while Redis is away: ioredis 6's disconnect() never ends a connection that waits to reconnect (nor one whose
 * server does not hang up), so close() sat out its bound (5 s) on every shutdown. The bound here is an hour, far past
 * jest's timeout: close() resolving at all means every connection ended, which is then checked (status `end`, socket
 * destroyed, no timer left to hold the process).
 */
describe(`${RedisConnections.name}.close() when Redis is not up`, () => {
  const prefix = testRedisPrefix('redis-close');
  const NEVER = 60 * 60_000;

  /** Closes with a bound that never fires in a test, then checks that nothing of the connections is left running. */
  async function expectClosedCleanly(sut: RedisConnections): Promise<void> {
    const connections = sut.names.map((name) => sut.get(name));
    const timers = trackTimers();
    try {
      await sut.close(NEVER);
      expect(connections.map((connection) => connection.status)).toEqual(connections.map(() => 'end'));
      for (const connection of connections) {
        if (connection instanceof Cluster) expect(connection.nodes('all')).toEqual([]);
        else expect(connection.stream?.destroyed ?? true).toBe(true);
      }
      // Neither a reconnect timer nor ioredis's 2 s "destroy the stream" timer.
      expect(timers.pending()).toEqual([]);
    } finally {
      timers.stop();
    }
  }

  it('ends connections that wait to reconnect at once (Redis killed)', async () => {
    const server = await new OwnedRedis().start();
    try {
      const sut = new RedisConnections({
        url: server.url,
        clientName: `${prefix}:a`,
        connections: { blocking: {}, bull: {}, command: {}, subscriber: {} },
        onError: () => undefined,
      });
      const connections = sut.names.map((name) => sut.get(name));
      await sut.settled();
      await (sut.get('subscriber') as Redis).subscribe(`${prefix}:channel`);
      expect(connections.map((connection) => connection.status)).toEqual(['ready', 'ready', 'ready', 'ready']);

      await server.kill();
      await waitFor(() => connections.every((connection) => connection.status === 'reconnecting'), { what: 'every connection reconnecting' });

      await expectClosedCleanly(sut);
    } finally {
      await server.stop();
    }
  });

  it('refuses the commands it still queued without an unhandled rejection: ioredis re-subscribes after a reconnect with no handler', async () => {
    const server = await new OwnedRedis().start();
    const unhandled: unknown[] = [];
    const onUnhandled = (reason: unknown) => unhandled.push(reason);
    process.on('unhandledRejection', onUnhandled);
    try {
      const sut = new RedisConnections({ url: server.url, clientName: `${prefix}:q`, connections: { subscriber: {} }, onError: () => undefined });
      const subscriber = sut.get('subscriber') as Redis;
      await sut.settled();
      await server.kill();
      await waitFor(() => subscriber.status === 'reconnecting', { what: 'the subscriber reconnecting' });
      // As ioredis's own autoResubscribe does on 'ready': a command nobody awaits, queued while Redis is away.
      void subscriber.subscribe(`${prefix}:fire-and-forget`);
      const awaited = subscriber.subscribe(`${prefix}:awaited`);
      await expectClosedCleanly(sut);
      // The caller that awaits hears the refusal; the one nobody awaits is refused quietly.
      await expect(awaited).rejects.toThrow('Connection is closed.');
      await new Promise((resolve) => setImmediate(resolve));
      expect(unhandled).toEqual([]);
    } finally {
      process.off('unhandledRejection', onUnhandled);
      await server.stop();
    }
  });

  it('ends a connection whose server accepted it but neither answers nor hangs up (status connect)', async () => {
    const sockets: Socket[] = [];
    const silent = createServer({ allowHalfOpen: true }, (socket) => {
      sockets.push(socket);
      socket.resume();
    });
    await new Promise<void>((resolve) => silent.listen(0, '127.0.0.1', resolve));
    const { port } = silent.address() as { port: number };
    try {
      // disconnectTimeout: how long ioredis waits for the server to hang up before it destroys the socket (2 s by default).
      const sut = new RedisConnections({
        url: `redis://127.0.0.1:${port}`,
        clientName: `${prefix}:b`,
        connections: { command: { disconnectTimeout: NEVER } },
        onError: () => undefined,
      });
      const command = sut.get('command');
      await waitFor(() => command.status === 'connect' && sockets.length === 1, { what: 'connected, handshake unanswered' });

      await expectClosedCleanly(sut);
    } finally {
      for (const socket of sockets) socket.destroy();
      await new Promise<void>((resolve) => silent.close(() => resolve()));
    }
  });

  it('ends connections that never connected (lazyConnect: wait) or are still connecting', async () => {
    const sut = new RedisConnections({
      url: testRedisUrl(),
      clientName: `${prefix}:c`,
      connections: { command: {}, subscriber: { lazyConnect: true } },
      onError: () => undefined,
    });
    const [command, subscriber] = [sut.get('command'), sut.get('subscriber')];
    expect([command.status, subscriber.status]).toEqual(['connecting', 'wait']);

    await expectClosedCleanly(sut);
  });

  it('ends Redis Cluster connections at once when every node is gone: up before (ready, dead nodes) or opened since (reconnecting)', async () => {
    const cluster = await new OwnedRedisCluster({ masters: 3, replicasPerMaster: 0 }).start();
    try {
      const before = new RedisConnections({
        url: cluster.url,
        clientName: `${prefix}:d`,
        connections: { command: {}, subscriber: {} },
        onError: () => undefined,
      });
      const up = before.names.map((name) => before.get(name) as Cluster);
      await before.settled();
      await (before.get('subscriber') as Cluster).subscribe(`${prefix}:channel`);
      expect(up.map((connection) => connection.status)).toEqual(['ready', 'ready']);

      const outage = trackTimers();
      await Promise.all(cluster.nodes.map((node) => node.kill()));
      // A Cluster stays `ready` while its node connections are gone (they end, the pool keeps lazy ones for the slots).
      await waitFor(() => up.every((connection) => connection.nodes('all').every((node) => node.status !== 'ready')), {
        what: 'every node connection down',
      });
      // Opened while the cluster is down: ioredis cannot fetch the slots, empties its pool and waits to retry.
      const after = new RedisConnections({
        url: cluster.url,
        clientName: `${prefix}:e`,
        connections: { command: {}, subscriber: {} },
        onError: () => undefined,
      });
      const down = after.names.map((name) => after.get(name) as Cluster);
      await waitFor(() => down.every((connection) => connection.status === 'reconnecting'), {
        what: () => `every Cluster reconnecting (${down.map((connection) => connection.status).join(', ')})`,
      });

      await expectClosedCleanly(before);
      await expectClosedCleanly(after);
      // Not close()'s: while its node was down, ioredis's ClusterSubscriber picked a new pub/sub socket on every failed
      // connect and disconnected the dead one each time, arming its 2 s timer (ioredis #1247); the last ones expire now.
      await waitFor(() => outage.pending().length === 0, { what: () => `the outage's ioredis timers expired (${outage.pending().length})` });
      outage.stop();
    } finally {
      await cluster.stop();
    }
  }, 60_000);
});

describe(RedisModule.name, () => {
  const probe = new Redis(testRedisUrl());
  const prefix = testRedisPrefix('redis-module');

  afterAll(() => probe.quit());

  it('provides each connection by name and closes them after the modules that use them shut down', async () => {
    const seenAtShutdown: string[] = [];

    @Injectable()
    class User implements OnApplicationShutdown {
      constructor(
        @InjectRedis('command') readonly command: Redis,
        @Inject(redisToken('blocking')) readonly blocking: Redis,
      ) {}

      async onApplicationShutdown(): Promise<void> {
        // Still usable here: RedisModule closes the connections after this hook.
        seenAtShutdown.push(await this.command.ping());
      }
    }

    @Module({ providers: [User] })
    class FeatureModule {}

    const connections = new RedisConnections({ url: testRedisUrl(), clientName: prefix, connections: { command: {}, blocking: {} } });
    const moduleRef = await Test.createTestingModule({ imports: [RedisModule.forRoot(connections), FeatureModule] }).compile();
    const app = moduleRef.createNestApplication({ logger: false });
    await app.init();
    const user = app.get(User);
    expect(user.command).toBe(connections.get('command'));
    expect(user.blocking).toBe(connections.get('blocking'));
    await waitFor(async () => (await clients(probe, `${prefix}:`)).length === 2, { what: 'both connections up' });

    await app.close();
    expect(seenAtShutdown).toEqual(['PONG']);
    await waitFor(() => user.command.status === 'end' && user.blocking.status === 'end', { what: 'connections ended' });
    await waitFor(async () => (await clients(probe, `${prefix}:`)).length === 0, { what: 'connections closed by RedisModule' });
  });
});
