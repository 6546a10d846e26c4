import { Multiplexer, type MultiplexerOptions } from './multiplexer';
import type { TunnelProtocolError } from './errors';
import type { TunnelStream } from './stream';
import { collect } from './testing/collect';
import { frameBytes, str8, TYPE, u16, u32, u64, u8, utf8 } from './testing/frame-builder';
import { ManualClock } from './testing/manual-clock';
import { RecordingTransport } from './testing/recording-transport';

/**
 * The connector against a scripted agent: every inbound frame is built byte by byte with the
 * independent builder, so the tests also pin what the Multiplexer accepts on the wire.
 */

const HELLO = frameBytes(TYPE.HELLO, 0, [...u8(1), ...u16(1), ...u32(65_536), ...str8('raw-agent/1'), ...u8(0)]);
const open = (id: number, window: number, json = '{"link":{"kind":"tcp-connect","host":"h","port":1}}') =>
  frameBytes(TYPE.OPEN, id, [...u32(window), ...utf8(json)]);
const data = (id: number, length: number) =>
  frameBytes(
    TYPE.DATA,
    id,
    Array.from({ length }, (_, i) => i & 0xff),
  );

interface Harness {
  sut: Multiplexer;
  transport: RecordingTransport;
  clock: ManualClock;
  errors: TunnelProtocolError[];
  accepted: TunnelStream[];
}

function connector(options: Partial<MultiplexerOptions> = {}, handshake = true): Harness {
  const transport = new RecordingTransport();
  const clock = new ManualClock();
  const sut = new Multiplexer(transport, {
    role: 'connector',
    software: 'connector/1',
    heartbeat: false,
    timers: clock,
    initialWindow: 8192,
    ...options,
  });
  const errors: TunnelProtocolError[] = [];
  const accepted: TunnelStream[] = [];
  sut.onProtocolError((error) => errors.push(error));
  sut.setOpenHandler((request) => accepted.push(request.accept()));
  sut.start();
  if (handshake) {
    sut.receive(HELLO);
    transport.take();
  }
  return { sut, transport, clock, errors, accepted };
}

describe(`${Multiplexer.name} against a scripted peer`, () => {
  describe('handshake', () => {
    it('answers HELLO with HELLO_ACK', () => {
      const { transport, sut } = connector({ capabilities: ['relay'] }, false);
      sut.receive(HELLO);
      expect(transport.take()).toEqual([
        {
          type: 'HELLO_ACK',
          accepted: true,
          version: 1,
          maxFrameBytes: 65_024,
          software: 'connector/1',
          capabilities: [],
        },
      ]);
      expect(sut.state).toBe('open');
    });

    it('closes with HANDSHAKE_FAILED (ws 4400) when the first frame is not HELLO', () => {
      const { transport, sut } = connector({}, false);
      sut.receive(frameBytes(TYPE.PING, 0, u64(1)));
      expect(sut.closeReason?.code).toBe('HANDSHAKE_FAILED');
      expect(transport.closedWith?.code).toBe(4400);
    });

    it('closes with HANDSHAKE_FAILED on garbage before the handshake', () => {
      const { sut } = connector({}, false);
      sut.receive(Uint8Array.of(0x16, 0x03, 0x01));
      expect(sut.closeReason).toEqual({
        code: 'HANDSHAKE_FAILED',
        message: 'LENGTH_MISMATCH: message of 3 bytes',
      });
    });

    it('closes with HANDSHAKE_TIMEOUT (ws 4408) when HELLO never comes', () => {
      const { transport, sut, clock } = connector({ handshakeTimeoutMs: 5000 }, false);
      clock.advance(4999);
      expect(sut.state).toBe('handshaking');
      clock.advance(1);
      expect(sut.closeReason?.code).toBe('HANDSHAKE_TIMEOUT');
      expect(transport.closedWith?.code).toBe(4408);
    });

    it('rejects a HELLO without a common version with the versions it supports', () => {
      const { transport, sut } = connector({}, false);
      sut.receive(frameBytes(TYPE.HELLO, 0, [...u8(2), ...u16(7), ...u16(8), ...u32(65_536), ...str8('future-agent/9'), ...u8(0)]));
      expect(transport.take()).toEqual([
        expect.objectContaining({
          type: 'HELLO_ACK',
          accepted: false,
          code: 'NO_COMMON_VERSION',
          versions: [1],
        }),
      ]);
      expect(transport.closedWith?.code).toBe(4426);
    });

    it('ignores a second HELLO after the handshake but counts it', () => {
      const { sut, errors } = connector();
      sut.receive(HELLO);
      expect(errors.map((error) => error.code)).toEqual(['UNEXPECTED_FRAME']);
      expect(sut.state).toBe('open');
    });
  });

  describe('session rules', () => {
    it('answers PING with PONG echoing the timestamp', () => {
      const { sut, transport } = connector();
      sut.receive(frameBytes(TYPE.PING, 0, u64(1_234_567)));
      expect(transport.take()).toEqual([{ type: 'PONG', timestamp: 1_234_567 }]);
    });

    it('[T6-1] resets a stream whose peer sends beyond the granted window', () => {
      const { sut, transport, errors, accepted } = connector();
      sut.receive(open(1, 4096));
      expect(transport.take()).toEqual([{ type: 'OPEN_OK', streamId: 1, window: 8192 }]);
      accepted[0].pause();
      sut.receive(data(1, 8000));
      sut.receive(data(1, 193));
      expect(transport.take()).toEqual([expect.objectContaining({ type: 'RESET', streamId: 1, code: 'FLOW_CONTROL_ERROR' })]);
      expect(errors.map((error) => error.code)).toEqual(['FLOW_CONTROL_VIOLATION']);
      expect(accepted[0].state).toBe('closed');
    });

    it('[T6-2] resets a stream whose peer overflows the send window with CREDIT', () => {
      const { sut, transport, errors } = connector();
      sut.receive(open(1, 0x7fff_0000));
      transport.take();
      sut.receive(frameBytes(TYPE.CREDIT, 1, u32(0x0001_0000)));
      expect(transport.take()).toEqual([expect.objectContaining({ type: 'RESET', streamId: 1, code: 'FLOW_CONTROL_ERROR' })]);
      expect(errors[0].code).toBe('FLOW_CONTROL_VIOLATION');
    });

    it('[T6-3] returns credit in batches of a quarter window as data is delivered', async () => {
      const { sut, transport, accepted } = connector();
      sut.receive(open(1, 4096));
      transport.take();
      const received = collect(accepted[0]);
      sut.receive(data(1, 1000));
      sut.receive(data(1, 1000));
      expect(transport.take()).toEqual([]);
      sut.receive(data(1, 100));
      expect(transport.take()).toEqual([{ type: 'CREDIT', streamId: 1, increment: 2100 }]);
      sut.receive(frameBytes(TYPE.CLOSE, 1, u16(1)));
      accepted[0].end();
      expect(transport.take()).toEqual([{ type: 'CLOSE', streamId: 1, code: 'NORMAL', message: '' }]);
      expect((await received).data).toHaveLength(2100);
    });

    it('[T5-1] refuses OPEN with the wrong parity or a reused id', () => {
      const { sut, transport, errors } = connector();
      sut.receive(open(2, 4096));
      sut.receive(open(5, 4096));
      sut.receive(open(3, 4096));
      expect(transport.take()).toEqual([{ type: 'OPEN_OK', streamId: 5, window: 8192 }]);
      expect(errors.map((error) => error.code)).toEqual(['BAD_STREAM_ID_ALLOCATION', 'BAD_STREAM_ID_ALLOCATION']);
    });

    it('answers an OPEN with an invalid link with OPEN_FAIL PROTOCOL_ERROR', () => {
      const { sut, transport, errors } = connector();
      sut.receive(open(1, 4096, '{"link":{"kind":"tcp-connect","host":"h","port":0}}'));
      expect(transport.take()).toEqual([expect.objectContaining({ type: 'OPEN_FAIL', streamId: 1, code: 'PROTOCOL_ERROR' })]);
      expect(errors[0]).toMatchObject({ code: 'INVALID_LINK', reaction: 'fail-stream' });
    });

    it('[T5-3] counts frames for never-opened streams and ignores frames for retired ones', () => {
      const { sut, transport, errors, accepted } = connector();
      sut.receive(open(1, 4096));
      accepted[0].destroy();
      transport.take();
      sut.receive(data(1, 10));
      sut.receive(frameBytes(TYPE.CLOSE, 1, u16(0)));
      expect(errors).toEqual([]);
      sut.receive(data(9, 10));
      sut.receive(frameBytes(TYPE.CREDIT, 4, u32(1)));
      expect(errors.map((error) => error.code)).toEqual(['UNKNOWN_STREAM', 'UNKNOWN_STREAM']);
      expect(transport.take()).toEqual([]);
    });

    it('rejects DATA after the peer closed its direction', () => {
      const { sut, transport, errors } = connector();
      sut.receive(open(1, 4096));
      sut.receive(frameBytes(TYPE.CLOSE, 1, u16(0)));
      transport.take();
      sut.receive(data(1, 1));
      expect(errors.map((error) => error.code)).toEqual(['DATA_AFTER_CLOSE']);
      expect(transport.take()).toEqual([expect.objectContaining({ type: 'RESET', code: 'PROTOCOL_ERROR' })]);
    });

    it('drops control messages sent in the wrong direction and text messages', () => {
      const { sut, errors } = connector();
      const received: unknown[] = [];
      sut.onControl((message) => received.push(message));
      sut.receive(frameBytes(TYPE.CONTROL, 0, utf8('{"type":"terminal-list","terminals":[]}')));
      sut.receive(Buffer.from('hello'), false);
      sut.receive(frameBytes(TYPE.CONTROL, 0, utf8('{"type":"goaway","reason":"draining"}')));
      expect(errors.map((error) => error.code)).toEqual(['CONTROL_DIRECTION', 'TEXT_MESSAGE']);
      expect(received).toEqual([{ type: 'goaway', reason: 'draining' }]);
    });
  });

  describe('bad-message budget', () => {
    it('closes the tunnel (ws 1002) and every stream once the budget is exhausted', async () => {
      const { sut, transport, accepted } = connector({
        badMessageBudget: { limit: 3, windowMs: 60_000 },
      });
      sut.receive(open(1, 4096));
      const closed = collect(accepted[0]);
      for (let i = 0; i < 3; i++) sut.receive(Uint8Array.of(0xff));
      expect(sut.state).toBe('open');
      sut.receive(Uint8Array.of(0xff));
      expect(sut.closeReason?.code).toBe('PROTOCOL_ERROR');
      expect(transport.closedWith?.code).toBe(1002);
      expect((await closed).error?.code).toBe('TUNNEL_CLOSED');
    });

    it('forgives errors older than the budget window', () => {
      const { sut, clock } = connector({ badMessageBudget: { limit: 3, windowMs: 60_000 } });
      for (let i = 0; i < 3; i++) sut.receive(Uint8Array.of(0xff));
      clock.advance(60_000);
      for (let i = 0; i < 3; i++) sut.receive(Uint8Array.of(0xff));
      expect(sut.state).toBe('open');
    });
  });
});
