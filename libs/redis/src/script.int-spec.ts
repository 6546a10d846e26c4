import { randomUUID } from 'node:crypto';

import { Redis } from 'ioredis';

import { testRedisUrl } from '@payorch/testing';

import { RedisScript } from './script';

describe(RedisScript.name, () => {
  const redis = new Redis(testRedisUrl());

  afterAll(() => redis.quit());

  it('sends its text once (NOSCRIPT, then EVAL), and runs by SHA afterwards', async () => {
    // A text no Redis has seen: its SHA is unknown until the first run.
    const script = new RedisScript(`-- ${randomUUID()}\nreturn { KEYS[1], ARGV[1] }`);
    const evals = jest.spyOn(redis, 'eval');
    expect(await redis.script('EXISTS', script.sha)).toEqual([0]);
    expect(await script.run(redis, ['k'], ['a'])).toEqual(['k', 'a']);
    expect(evals).toHaveBeenCalledTimes(1);
    expect(await redis.script('EXISTS', script.sha)).toEqual([1]);
    expect(await script.run(redis, ['k2'], [7])).toEqual(['k2', '7']);
    expect(evals).toHaveBeenCalledTimes(1);
    evals.mockRestore();
  });

  it('passes other errors through', async () => {
    const script = new RedisScript(`-- ${randomUUID()}\nreturn redis.call('NOSUCHCOMMAND')`);
    await expect(script.run(redis, [], [])).rejects.toThrow(/Unknown Redis command|unknown command/i);
  });
});
