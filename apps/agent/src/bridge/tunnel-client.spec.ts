import type { AddressInfo } from 'node:net';

import { WebSocketServer } from 'ws';

import { createLogger } from '@payorch/logging';
import { waitFor } from '@payorch/testing';
import { AGENT_CLOSE_CODES, DEFAULT_MAX_FRAME_BYTES } from '@payorch/tunnel';

import { closedPort, type FakeConnector, startFakeConnector, startRefusingConnector } from '../testing/fake-connector';
import { backoffDelay, RETRY_AFTER_CAP_MS, retryAfterMs, TunnelClient } from './tunnel-client';

const logger = createLogger({ name: 'test', level: 'silent' });

describe(TunnelClient.name, () => {
  let live: FakeConnector;
  let dead: string;

  beforeAll(async () => {
    live = await startFakeConnector({ credential: 'pac_ok' });
    dead = `ws://127.0.0.1:${await closedPort()}/agent`;
  });

  afterAll(() => live.close());

  it('tries the connector URLs in turn, and re-dials the one that worked first after a drop', async () => {
    const states: string[] = [];
    const delays: number[] = [];
    const sut = new TunnelClient({
      connectors: [dead, live.url],
      credential: 'pac_ok',
      logger,
      baseDelayMs: 1,
      maxDelayMs: 8,
      random: () => {
        delays.push(1);
        return 0;
      },
      onStateChange: ({ connected, connector }) => states.push(`${connected ? 'up' : 'down'} ${connector}`),
    });
    void sut.start();
    try {
      await waitFor(() => sut.connected, { what: 'a connection to the live connector' });
      expect(sut.connector).toBe(live.url);
      expect(states).toEqual([`down ${dead}`, `up ${live.url}`]);
      expect(live.connections).toHaveLength(1);

      // The connector drops the tunnel: the same (working) URL is dialled again, not the dead one.
      states.length = 0;
      const before = live.connections.length;
      await live.dropAll();
      await waitFor(() => live.connections.length === before + 1 && sut.connected, { what: 'the reconnect' });
      expect(states).toEqual([`down ${live.url}`, `up ${live.url}`]);
      // One backoff delay drawn per failed or dropped connection.
      expect(delays).toHaveLength(2);
    } finally {
      sut.stop();
    }
  });

  it('moves on to the next URL when a connector answers an HTTP error, and stops for good on 401', async () => {
    const sut = new TunnelClient({
      connectors: [live.url.replace('/agent', '/nope/agent'), live.url],
      credential: 'pac_revoked',
      logger,
      baseDelayMs: 1,
      random: () => 0,
    });
    const fatal = await sut.start();
    expect(fatal.message).toBe('connector refused the credential (HTTP 401); re-enroll this agent with a new token');
    expect(sut.connector).toBe(live.url);
  });
});

describe(`${TunnelClient.name}: refused set-ups`, () => {
  /** A connector that accepts the upgrade, then closes every tunnel with `code` (as the device connector after a failed set-up). */
  async function closingConnector(code: number) {
    const wss = new WebSocketServer({ port: 0, host: '127.0.0.1' });
    await new Promise<void>((resolve) => wss.once('listening', () => resolve()));
    let connections = 0;
    wss.on('connection', (ws) => {
      connections += 1;
      ws.close(code, code === AGENT_CLOSE_CODES.SETUP_FAILED ? 'SETUP_FAILED: could not record presence' : 'going away');
    });
    return {
      url: `ws://127.0.0.1:${(wss.address() as AddressInfo).port}/agent`,
      connections: () => connections,
      close: () => new Promise<void>((resolve) => wss.close(() => resolve())),
    };
  }

  /** The reconnect delays the client logged (random 0.999: the delay is the backoff ceiling minus 1). */
  async function delaysAfter(code: number, closes: number): Promise<number[]> {
    return delaysFrom(await closingConnector(code), closes);
  }

  async function delaysFrom(connector: { url: string; close: () => Promise<void> }, closes: number, baseDelayMs = 8): Promise<number[]> {
    const delays: number[] = [];
    const logger = createLogger({
      name: 'test',
      level: 'info',
      destination: {
        write: (line: string) => {
          const entry = JSON.parse(line) as { msg: string; delayMs?: number };
          if (entry.msg === 'tunnel closed; reconnecting') delays.push(entry.delayMs!);
        },
      },
    });
    const sut = new TunnelClient({ connector: connector.url, credential: 'pac_ok', logger, baseDelayMs, maxDelayMs: 10_000, random: () => 0.999 });
    void sut.start();
    try {
      await waitFor(() => delays.length >= closes, { what: `${closes} reconnects` });
    } finally {
      sut.stop();
      await connector.close();
    }
    return delays.slice(0, closes);
  }

  it('backs off further after each tunnel the connector refuses with SETUP_FAILED, as after failed dials', async () => {
    expect(await delaysAfter(AGENT_CLOSE_CODES.SETUP_FAILED, 4)).toEqual([7, 15, 31, 63]);
  });

  it('restarts the backoff after a tunnel that worked and was closed for another reason', async () => {
    expect(await delaysAfter(1001, 3)).toEqual([7, 7, 7]);
  });

  it("waits at least a refusal's Retry-After before dialling again (429 of the connect budget, a proxy's 503), the backoff when longer", async () => {
    // One refusal each (the test reads the delay the client chose, it does not wait it out). Backoff ceiling 8 ms
    // (random 0.999: 7): the refusal's seconds decide.
    expect(await delaysFrom(await startRefusingConnector(429, { 'Retry-After': '2' }), 1)).toEqual([2000]);
    expect(await delaysFrom(await startRefusingConnector(503, { 'Retry-After': '1' }), 1)).toEqual([1000]);
    // A backoff longer than the refusal's time: the backoff.
    expect(await delaysFrom(await startRefusingConnector(429, { 'Retry-After': '2' }), 1, 5_000)).toEqual([4995]);
    // Without one, or with an unreadable one, the backoff alone, growing per refusal.
    expect(await delaysFrom(await startRefusingConnector(429, {}), 3)).toEqual([7, 15, 31]);
    expect(await delaysFrom(await startRefusingConnector(429, { 'Retry-After': 'soon' }), 1)).toEqual([7]);
  });
});

describe(`${TunnelClient.name}: message size`, () => {
  it('refuses a message longer than one tunnel frame from its header (1009), before buffering it', async () => {
    // A tunnel frame is one WebSocket message of at most DEFAULT_MAX_FRAME_BYTES, header included (the connector sends
    // no larger frame than the agent announced): a longer message is refused by ws before its payload is read.
    const wss = new WebSocketServer({ port: 0, host: '127.0.0.1' });
    await new Promise<void>((resolve) => wss.once('listening', () => resolve()));
    const closed = new Promise<number>((resolve) =>
      wss.on('connection', (ws) => {
        ws.once('close', (code) => resolve(code));
        ws.send(Buffer.alloc(DEFAULT_MAX_FRAME_BYTES + 1));
      }),
    );
    const sut = new TunnelClient({
      connector: `ws://127.0.0.1:${(wss.address() as AddressInfo).port}/agent`,
      credential: 'pac_ok',
      logger,
      baseDelayMs: 60_000,
    });
    void sut.start();
    try {
      expect(await closed).toBe(1009);
    } finally {
      sut.stop();
      await new Promise<void>((resolve) => wss.close(() => resolve()));
    }
  });
});

describe(retryAfterMs.name, () => {
  it('reads delta-seconds and HTTP dates, never below 0 nor above RETRY_AFTER_CAP_MS', () => {
    const now = Date.parse('2026-12-06T12:00:00Z');
    expect(retryAfterMs('3', now)).toBe(3000);
    expect(retryAfterMs(['5', '9'], now)).toBe(5000);
    expect(retryAfterMs('Sun, 06 Dec 2026 12:00:30 GMT', now)).toBe(30_000);
    expect(retryAfterMs('Sun, 06 Dec 2026 11:00:00 GMT', now)).toBe(0);
    expect(retryAfterMs('86400', now)).toBe(RETRY_AFTER_CAP_MS);
    expect([retryAfterMs(undefined, now), retryAfterMs('', now), retryAfterMs('-1', now), retryAfterMs('1.5', now), retryAfterMs('later', now)]).toEqual([
      undefined,
      undefined,
      undefined,
      undefined,
      undefined,
    ]);
  });
});

describe(backoffDelay.name, () => {
  it('grows exponentially up to the cap, with full jitter', () => {
    expect(backoffDelay(0, 500, 30_000, () => 0.999)).toBe(499);
    expect(backoffDelay(3, 500, 30_000, () => 0.999)).toBe(3996);
    expect(backoffDelay(20, 500, 30_000, () => 0.999)).toBe(29_970);
    expect(backoffDelay(5, 500, 30_000, () => 0)).toBe(0);
  });
});
