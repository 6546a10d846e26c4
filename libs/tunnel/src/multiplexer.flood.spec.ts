import { RateBudget } from './budget';
import { decodeFrame } from './codec';
import { MAX_MAX_FRAME_BYTES } from './constants';
import type { Frame } from './frames';
import { Multiplexer, type MultiplexerOptions } from './multiplexer';
import { frameBytes, str8, TYPE, u16, u32, u64, u8, utf8 } from './testing/frame-builder';
import { ManualClock } from './testing/manual-clock';
import type { FrameTransport } from './transport';

/**
 * A hostile peer on an open tunnel floods the frames that make this side answer or parse (PING, OPEN, CONTROL)
 * and never reads what it is sent (docs/tunnel.md §9, "connection frames"; docs/security.md, hostile agents).
 */

const HELLO = frameBytes(TYPE.HELLO, 0, [...u8(1), ...u16(1), ...u32(65_536), ...str8('hostile-agent/1'), ...u8(0)]);
const PING = frameBytes(TYPE.PING, 0, u64(1));
const open = (id: number) => frameBytes(TYPE.OPEN, id, [...u32(4096), ...utf8('{"link":{"kind":"tcp-connect","host":"h","port":1}}')]);
const linkStatus = (state: string) => frameBytes(TYPE.CONTROL, 0, utf8(JSON.stringify({ type: 'link-status', terminalId: 't-1', state })));

/** A socket whose peer never reads: what is sent is recorded and never flushed (ws calls back once written to the kernel). */
class UnreadTransport implements FrameTransport {
  readonly sent: Frame[] = [];
  unflushed = 0;
  closedWith: { code: number; reason: string } | undefined;
  terminated = false;
  /** When true, sends are flushed at once (a peer that reads). */
  reading = false;

  send(bytes: Uint8Array, onFlushed: (error?: Error) => void): void {
    const event = decodeFrame(bytes, { maxFrameBytes: MAX_MAX_FRAME_BYTES });
    if (event.kind !== 'frame') throw new Error(`multiplexer sent garbage: ${event.error.message}`);
    this.sent.push(event.frame);
    if (this.reading) onFlushed();
    else this.unflushed += bytes.length;
  }

  close(code: number, reason: string): void {
    this.closedWith = { code, reason };
  }

  terminate(): void {
    this.terminated = true;
  }
}

function connector(options: Partial<MultiplexerOptions> = {}) {
  const transport = new UnreadTransport();
  const clock = new ManualClock();
  const sut = new Multiplexer(transport, { role: 'connector', software: 'connector/1', heartbeat: false, timers: clock, ...options });
  const controls: unknown[] = [];
  sut.onControl((message) => controls.push(message));
  sut.start();
  transport.reading = true;
  sut.receive(HELLO);
  transport.reading = false;
  return { sut, transport, clock, controls };
}

describe(`${Multiplexer.name} against a flooding peer`, () => {
  describe('a peer that never reads (maxTransportUnflushedBytes)', () => {
    it('cuts the tunnel (SEND_OVERFLOW, terminated) once its unread PONGs pass the bound, instead of buffering them without end', () => {
      const { sut, transport } = connector({ transportHighWaterMark: 64 * 1024, maxFrameBytes: 4096, maxTransportUnflushedBytes: 128 * 1024 });
      // 20 bytes of PONG per PING: 10,000 PINGs would leave 200 KB unflushed.
      for (let i = 0; i < 10_000 && sut.state === 'open'; i++) sut.receive(PING);

      expect(sut.closeReason?.code).toBe('SEND_OVERFLOW');
      expect(transport.terminated).toBe(true);
      expect(transport.unflushed).toBeLessThanOrEqual(128 * 1024 + 20);
    });

    it('keeps a peer that reads, however many PINGs it sends (no connection frame budget by default)', () => {
      const { sut, transport } = connector({ transportHighWaterMark: 64 * 1024, maxFrameBytes: 4096, maxTransportUnflushedBytes: 128 * 1024 });
      transport.reading = true;
      for (let i = 0; i < 10_000; i++) sut.receive(PING);
      expect(sut.state).toBe('open');
      expect(transport.sent.filter((frame) => frame.type === 'PONG')).toHaveLength(10_000);
    });

    it('refuses a bound below transportHighWaterMark + maxFrameBytes (DATA alone may reach that)', () => {
      expect(() => connector({ transportHighWaterMark: 64 * 1024, maxFrameBytes: 4096, maxTransportUnflushedBytes: 64 * 1024 })).toThrow(
        /maxTransportUnflushedBytes must be an integer in 69632\.\./,
      );
    });
  });

  describe('connectionFrameBudget', () => {
    const budget = { limit: 5, windowMs: 60_000 };

    it('answers PINGs within the budget and closes the tunnel (PROTOCOL_ERROR, ws 1002) at the first one beyond it', () => {
      const { sut, transport } = connector({ connectionFrameBudget: budget });
      transport.reading = true;
      for (let i = 0; i < 5; i++) sut.receive(PING);
      expect(sut.state).toBe('open');
      sut.receive(PING);

      expect(transport.sent.filter((frame) => frame.type === 'PONG')).toHaveLength(5);
      expect(sut.closeReason).toEqual({
        code: 'PROTOCOL_ERROR',
        message: 'connection frame budget exhausted: more than 5 frames per 60000 ms (last PING)',
      });
      expect(transport.closedWith?.code).toBe(1002);
    });

    it('counts CONTROL messages and OPENs with PINGs: the sixth is not delivered', () => {
      const { sut, transport, controls } = connector({ connectionFrameBudget: budget });
      transport.reading = true;
      sut.receive(linkStatus('up'));
      sut.receive(open(1));
      sut.receive(PING);
      sut.receive(open(3));
      sut.receive(linkStatus('error'));
      sut.receive(linkStatus('up'));

      expect(controls).toEqual([
        { type: 'link-status', terminalId: 't-1', state: 'up' },
        { type: 'link-status', terminalId: 't-1', state: 'error' },
      ]);
      expect(transport.sent.filter((frame) => frame.type === 'OPEN_FAIL')).toHaveLength(2);
      expect(sut.closeReason?.code).toBe('PROTOCOL_ERROR');
    });

    it('counts a large CONTROL message one per started 4 KiB', () => {
      const { sut, transport, controls } = connector({ connectionFrameBudget: budget });
      transport.reading = true;
      const links = Array.from({ length: 100 }, (_, i) => ({ terminalId: `terminal-${i}`, state: 'down', detail: 'x'.repeat(40) }));
      const status = frameBytes(TYPE.CONTROL, 0, utf8(JSON.stringify({ type: 'agent-status', software: 'a/1', uptimeMs: 1, links })));
      expect(status.length).toBeGreaterThan(8192);
      expect(status.length).toBeLessThanOrEqual(12_288);
      sut.receive(status);
      sut.receive(PING);
      sut.receive(PING);
      expect(sut.state).toBe('open');
      sut.receive(PING);
      expect(controls).toHaveLength(1);
      expect(sut.closeReason?.code).toBe('PROTOCOL_ERROR');
    });

    it('counts the transport’s own control frames (WebSocket pings and pongs)', () => {
      const { sut } = connector({ connectionFrameBudget: budget });
      for (let i = 0; i < 5; i++) sut.noteTransportControlFrame('WebSocket ping');
      expect(sut.state).toBe('open');
      sut.noteTransportControlFrame('WebSocket pong');
      expect(sut.closeReason?.message).toMatch(/last WebSocket pong\)$/);
    });

    it('refills at limit per window: a peer within the rate is never closed', () => {
      const { sut, transport, clock } = connector({ connectionFrameBudget: budget });
      transport.reading = true;
      // 5 at once, then one every 12 s (5 per minute) for an hour.
      for (let i = 0; i < 5; i++) sut.receive(PING);
      for (let i = 0; i < 300; i++) {
        clock.advance(12_000);
        sut.receive(PING);
      }
      expect(sut.state).toBe('open');
      sut.receive(PING);
      expect(sut.closeReason?.code).toBe('PROTOCOL_ERROR');
    });

    it('does not count stream frames (flow control bounds them)', () => {
      const { sut, transport } = connector({ connectionFrameBudget: { limit: 1, windowMs: 60_000 } });
      transport.reading = true;
      sut.setOpenHandler((request) => void request.accept());
      sut.receive(open(1));
      for (let i = 0; i < 100; i++) sut.receive(frameBytes(TYPE.DATA, 1, [i]));
      expect(sut.state).toBe('open');
    });
  });
});

describe(RateBudget.name, () => {
  it('allows limit at once, then limit per window, and says how long to wait', () => {
    const sut = new RateBudget({ limit: 3, windowMs: 3000 }, 0);
    expect([sut.spend(0), sut.spend(0), sut.spend(0), sut.spend(0)]).toEqual([true, true, true, false]);
    expect(sut.waitMs(0)).toBe(1000);
    expect(sut.spend(999)).toBe(false);
    expect(sut.spend(1000)).toBe(true);
    expect(sut.isFull(1000)).toBe(false);
    expect(sut.isFull(4000)).toBe(true);
    expect(sut.waitMs(4000)).toBe(0);
  });
});
