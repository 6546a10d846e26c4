import { decodeMessage, encodeMessage } from './codec';
import { isSsiEcrError } from './errors';
import { FrameDecoder, MAX_FRAME_BYTES, encodeFrame, type DecodeEvent } from './framing';
import { buildFrame, fromHex, hex } from './testing/frame-builder';
import { GOLDEN_FRAMES, MALFORMED_FRAMES } from './testing/vectors';

const feedWhole = (bytes: Uint8Array, sut = new FrameDecoder()): DecodeEvent[] => sut.push(bytes);
const feedByteByByte = (bytes: Uint8Array, sut = new FrameDecoder()): DecodeEvent[] => Array.from(bytes).flatMap((b) => sut.push(Uint8Array.of(b)));
const frames = (events: DecodeEvent[]): string[] => events.flatMap((e) => (e.kind === 'frame' ? [Buffer.from(e.frame.data).toString('utf8')] : []));
const garbageCodes = (events: DecodeEvent[]): string[] => events.flatMap((e) => (e.kind === 'garbage' ? [e.error.code] : []));

describe(FrameDecoder.name, () => {
  describe.each(GOLDEN_FRAMES)('golden frame $json', ({ json, frameHex }) => {
    it('the independent builder reproduces the golden bytes', () => {
      expect(hex(buildFrame(json))).toBe(frameHex);
    });

    it('encodes to the golden bytes', () => {
      expect(hex(encodeFrame(new TextEncoder().encode(json)))).toBe(frameHex);
    });

    it.each([
      ['whole', feedWhole],
      ['byte by byte', feedByteByByte],
    ])('decodes fed %s', (_name, feed) => {
      const events = feed(fromHex(frameHex));
      expect(frames(events)).toEqual([json]);
      expect(garbageCodes(events)).toEqual([]);
    });

    it('mirrors: decode(encode(json)) gives the same object', () => {
      const message = JSON.parse(json);
      const [event] = new FrameDecoder().push(encodeMessage(message));
      expect(event.kind === 'frame' && decodeMessage(event.frame)).toEqual(message);
    });
  });

  it('decodes two frames in one chunk and keeps no bytes', () => {
    const sut = new FrameDecoder();
    const events = sut.push(Buffer.concat([buildFrame('{"a":1}'), buildFrame('{"b":2}')]));
    expect(frames(events)).toEqual(['{"a":1}', '{"b":2}']);
    expect(sut.bufferedBytes).toBe(0);
  });

  it('holds a partial frame and reports it in bufferedBytes', () => {
    const sut = new FrameDecoder();
    const frame = buildFrame('{"method":"GetStatus"}');
    expect(sut.push(frame.subarray(0, 10))).toEqual([]);
    expect(sut.bufferedBytes).toBe(10);
    expect(frames(sut.push(frame.subarray(10)))).toEqual(['{"method":"GetStatus"}']);
  });

  it('reset() drops a partial frame', () => {
    const sut = new FrameDecoder();
    sut.push(buildFrame('{"x":1}').subarray(0, 6));
    sut.reset();
    expect(sut.bufferedBytes).toBe(0);
    expect(frames(sut.push(buildFrame('{"y":2}')))).toEqual(['{"y":2}']);
  });

  describe('malformed input, one case per error class', () => {
    const valid = buildFrame('{"method":"PingDevice"}');

    it.each([
      ['UNEXPECTED_BYTES', Buffer.from('hello'), 'drop'],
      ['WRONG_PROTOCOL_ID', buildFrame('{"method":"PingDevice"}', { protocolId: 0xee }), 'E01'],
      ['UNSUPPORTED_VERSION', buildFrame('{"method":"PingDevice"}', { version: 0x02 }), 'E01'],
      ['BAD_CHECKSUM', buildFrame('{"method":"PingDevice"}', { lrc: 0x00 }), 'E02'],
    ])('%s is reported with reply %s, then the next valid frame decodes (whole and byte by byte)', (code, bad, reply) => {
      for (const feed of [feedWhole, feedByteByByte]) {
        const events = feed(Buffer.concat([bad, valid]));
        const first = events.find((e) => e.kind === 'garbage');
        expect(first?.kind === 'garbage' && [first.error.code, first.error.reply]).toEqual([code, reply]);
        expect(frames(events)).toEqual(['{"method":"PingDevice"}']);
      }
    });

    it('WRONG_PROTOCOL_ID carries the spec 5.1 details text', () => {
      const [event] = new FrameDecoder().push(buildFrame('{}', { protocolId: 0xee }));
      expect(event.kind === 'garbage' && event.error.message).toBe('actual: ee, expected: 66');
    });

    it('FRAME_TOO_LARGE above maxFrameBytes (reply E00) without buffering the body', () => {
      const sut = new FrameDecoder({ maxFrameBytes: 64 });
      const events = sut.push(Buffer.concat([buildFrame('x'.repeat(100)), valid]));
      expect(garbageCodes(events)[0]).toBe('FRAME_TOO_LARGE');
      expect(frames(events)).toEqual(['{"method":"PingDevice"}']);
      expect(sut.bufferedBytes).toBe(0);
    });

    it('BAD_JSON: the notes frame 02 66 01 00 01 21 is a valid frame whose DATA fails JSON with E03', () => {
      const [event] = new FrameDecoder().push(fromHex(MALFORMED_FRAMES.badJson));
      expect(event.kind).toBe('frame');
      let caught: unknown;
      try {
        if (event.kind === 'frame') decodeMessage(event.frame);
      } catch (error) {
        caught = error;
      }
      expect(isSsiEcrError(caught, 'BAD_JSON') && caught.reply).toBe('E03');
    });

    it('finds a frame that starts inside a corrupt one (resync at the next STX)', () => {
      const truncatedHeader = Buffer.from([0x02, 0x66, 0x01, 0x00, 0x40, 0x7b]); // claims 64 bytes
      const events = feedWhole(Buffer.concat([Buffer.from([0x02, 0x02]), valid, truncatedHeader.subarray(0, 2)]));
      expect(frames(events)).toEqual(['{"method":"PingDevice"}']);
    });
  });

  it('rejects an unbounded maxFrameBytes (programmer error)', () => {
    expect(() => new FrameDecoder({ maxFrameBytes: MAX_FRAME_BYTES + 1 })).toThrow(RangeError);
  });

  it('encodeFrame refuses DATA above 65535 bytes with FRAME_TOO_LARGE', () => {
    expect(() => encodeFrame(new Uint8Array(65536))).toThrow(expect.objectContaining({ code: 'FRAME_TOO_LARGE' }));
  });
});
