import { setByTestRunner, trackTimers } from './pending-timers';

describe(trackTimers.name, () => {
  it('reports a referenced timer the code under test left pending, and not once it is cleared or unreferenced', () => {
    const timers = trackTimers();
    try {
      const held = setTimeout(() => undefined, 60_000);
      const unref = setTimeout(() => undefined, 60_000).unref();
      expect(timers.pending()).toEqual([expect.stringMatching(/^60000 ms timer set at\n.*pending-timers\.spec\.ts/)]);
      clearTimeout(held);
      expect(timers.pending()).toEqual([]);
      clearTimeout(unref);
    } finally {
      timers.stop();
    }
  });
});

describe(setByTestRunner.name, () => {
  it("tells the test runner's own timers (its reporter's status debounce, in band) from the code under test's", () => {
    // The stack CI reported (settlement-worker bootstrap.int-spec), which failed the "no timer left" check.
    const reporter = [
      '    at Status._debouncedEmit (/tmp/ci5/node_modules/@jest/reporters/build/index.js:1507:7)',
      '    at Status._tick (/tmp/ci5/node_modules/@jest/reporters/build/index.js:1514:10)',
      '    at Timeout._onTimeout (/tmp/ci5/node_modules/@jest/reporters/build/index.js:1409:45)',
    ].join('\n');
    expect(setByTestRunner(reporter)).toBe(true);
    expect(setByTestRunner('    at Object.<anonymous> (C:\\ci\\node_modules\\jest-circus\\build\\run.js:10:3)')).toBe(true);
    // Ours, even when jest called it.
    const ours = ['    at RedisConnections.close (/work/main/libs/redis/src/connections.ts:120:5)', reporter].join('\n');
    expect(setByTestRunner(ours)).toBe(false);
    expect(setByTestRunner('    at Redis.connect (/work/main/node_modules/ioredis/built/Redis.js:120:5)')).toBe(false);
    expect(setByTestRunner('')).toBe(false);
  });
});
