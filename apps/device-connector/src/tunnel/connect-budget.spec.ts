import type { RedisClient } from '@payorch/redis';

import { ConnectBudget } from './connect-budget';

/** What ConnectBudget uses of a Redis connection: its status and EVALSHA (the script's answer, or none). */
function fakeRedis(status: string, answer: () => Promise<unknown>) {
  const evalsha = jest.fn(answer);
  return { redis: { status, evalsha, eval: evalsha } as unknown as RedisClient, evalsha };
}

describe(ConnectBudget.name, () => {
  const unshared = jest.fn<void, [Error, boolean]>();
  const options = { limit: 2, windowMs: 60_000, keyPrefix: 'p', timeoutMs: 20, onUnshared: unshared };

  beforeEach(() => unshared.mockReset());

  it('takes the shared answer: a refusal is remembered, so the next upgrade is answered before a lookup', async () => {
    const { redis, evalsha } = fakeRedis('ready', async () => 1500);
    const sut = new ConnectBudget(redis, options);
    expect(await sut.spend('abc')).toBe(1500);
    expect(evalsha).toHaveBeenCalledWith(expect.any(String), 1, 'p:tunnel:connects:abc', 60_000, 2);
    expect(sut.waitMs('abc', Date.now())).toBeGreaterThan(1000);
    expect(sut.waitMs('other', Date.now())).toBe(0);
    expect(unshared).not.toHaveBeenCalled();
  });

  it('counts the connects Redis allowed here too: never more than the limit at one instance, even when Redis lost its keys', async () => {
    const sut = new ConnectBudget(fakeRedis('ready', async () => 0).redis, options);
    expect(await sut.spend('abc')).toBe(0);
    expect(await sut.spend('abc')).toBe(0);
    expect(await sut.spend('abc')).toBeGreaterThan(0);
  });

  it('decides alone, at once, without sending a command, while the connection is not up', async () => {
    const { redis, evalsha } = fakeRedis('reconnecting', async () => 0);
    const sut = new ConnectBudget(redis, options);
    expect(await sut.spend('abc')).toBe(0);
    expect(await sut.spend('abc')).toBe(0);
    expect(await sut.spend('abc')).toBeGreaterThan(0);
    expect(evalsha).not.toHaveBeenCalled();
    expect(unshared.mock.calls.map(([, first]) => first)).toEqual([true, false, false]);
  });

  it('waits for a Redis that does not answer only timeoutMs, then decides alone', async () => {
    const sut = new ConnectBudget(fakeRedis('ready', () => new Promise(() => undefined)).redis, options);
    expect(await sut.spend('abc')).toBe(0);
    expect(unshared).toHaveBeenCalledWith(expect.objectContaining({ message: expect.stringMatching(/timed out after 20 ms/) }), true);
  });

  it('decides alone on a Redis error, and reports the next outage as a first again once Redis answered', async () => {
    let fail = true;
    const sut = new ConnectBudget(fakeRedis('ready', async () => (fail ? Promise.reject(new Error('OOM command not allowed')) : 0)).redis, options);
    expect(await sut.spend('a')).toBe(0);
    fail = false;
    expect(await sut.spend('b')).toBe(0);
    fail = true;
    expect(await sut.spend('c')).toBe(0);
    expect(unshared.mock.calls.map(([error, first]) => [error.message, first])).toEqual([
      ['OOM command not allowed', true],
      ['OOM command not allowed', true],
    ]);
  });
});
