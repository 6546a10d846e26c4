import { EventEmitter } from 'node:events';

import { nextEvent, waitFor, withTimeout } from './wait';

describe(waitFor.name, () => {
  it('resolves with the first truthy value of the condition', async () => {
    let checks = 0;
    await expect(waitFor(() => (++checks >= 3 ? { checks } : undefined), { intervalMs: 1 })).resolves.toEqual({ checks: 3 });
  });

  it('fails after the deadline naming what it waited for and the last value seen', async () => {
    await expect(waitFor(() => 0, { timeoutMs: 30, intervalMs: 5, what: 'the answer' })).rejects.toThrow(
      /^timed out after 30 ms waiting for the answer \(\d+ checks, last value 0\)$/,
    );
    let n = 0;
    const failure = await waitFor(() => (n++, false), {
      timeoutMs: 20,
      intervalMs: 5,
      what: () => `a count past ${n}`,
    }).catch((e: Error) => e);
    // A `what` function names the state reached at the failure, not at the start.
    expect((failure as Error).message).toContain(`waiting for a count past ${n} (`);
    expect(n).toBeGreaterThan(1);
  });

  it('fails at once on an error of the condition, unless told to ignore errors', async () => {
    const boom = () => {
      throw new Error('boom');
    };
    await expect(waitFor(boom, { timeoutMs: 10_000 })).rejects.toThrow('boom');
    await expect(waitFor(boom, { timeoutMs: 20, intervalMs: 5, ignoreErrors: true, what: 'a server' })).rejects.toThrow(
      /waiting for a server .*last error boom/,
    );
    let tries = 0;
    await expect(
      waitFor(
        () => {
          if (++tries < 3) throw new Error('ECONNREFUSED');
          return 'up';
        },
        { intervalMs: 1, ignoreErrors: true },
      ),
    ).resolves.toBe('up');
  });

  it('keeps polling in real time while jest fake timers are installed', async () => {
    jest.useFakeTimers();
    try {
      let checks = 0;
      await expect(waitFor(() => ++checks === 2, { intervalMs: 1 })).resolves.toBe(true);
    } finally {
      jest.useRealTimers();
    }
  });
});

describe(withTimeout.name, () => {
  it('passes the result through, or fails naming what it waited for', async () => {
    await expect(withTimeout(Promise.resolve(7))).resolves.toBe(7);
    await expect(withTimeout(new Promise(() => undefined), { timeoutMs: 10, what: 'nothing' })).rejects.toThrow('timed out after 10 ms waiting for nothing');
  });
});

describe(nextEvent.name, () => {
  it('resolves with the arguments of the next event, and fails if it does not come in time', async () => {
    const emitter = new EventEmitter();
    const next = nextEvent<[number, string]>(emitter, 'data');
    emitter.emit('data', 1, 'a');
    await expect(next).resolves.toEqual([1, 'a']);
    await expect(nextEvent(emitter, 'never', { timeoutMs: 10 })).rejects.toThrow("waiting for 'never' event");
    expect(emitter.listenerCount('never')).toBe(0);
  });
});
