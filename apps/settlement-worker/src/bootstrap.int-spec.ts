import { hostname } from 'node:os';

import type { INestApplication } from '@nestjs/common';
import { Redis } from 'ioredis';

import type { WorkerConfig } from '@payorch/config';
import { QUEUES } from '@payorch/domain';
import { createLogger } from '@payorch/logging';
import { bullPrefix, redisToken } from '@payorch/redis';
import { createTestDatabase, deleteRedisPrefix, redisClientNames, type TestDatabase, testRedisUrl, trackTimers, waitFor } from '@payorch/testing';

import { createWorkerApp } from './bootstrap';
import { testWorkerConfig } from './testing/worker-config.testing';

describe('settlement-worker Redis connections (docs/architecture.md, "Redis connections")', () => {
  const probe = new Redis(testRedisUrl());
  let testDb: TestDatabase;
  let config: WorkerConfig;
  let app: INestApplication | undefined;

  beforeAll(async () => {
    testDb = await createTestDatabase();
    config = testWorkerConfig(testDb.appUrl, 'worker-conns');
  }, 60_000);

  afterAll(async () => {
    await app?.close();
    await deleteRedisPrefix(probe, config.REDIS_KEY_PREFIX);
    await probe.quit();
    await testDb?.drop();
  });

  it('holds its four named connections plus one BullMQ blocking connection per worker, and closes them all', async () => {
    app = await createWorkerApp(config, createLogger({ name: 'test', level: 'silent' }));
    await app.init();
    const own = (name: string) => `${config.REDIS_KEY_PREFIX}:settlement-worker:${hostname()}-${process.pid}:${name}`;
    const bullBlocking = Object.values(QUEUES).map((queue) => `${bullPrefix(config.REDIS_KEY_PREFIX)}:${Buffer.from(queue).toString('base64')}`);
    const expected = [...['blocking', 'bull', 'command', 'subscriber'].map(own), ...bullBlocking].sort();
    expect(bullBlocking).toHaveLength(6);
    await waitFor(async () => JSON.stringify(await redisClientNames(probe, `${config.REDIS_KEY_PREFIX}:`)) === JSON.stringify(expected), {
      what: 'the worker connections',
    });

    await app.close();
    app = undefined;
    await waitFor(async () => (await redisClientNames(probe, `${config.REDIS_KEY_PREFIX}:`)).length === 0, { what: 'every connection closed' });
  });

  it('closes leaving no timer behind; the shared `bull` connection is ended by its owner (QUIT), never cut by BullMQ', async () => {
    const timers = trackTimers();
    try {
      app = await createWorkerApp(config, createLogger({ name: 'test', level: 'silent' }));
      await app.init();
      const bull = app.get<Redis>(redisToken('bull'));
      await waitFor(() => bull.status === 'ready', { what: 'the bull connection up' });
      const quit = jest.spyOn(bull, 'quit');
      const disconnect = jest.spyOn(bull, 'disconnect');

      await app.close();
      app = undefined;
      // Before: the campaigns flow producer disconnected it at its own shutdown, and RedisConnections' close then armed
      // ioredis's 2 s timer on its closed stream: the process stayed up 2 s after close().
      expect(timers.pending()).toEqual([]);
      expect([quit.mock.calls.length, disconnect.mock.calls.length, bull.status]).toEqual([1, 0, 'end']);
    } finally {
      timers.stop();
    }
  });
});
