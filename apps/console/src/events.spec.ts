import { afterEach, beforeEach, describe, expect, it, jest } from '@jest/globals';

import { ApiError, keyStore } from './api';
import { EventStream, type StreamState } from './events';

/** A refusal as the gateway answers one: the error envelope, and the headers given (e.g. Retry-After). */
const refusal = (status: number, code: string, headers: Record<string, string> = {}) =>
  new Response(JSON.stringify({ error: { code, message: `${code} message`, requestId: 'r1' } }), {
    status,
    headers: { 'Content-Type': 'application/json', ...headers },
  });

/** An open stream that says it is live and stays open until the request is aborted (as fetch ends the body then). */
const liveStream = (signal: AbortSignal) =>
  new Response(
    new ReadableStream<Uint8Array>({
      start(controller) {
        controller.enqueue(new TextEncoder().encode(': live\n\n'));
        signal.addEventListener('abort', () => controller.error(new DOMException('aborted', 'AbortError')));
      },
    }),
    { headers: { 'Content-Type': 'text/event-stream' } },
  );

describe('EventStream', () => {
  const realFetch = globalThis.fetch;
  let answers: ((signal: AbortSignal) => Response)[];
  let fetchMock: jest.Mock<(input: string, init: RequestInit) => Promise<Response>>;
  let stream: EventStream;
  let seen: { state: StreamState; code: string | undefined }[];

  /** Resolves when the stream next reaches `state` (listeners are called synchronously by the stream). */
  const reaches = (state: StreamState) =>
    new Promise<void>((resolve) => {
      const off = stream.onState((s) => {
        if (s === state) {
          off();
          resolve();
        }
      });
    });

  beforeEach(() => {
    jest.useFakeTimers();
    jest.spyOn(keyStore, 'get').mockReturnValue('pok_test');
    answers = [];
    fetchMock = jest.fn(async (_input: string, init: RequestInit) => {
      const answer = answers.shift();
      if (!answer) throw new TypeError('no answer scripted (connection refused)');
      return answer(init.signal!);
    });
    globalThis.fetch = fetchMock as unknown as typeof fetch;
    stream = new EventStream();
    seen = [];
    stream.onState((state, error) => seen.push({ state, code: error?.body.code }));
  });

  afterEach(() => {
    stream.stop();
    jest.useRealTimers();
    jest.restoreAllMocks();
    globalThis.fetch = realFetch;
  });

  it("waits out a 429's Retry-After before the next attempt, then reconnects", async () => {
    answers.push(() => refusal(429, 'TOO_MANY_STREAMS', { 'Retry-After': '30' }), liveStream);
    const down = reaches('down');
    stream.start();
    await down;
    expect(fetchMock).toHaveBeenCalledTimes(1);

    await jest.advanceTimersByTimeAsync(29_999);
    expect(fetchMock).toHaveBeenCalledTimes(1);
    expect(stream.state).toBe('down');

    const live = reaches('live');
    await jest.advanceTimersByTimeAsync(1);
    await live;
    expect(fetchMock).toHaveBeenCalledTimes(2);
  });

  it('never waits less than the backoff, nor more than 10 min, whatever Retry-After says', async () => {
    answers.push(
      () => refusal(429, 'RATE_LIMITED', { 'Retry-After': '0' }),
      () => refusal(429, 'RATE_LIMITED', { 'Retry-After': '86400' }),
    );
    let down = reaches('down');
    stream.start();
    await down;
    down = reaches('down');
    await jest.advanceTimersByTimeAsync(249);
    expect(fetchMock).toHaveBeenCalledTimes(1);
    await jest.advanceTimersByTimeAsync(1);
    await down;
    expect(fetchMock).toHaveBeenCalledTimes(2);

    await jest.advanceTimersByTimeAsync(10 * 60_000 - 1);
    expect(fetchMock).toHaveBeenCalledTimes(2);
    await jest.advanceTimersByTimeAsync(1);
    expect(fetchMock).toHaveBeenCalledTimes(3);
  });

  it.each([
    [401, 'UNAUTHENTICATED', 'the key revoked or expired'],
    [403, 'FORBIDDEN', 'the key lacks events:read'],
  ])('stops retrying on a %i %s (%s) and keeps the error; a new start connects again', async (status, code) => {
    answers.push(() => refusal(status, code));
    const down = reaches('down');
    stream.start();
    await down;
    await jest.advanceTimersByTimeAsync(60 * 60_000);
    expect(fetchMock).toHaveBeenCalledTimes(1);
    expect(stream.state).toBe('down');
    expect(stream.lastError).toBeInstanceOf(ApiError);
    expect(stream.lastError?.status).toBe(status);
    expect(stream.lastError?.body).toEqual({ code, message: `${code} message`, requestId: 'r1' });
    // The listeners (the header's badge and status line) were given the refusal once, with the stream down for good.
    expect(seen).toEqual([
      { state: 'connecting', code: undefined },
      { state: 'down', code },
    ]);

    // Signing in again (app.ts: stop on sign-out, start on sign-in) starts a new stream, without the old error.
    answers.push(liveStream);
    const live = reaches('live');
    stream.stop();
    stream.start();
    await live;
    expect(fetchMock).toHaveBeenCalledTimes(2);
    expect(stream.lastError).toBeUndefined();
  });

  it("gives the refusal's code to the state listeners until the stream is live again", async () => {
    answers.push(() => refusal(429, 'TOO_MANY_STREAMS', { 'Retry-After': '1' }), liveStream);
    const live = reaches('live');
    stream.start();
    await jest.advanceTimersByTimeAsync(1000);
    await live;
    expect(seen).toEqual([
      { state: 'connecting', code: undefined },
      { state: 'down', code: 'TOO_MANY_STREAMS' },
      { state: 'connecting', code: 'TOO_MANY_STREAMS' },
      { state: 'live', code: undefined },
    ]);
    expect(stream.lastError).toBeUndefined();
  });

  it('an answer without an envelope is http_<status>, retried with the backoff', async () => {
    answers.push(() => new Response('<html>bad gateway</html>', { status: 502, statusText: 'Bad Gateway' }));
    const down = reaches('down');
    stream.start();
    await down;
    expect(stream.lastError?.body).toEqual({ code: 'http_502', message: 'Bad Gateway' });
    await jest.advanceTimersByTimeAsync(250);
    expect(fetchMock).toHaveBeenCalledTimes(2);
  });

  it('runs one loop only when started again while it waits to reconnect', async () => {
    const down = reaches('down');
    stream.start(); // the first attempt fails (no answer scripted): down, reconnecting in 250 ms
    await down;
    answers.push(liveStream);
    const live = reaches('live');
    stream.stop();
    stream.start();
    await live;
    await jest.advanceTimersByTimeAsync(10_000);
    expect(fetchMock).toHaveBeenCalledTimes(2);
    expect(stream.state).toBe('live');
  });
});
