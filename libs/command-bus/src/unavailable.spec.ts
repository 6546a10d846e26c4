import { isRedisUnavailable } from './unavailable';

describe(isRedisUnavailable.name, () => {
  it.each([
    ['offline queue disabled', new Error("Stream isn't writeable and enableOfflineQueue options is false")],
    ['connection dropped mid-command', new Error('Connection is closed.')],
    [
      'retries exhausted',
      Object.assign(new Error('Reached the max retries per request limit (which is 2). Refer to "maxRetriesPerRequest" option for details.'), {
        name: 'MaxRetriesPerRequestError',
      }),
    ],
    ['wrapped', new Error('enqueue failed', { cause: new Error('Connection is closed.') })],
    ['refused', Object.assign(new Error('connect ECONNREFUSED 127.0.0.1:6379'), { code: 'ECONNREFUSED' })],
  ])('%s → unavailable', (_name, error) => {
    expect(isRedisUnavailable(error)).toBe(true);
  });

  it.each([
    ['a bug', new TypeError("Cannot read properties of undefined (reading 'x')")],
    ['a Redis command error', new Error('WRONGTYPE Operation against a key holding the wrong kind of value')],
    ['not an error', 'Connection is closed.'],
    ['null', null],
  ])('%s → not an outage', (_name, error) => {
    expect(isRedisUnavailable(error)).toBe(false);
  });
});
