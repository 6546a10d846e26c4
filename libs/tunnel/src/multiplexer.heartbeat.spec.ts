import { Multiplexer } from './multiplexer';
import { collect } from './testing/collect';
import { createMuxPair, settle, startPair, type MuxPair } from './testing/mux-pair';
import type { TunnelCloseInfo } from './transport';

describe(`${Multiplexer.name} heartbeat`, () => {
  let pair: MuxPair;
  const heartbeat = { intervalMs: 1000, maxMissed: 2 };

  beforeEach(async () => {
    jest.useFakeTimers();
    pair = createMuxPair({ agent: { heartbeat }, connector: { heartbeat } });
    pair.agent.setOpenHandler((request) => request.accept());
    await startPair(pair);
  });

  afterEach(() => {
    pair.agent.close();
    pair.connector.close();
    jest.useRealTimers();
  });

  async function advance(ms: number, step = 250): Promise<void> {
    for (let elapsed = 0; elapsed < ms; elapsed += step) {
      jest.advanceTimersByTime(step);
      await settle();
    }
  }

  it('keeps a responsive tunnel open and measures the round trip', async () => {
    await advance(10_000);
    expect(pair.agent.state).toBe('open');
    expect(pair.connector.state).toBe('open');
    expect(pair.connector.stats.rttMs).toBe(0);
    expect(pair.connector.stats.framesIn).toBeGreaterThanOrEqual(10);
  });

  it('declares the peer dead after maxMissed silent intervals and closes every stream', async () => {
    const stream = await pair.connector.open({
      kind: 'tcp-connect',
      host: 'pos.local',
      port: 2000,
    });
    const streamClosed = collect(stream);
    const closed = new Promise<TunnelCloseInfo>((resolve) => pair.connector.onClose(resolve));
    const terminate = jest.spyOn(pair.connectorTransport, 'terminate');
    pair.agentTransport.stall();

    await advance(2750);
    expect(pair.connector.state).toBe('open');
    await advance(500);
    expect(pair.connector.state).toBe('closed');
    expect(await closed).toEqual({
      code: 'HEARTBEAT_TIMEOUT',
      message: 'no frame from the peer for 3000 ms',
    });
    expect(terminate).toHaveBeenCalledTimes(1);
    expect((await streamClosed).error).toMatchObject({ code: 'TUNNEL_CLOSED' });
    expect(jest.getTimerCount()).toBe(0);
  });

  it('counts any inbound frame as a sign of life, not only PONG', async () => {
    pair.agent.close();
    pair.connector.close();
    // An agent without heartbeat that never sees (so never answers) PINGs but keeps sending status.
    pair = createMuxPair({ agent: { heartbeat: false }, connector: { heartbeat } });
    await startPair(pair);
    const receive = pair.agent.receive.bind(pair.agent);
    pair.agent.receive = (message, isBinary) => {
      if (message[1] !== 0x0a) receive(message, isBinary);
    };
    for (let i = 0; i < 10; i++) {
      pair.agent.sendControl({ type: 'link-status', terminalId: 'T-1', state: 'up' });
      await advance(500);
    }
    expect(pair.connector.state).toBe('open');
    expect(pair.connector.stats.rttMs).toBeUndefined();
    await advance(3000);
    expect(pair.connector.closeReason?.code).toBe('HEARTBEAT_TIMEOUT');
  });
});
