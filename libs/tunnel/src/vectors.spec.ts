import { decodeFrame, encodeFrame, type DecodeEvent } from './codec';
import { DEFAULT_MAX_FRAME_BYTES } from './constants';
import type { ProtocolErrorCode, ProtocolErrorReaction } from './errors';
import type { Frame } from './frames';
import { FrameDecoder } from './framing';
import { frameBytes, fromHex, str16, str8, TYPE, u16, u32, u64, u8, utf8 } from './testing/frame-builder';

/** Codec vectors (STYLE C8): expected bytes from the independent builder, never from the encoder. */

interface OkVector {
  name: string;
  frame: Frame;
  bytes: Uint8Array;
}

const OK_VECTORS: OkVector[] = [
  {
    name: 'HELLO from an agent',
    frame: {
      type: 'HELLO',
      versions: [1, 2],
      maxFrameBytes: 65_536,
      software: 'payorch-agent/1.0.0',
      capabilities: ['serial', 'tcp-listen'],
    },
    bytes: frameBytes(TYPE.HELLO, 0, [
      ...u8(2),
      ...u16(1),
      ...u16(2),
      ...u32(65_536),
      ...str8('payorch-agent/1.0.0'),
      ...u8(2),
      ...str8('serial'),
      ...str8('tcp-listen'),
    ]),
  },
  {
    name: 'HELLO_ACK accepted',
    frame: {
      type: 'HELLO_ACK',
      accepted: true,
      version: 1,
      maxFrameBytes: 4096,
      software: 'connector/2',
      capabilities: [],
    },
    bytes: frameBytes(TYPE.HELLO_ACK, 0, [...u8(1), ...u16(1), ...u32(4096), ...str8('connector/2'), ...u8(0)]),
  },
  {
    name: 'HELLO_ACK rejected (no common version)',
    frame: {
      type: 'HELLO_ACK',
      accepted: false,
      code: 'NO_COMMON_VERSION',
      versions: [3, 4],
      message: 'upgrade the agent',
    },
    bytes: frameBytes(TYPE.HELLO_ACK, 0, [...u8(0), ...u16(1), ...u8(2), ...u16(3), ...u16(4), ...str16('upgrade the agent')]),
  },
  {
    name: 'OPEN tcp-connect with terminal id',
    frame: {
      type: 'OPEN',
      streamId: 2,
      window: 262_144,
      link: { kind: 'tcp-connect', host: '10.0.0.5', port: 2000 },
      terminalId: 'T-1',
    },
    bytes: frameBytes(TYPE.OPEN, 2, [...u32(262_144), ...utf8('{"link":{"kind":"tcp-connect","host":"10.0.0.5","port":2000},"terminalId":"T-1"}')]),
  },
  {
    name: 'OPEN serial',
    frame: {
      type: 'OPEN',
      streamId: 4,
      window: 1,
      link: { kind: 'serial', path: '/dev/ttyS0', baudRate: 115_200, parity: 'none' },
    },
    bytes: frameBytes(TYPE.OPEN, 4, [...u32(1), ...utf8('{"link":{"kind":"serial","path":"/dev/ttyS0","baudRate":115200,"parity":"none"}}')]),
  },
  {
    name: 'OPEN tcp-listen',
    frame: { type: 'OPEN', streamId: 6, window: 1024, link: { kind: 'tcp-listen', port: 9100 } },
    bytes: frameBytes(TYPE.OPEN, 6, [...u32(1024), ...utf8('{"link":{"kind":"tcp-listen","port":9100}}')]),
  },
  {
    name: 'OPEN relay-tcp',
    frame: {
      type: 'OPEN',
      streamId: 3,
      window: 65_536,
      link: { kind: 'relay-tcp', host: 'host.example', port: 443 },
    },
    bytes: frameBytes(TYPE.OPEN, 3, [...u32(65_536), ...utf8('{"link":{"kind":"relay-tcp","host":"host.example","port":443}}')]),
  },
  {
    name: 'OPEN_OK',
    frame: { type: 'OPEN_OK', streamId: 2, window: 0x7fff_ffff },
    bytes: frameBytes(TYPE.OPEN_OK, 2, u32(0x7fff_ffff)),
  },
  {
    name: 'OPEN_FAIL refused',
    frame: { type: 'OPEN_FAIL', streamId: 2, code: 'REFUSED', message: 'ECONNREFUSED' },
    bytes: frameBytes(TYPE.OPEN_FAIL, 2, [...u16(1), ...utf8('ECONNREFUSED')]),
  },
  {
    name: 'DATA',
    frame: { type: 'DATA', streamId: 0xffff_ffff, data: Uint8Array.from([0x02, 0x00, 0x03, 0xff]) },
    bytes: frameBytes(TYPE.DATA, 0xffff_ffff, [0x02, 0x00, 0x03, 0xff]),
  },
  {
    name: 'CREDIT',
    frame: { type: 'CREDIT', streamId: 7, increment: 65_536 },
    bytes: frameBytes(TYPE.CREDIT, 7, u32(65_536)),
  },
  {
    name: 'CLOSE with empty reason',
    frame: { type: 'CLOSE', streamId: 9, code: 'NORMAL', message: '' },
    bytes: frameBytes(TYPE.CLOSE, 9, u16(0)),
  },
  {
    name: 'CLOSE link ended, UTF-8 reason',
    frame: { type: 'CLOSE', streamId: 9, code: 'LINK_ENDED', message: 'термінал закрив з’єднання' },
    bytes: frameBytes(TYPE.CLOSE, 9, [...u16(1), ...utf8('термінал закрив з’єднання')]),
  },
  {
    name: 'RESET flow control',
    frame: { type: 'RESET', streamId: 1, code: 'FLOW_CONTROL_ERROR', message: 'window exceeded' },
    bytes: frameBytes(TYPE.RESET, 1, [...u16(8), ...utf8('window exceeded')]),
  },
  {
    name: 'PING',
    frame: { type: 'PING', timestamp: 1_750_000_000_123 },
    bytes: frameBytes(TYPE.PING, 0, u64(1_750_000_000_123)),
  },
  {
    name: 'PONG with the largest safe timestamp',
    frame: { type: 'PONG', timestamp: Number.MAX_SAFE_INTEGER },
    bytes: frameBytes(TYPE.PONG, 0, u64(Number.MAX_SAFE_INTEGER)),
  },
  {
    name: 'CONTROL terminal-list',
    frame: {
      type: 'CONTROL',
      message: {
        type: 'terminal-list',
        terminals: [
          {
            terminalId: 'T-1',
            protocol: 'jpay',
            link: { kind: 'tcp-connect', host: 'pos1.local', port: 8888 },
          },
        ],
      },
    },
    bytes: frameBytes(
      TYPE.CONTROL,
      0,
      utf8('{"type":"terminal-list","terminals":[{"terminalId":"T-1","protocol":"jpay","link":{"kind":"tcp-connect","host":"pos1.local","port":8888}}]}'),
    ),
  },
  {
    name: 'CONTROL link-status',
    frame: {
      type: 'CONTROL',
      message: { type: 'link-status', terminalId: 'T-9', state: 'down', detail: 'ECONNRESET' },
    },
    bytes: frameBytes(TYPE.CONTROL, 0, utf8('{"type":"link-status","terminalId":"T-9","state":"down","detail":"ECONNRESET"}')),
  },
];

/** Hand-written hex pins the header layout itself (docs/tunnel.md §3.1 examples). */
const HEX_VECTORS: { name: string; frame: Frame; hex: string }[] = [
  {
    name: 'PING ts=1',
    frame: { type: 'PING', timestamp: 1 },
    hex: 'a1 0a 0000 00000000 00000008 0000000000000001',
  },
  {
    name: 'CREDIT 4096 on stream 2',
    frame: { type: 'CREDIT', streamId: 2, increment: 4096 },
    hex: 'a1 07 0000 00000002 00000004 00001000',
  },
  {
    name: 'DATA "hi" on stream 1',
    frame: { type: 'DATA', streamId: 1, data: Uint8Array.from([0x68, 0x69]) },
    hex: 'a1 06 0000 00000001 00000002 6869',
  },
];

interface BadVector {
  name: string;
  bytes: Uint8Array;
  code: ProtocolErrorCode;
  /** Reaction in message mode (one WebSocket message = one frame). */
  reaction: ProtocolErrorReaction;
}

const openPayload = (json: string): number[] => [...u32(1024), ...utf8(json)];

const BAD_VECTORS: BadVector[] = [
  {
    name: '[T3-1] bad magic',
    bytes: frameBytes(TYPE.PING, 0, u64(1), { lead: 0x51 }),
    code: 'BAD_MAGIC',
    reaction: 'drop-frame',
  },
  {
    name: '[T3-2] unknown format version',
    bytes: frameBytes(TYPE.PING, 0, u64(1), { lead: 0xa2 }),
    code: 'UNSUPPORTED_FORMAT',
    reaction: 'drop-frame',
  },
  {
    name: '[T3-3] unknown frame type',
    bytes: frameBytes(0x0d, 0, []),
    code: 'UNKNOWN_FRAME_TYPE',
    reaction: 'drop-frame',
  },
  {
    name: '[T3-4] reserved flags set',
    bytes: frameBytes(TYPE.DATA, 1, [1], { flags: 0x0001 }),
    code: 'BAD_FLAGS',
    reaction: 'drop-frame',
  },
  {
    name: '[T3-5] announced payload above maxFrameBytes',
    bytes: frameBytes(TYPE.DATA, 1, [1], { length: DEFAULT_MAX_FRAME_BYTES - 11 }),
    code: 'FRAME_TOO_LARGE',
    reaction: 'drop-frame',
  },
  {
    name: '[T3-6] PING on a stream',
    bytes: frameBytes(TYPE.PING, 3, u64(1)),
    code: 'BAD_STREAM_ID',
    reaction: 'drop-frame',
  },
  {
    name: '[T3-6] DATA on stream 0',
    bytes: frameBytes(TYPE.DATA, 0, [1]),
    code: 'BAD_STREAM_ID',
    reaction: 'drop-frame',
  },
  {
    name: '[T3-7] message shorter than the header',
    bytes: Uint8Array.from([0xa1, 0x0a, 0, 0]),
    code: 'LENGTH_MISMATCH',
    reaction: 'drop-frame',
  },
  {
    name: '[T3-7] message longer than announced',
    bytes: frameBytes(TYPE.DATA, 1, [1, 2], { length: 1 }),
    code: 'LENGTH_MISMATCH',
    reaction: 'drop-frame',
  },
  {
    name: '[T4-HELLO-1] versions not ascending',
    bytes: frameBytes(TYPE.HELLO, 0, [...u8(2), ...u16(2), ...u16(1), ...u32(65_536), ...str8('a'), ...u8(0)]),
    code: 'BAD_PAYLOAD',
    reaction: 'drop-frame',
  },
  {
    name: '[T4-HELLO-1] no versions',
    bytes: frameBytes(TYPE.HELLO, 0, [...u8(0), ...u32(65_536), ...str8('a'), ...u8(0)]),
    code: 'BAD_PAYLOAD',
    reaction: 'drop-frame',
  },
  {
    name: '[T4-HELLO-2] maxFrameBytes below 4 KiB',
    bytes: frameBytes(TYPE.HELLO, 0, [...u8(1), ...u16(1), ...u32(1024), ...str8('a'), ...u8(0)]),
    code: 'BAD_PAYLOAD',
    reaction: 'drop-frame',
  },
  {
    name: '[T4-HELLO-3] non-ASCII software',
    bytes: frameBytes(TYPE.HELLO, 0, [...u8(1), ...u16(1), ...u32(65_536), ...str8('агент'), ...u8(0)]),
    code: 'BAD_PAYLOAD',
    reaction: 'drop-frame',
  },
  {
    name: '[T4-HELLO-4] duplicate capability',
    bytes: frameBytes(TYPE.HELLO, 0, [...u8(1), ...u16(1), ...u32(65_536), ...str8('a'), ...u8(2), ...str8('x'), ...str8('x')]),
    code: 'BAD_PAYLOAD',
    reaction: 'drop-frame',
  },
  {
    name: '[T4-HELLO] trailing byte',
    bytes: frameBytes(TYPE.HELLO, 0, [...u8(1), ...u16(1), ...u32(65_536), ...str8('a'), ...u8(0), 0]),
    code: 'BAD_PAYLOAD',
    reaction: 'drop-frame',
  },
  {
    name: '[T4-ACK-1] bad status',
    bytes: frameBytes(TYPE.HELLO_ACK, 0, [...u8(2), ...u16(1)]),
    code: 'BAD_PAYLOAD',
    reaction: 'drop-frame',
  },
  {
    name: '[T4-ACK] unknown reject code',
    bytes: frameBytes(TYPE.HELLO_ACK, 0, [...u8(0), ...u16(99), ...u8(0), ...str16('')]),
    code: 'UNKNOWN_CODE',
    reaction: 'drop-frame',
  },
  {
    name: '[T4-OPEN-1] zero window',
    bytes: frameBytes(TYPE.OPEN, 2, [...u32(0), ...utf8('{"link":{"kind":"tcp-listen","port":1}}')]),
    code: 'BAD_PAYLOAD',
    reaction: 'fail-stream',
  },
  {
    name: '[T4-OPEN-2] not JSON',
    bytes: frameBytes(TYPE.OPEN, 2, openPayload('{link')),
    code: 'BAD_JSON',
    reaction: 'fail-stream',
  },
  {
    name: '[T4-OPEN-2] invalid UTF-8',
    bytes: frameBytes(TYPE.OPEN, 2, [...u32(1), 0xc3, 0x28]),
    code: 'BAD_UTF8',
    reaction: 'fail-stream',
  },
  {
    name: '[T4-OPEN-2] port out of range',
    bytes: frameBytes(TYPE.OPEN, 2, openPayload('{"link":{"kind":"tcp-connect","host":"a","port":70000}}')),
    code: 'INVALID_LINK',
    reaction: 'fail-stream',
  },
  {
    name: '[T4-OPEN-2] unknown link kind',
    bytes: frameBytes(TYPE.OPEN, 2, openPayload('{"link":{"kind":"udp","host":"a","port":1}}')),
    code: 'INVALID_LINK',
    reaction: 'fail-stream',
  },
  {
    name: '[T4-OPEN-2] unknown key',
    bytes: frameBytes(TYPE.OPEN, 2, openPayload('{"link":{"kind":"tcp-listen","port":1,"x":1}}')),
    code: 'INVALID_LINK',
    reaction: 'fail-stream',
  },
  {
    name: '[T4-OPEN-2] __proto__ key',
    bytes: frameBytes(TYPE.OPEN, 2, openPayload('{"link":{"kind":"tcp-listen","port":1},"__proto__":{"a":1}}')),
    code: 'INVALID_LINK',
    reaction: 'fail-stream',
  },
  {
    name: '[T4-OPEN_OK] short payload',
    bytes: frameBytes(TYPE.OPEN_OK, 2, [0, 0, 1]),
    code: 'BAD_PAYLOAD',
    reaction: 'fail-stream',
  },
  {
    name: '[T4-REASON-1] unknown stream error code',
    bytes: frameBytes(TYPE.RESET, 2, u16(999)),
    code: 'UNKNOWN_CODE',
    reaction: 'fail-stream',
  },
  {
    name: '[T4-REASON-1] unknown close code',
    bytes: frameBytes(TYPE.CLOSE, 2, u16(3)),
    code: 'UNKNOWN_CODE',
    reaction: 'fail-stream',
  },
  {
    name: '[T4-REASON-1] reason above 512 bytes',
    bytes: frameBytes(TYPE.OPEN_FAIL, 2, [...u16(1), ...utf8('x'.repeat(513))]),
    code: 'BAD_PAYLOAD',
    reaction: 'fail-stream',
  },
  {
    name: '[T4-DATA-1] empty DATA',
    bytes: frameBytes(TYPE.DATA, 1, []),
    code: 'BAD_PAYLOAD',
    reaction: 'fail-stream',
  },
  {
    name: '[T4-CREDIT-1] zero credit',
    bytes: frameBytes(TYPE.CREDIT, 1, u32(0)),
    code: 'BAD_PAYLOAD',
    reaction: 'fail-stream',
  },
  {
    name: '[T4-CREDIT-1] credit above 2^31-1',
    bytes: frameBytes(TYPE.CREDIT, 1, u32(0x8000_0000)),
    code: 'BAD_PAYLOAD',
    reaction: 'fail-stream',
  },
  {
    name: '[T4-PING-1] timestamp above 2^53-1',
    bytes: frameBytes(TYPE.PING, 0, [0x00, 0x20, 0, 0, 0, 0, 0, 0]),
    code: 'BAD_PAYLOAD',
    reaction: 'drop-frame',
  },
  {
    name: '[T4-PING-1] short PING',
    bytes: frameBytes(TYPE.PING, 0, [0, 0, 0, 1]),
    code: 'BAD_PAYLOAD',
    reaction: 'drop-frame',
  },
  {
    name: '[T4-CONTROL-1] unknown control type',
    bytes: frameBytes(TYPE.CONTROL, 0, utf8('{"type":"reboot"}')),
    code: 'INVALID_CONTROL',
    reaction: 'drop-frame',
  },
  {
    name: '[T4-CONTROL-1] negative uptime',
    bytes: frameBytes(TYPE.CONTROL, 0, utf8('{"type":"agent-status","software":"a","uptimeMs":-1,"links":[]}')),
    code: 'INVALID_CONTROL',
    reaction: 'drop-frame',
  },
];

const OPTIONS = { maxFrameBytes: DEFAULT_MAX_FRAME_BYTES };

function frames(events: DecodeEvent[]): Frame[] {
  return events.map((event) => {
    if (event.kind !== 'frame') throw new Error(`unexpected garbage: ${event.error.code} ${event.error.message}`);
    return event.frame;
  });
}

describe('tunnel codec vectors', () => {
  describe.each(OK_VECTORS)('$name', ({ frame, bytes }) => {
    it('decodes the expected bytes', () => {
      expect(decodeFrame(bytes, OPTIONS)).toEqual({ kind: 'frame', frame });
    });

    it('encodes to the expected bytes', () => {
      expect(Buffer.from(encodeFrame(frame)).toString('hex')).toBe(Buffer.from(bytes).toString('hex'));
    });

    it('mirrors: decode(encode(frame)) equals frame', () => {
      expect(decodeFrame(encodeFrame(frame), OPTIONS)).toEqual({ kind: 'frame', frame });
    });

    it('decodes from a byte stream, whole and byte by byte', () => {
      expect(frames(new FrameDecoder(OPTIONS).push(bytes))).toEqual([frame]);
      const decoder = new FrameDecoder(OPTIONS);
      const events = Array.from(bytes).flatMap((byte) => decoder.push(Uint8Array.of(byte)));
      expect(frames(events)).toEqual([frame]);
      expect(decoder.bufferedBytes).toBe(0);
    });
  });

  it.each(HEX_VECTORS)('pins the header layout: $name', ({ frame, hex }) => {
    expect(Buffer.from(encodeFrame(frame)).toString('hex')).toBe(hex.replace(/\s+/g, ''));
    expect(decodeFrame(fromHex(hex), OPTIONS)).toEqual({ kind: 'frame', frame });
  });

  describe.each(BAD_VECTORS)('rejects $name', ({ bytes, code, reaction }) => {
    it(`as garbage ${code} with reaction ${reaction}`, () => {
      const event = decodeFrame(bytes, OPTIONS);
      expect(event.kind).toBe('garbage');
      if (event.kind !== 'garbage') return;
      expect(event.error.code).toBe(code);
      expect(event.error.reaction).toBe(reaction);
      expect(event.bytes).toEqual(bytes);
    });
  });

  it('reports the stream id and frame type of a bad stream frame', () => {
    const event = decodeFrame(frameBytes(TYPE.RESET, 42, u16(999)), OPTIONS);
    expect(event.kind === 'garbage' && event.error.details).toEqual({
      streamId: 42,
      frameType: 'RESET',
    });
  });

  describe('encoder refuses frames that break the rules', () => {
    it.each<[string, Frame, ProtocolErrorCode]>([
      ['empty DATA', { type: 'DATA', streamId: 1, data: new Uint8Array(0) }, 'BAD_PAYLOAD'],
      ['DATA on stream 0', { type: 'DATA', streamId: 0, data: Uint8Array.of(1) }, 'BAD_STREAM_ID'],
      ['zero credit', { type: 'CREDIT', streamId: 1, increment: 0 }, 'BAD_PAYLOAD'],
      [
        'invalid link',
        {
          type: 'OPEN',
          streamId: 1,
          window: 1,
          link: { kind: 'tcp-connect', host: 'a b', port: 1 },
        },
        'INVALID_LINK',
      ],
      ['reason too long', { type: 'RESET', streamId: 1, code: 'INTERNAL', message: 'x'.repeat(513) }, 'BAD_PAYLOAD'],
      ['negative timestamp', { type: 'PING', timestamp: -1 }, 'BAD_PAYLOAD'],
    ])('%s', (_name, frame, code) => {
      expect(() => encodeFrame(frame)).toThrow(expect.objectContaining({ code }));
    });

    it('refuses a frame above the receiver limit', () => {
      const frame: Frame = { type: 'DATA', streamId: 1, data: new Uint8Array(4096 - 11) };
      expect(() => encodeFrame(frame, 4096)).toThrow(expect.objectContaining({ code: 'FRAME_TOO_LARGE' }));
      expect(encodeFrame({ ...frame, data: new Uint8Array(4096 - 12) }, 4096)).toHaveLength(4096);
    });
  });
});

describe(FrameDecoder.name, () => {
  const ping = frameBytes(TYPE.PING, 0, u64(5));

  it('requires a bounded maxFrameBytes', () => {
    expect(() => new FrameDecoder({ maxFrameBytes: Number.POSITIVE_INFINITY })).toThrow(RangeError);
    expect(() => new FrameDecoder({ maxFrameBytes: 100 })).toThrow(RangeError);
  });

  it('fails closed on a bad header: all buffered bytes are garbage and later input too', () => {
    const sut = new FrameDecoder(OPTIONS);
    const junk = Uint8Array.from([0x00, ...ping]);
    const events = sut.push(junk);
    expect(events).toHaveLength(1);
    expect(events[0]).toMatchObject({
      kind: 'garbage',
      error: { code: 'BAD_MAGIC', reaction: 'close-tunnel' },
    });
    expect(sut.failed?.code).toBe('BAD_MAGIC');
    expect(sut.bufferedBytes).toBe(0);
    expect(sut.push(ping)).toEqual([{ kind: 'garbage', bytes: ping, error: sut.failed }]);
  });

  it('decodes again after reset()', () => {
    const sut = new FrameDecoder(OPTIONS);
    sut.push(Uint8Array.of(0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff));
    sut.reset();
    expect(sut.failed).toBeUndefined();
    expect(frames(sut.push(ping))).toEqual([{ type: 'PING', timestamp: 5 }]);
  });

  it('skips a frame with a bad payload and keeps decoding (boundary known)', () => {
    const sut = new FrameDecoder(OPTIONS);
    const events = sut.push(Uint8Array.from([...frameBytes(TYPE.CREDIT, 1, u32(0)), ...frameBytes(TYPE.PING, 3, u64(1)), ...ping]));
    expect(events.map((event) => (event.kind === 'frame' ? event.frame.type : event.error.code))).toEqual(['BAD_PAYLOAD', 'BAD_STREAM_ID', 'PING']);
    expect(sut.failed).toBeUndefined();
  });

  it('rejects an oversized frame from its header, before buffering the payload', () => {
    const sut = new FrameDecoder({ maxFrameBytes: 4096 });
    const header = frameBytes(TYPE.DATA, 1, [], { length: 4096 });
    const [event] = sut.push(header);
    expect(event).toMatchObject({
      kind: 'garbage',
      error: { code: 'FRAME_TOO_LARGE', reaction: 'close-tunnel' },
    });
    expect(sut.bufferedBytes).toBe(0);
  });
});
