import { SPEC_EXAMPLES } from './testing/spec-examples';
import { frameOf, streamOf } from './testing/builders';
import { encodeFrame, FrameDecoder, type DecodeEvent } from './framing';

const MAX = 4096;
const frames = (events: DecodeEvent[]): string[] =>
  events.filter((e) => e.kind === 'frame').map((e) => Buffer.from((e as { frame: Uint8Array }).frame).toString('utf8'));

function feedByteByByte(decoder: FrameDecoder, bytes: Uint8Array): DecodeEvent[] {
  const events: DecodeEvent[] = [];
  for (const byte of bytes) events.push(...decoder.push(Uint8Array.of(byte)));
  return events;
}

describe(FrameDecoder.name, () => {
  describe.each(SPEC_EXAMPLES.map((e) => [e.id, e.xml] as const))('spec example %s', (_id, xml) => {
    it('decodes whole', () => {
      const sut = new FrameDecoder({ maxFrameBytes: MAX });
      expect(frames(sut.push(frameOf(xml)))).toEqual([xml]);
      expect(sut.bufferedBytes).toBe(0);
    });

    it('decodes byte by byte', () => {
      const sut = new FrameDecoder({ maxFrameBytes: MAX });
      expect(frames(feedByteByByte(sut, frameOf(xml)))).toEqual([xml]);
    });
  });

  it('decodes several packets from one chunk, in order, with Cyrillic payloads', () => {
    const sut = new FrameDecoder({ maxFrameBytes: MAX });
    const stream = streamOf(frameOf('<a>ОДОБРЕНО</a>'), frameOf('<b/>'), frameOf('<c/>'));
    expect(frames(sut.push(stream))).toEqual(['<a>ОДОБРЕНО</a>', '<b/>', '<c/>']);
  });

  it('holds a partial packet without emitting it', () => {
    const sut = new FrameDecoder({ maxFrameBytes: MAX });
    const bytes = frameOf('<keepalive/>');
    expect(sut.push(bytes.subarray(0, 7))).toEqual([]);
    expect(sut.bufferedBytes).toBe(7);
    expect(frames(sut.push(bytes.subarray(7)))).toEqual(['<keepalive/>']);
  });

  it('reports FRAME_TOO_LARGE for a length beyond maxFrameBytes and resyncs on the next packet', () => {
    const sut = new FrameDecoder({ maxFrameBytes: 64 });
    const oversized = Buffer.from([0x00, 0x00, 0x10, 0x00, 0x3c]);
    const events = sut.push(streamOf(oversized, frameOf('<ok/>')));
    expect(events[0]).toMatchObject({
      kind: 'garbage',
      error: { code: 'FRAME_TOO_LARGE', reaction: 'resync' },
    });
    expect(frames(events)).toEqual(['<ok/>']);
  });

  it('reports FRAME_EMPTY for a zero length', () => {
    const sut = new FrameDecoder({ maxFrameBytes: 64 });
    const events = sut.push(streamOf(Uint8Array.of(0, 0, 0, 0), frameOf('<ok/>')));
    expect(events[0]).toMatchObject({ kind: 'garbage', error: { code: 'FRAME_EMPTY' } });
    expect(frames(events)).toEqual(['<ok/>']);
  });

  it('reports FRAME_NOT_XML when the payload does not start as XML', () => {
    const sut = new FrameDecoder({ maxFrameBytes: 64 });
    const events = sut.push(streamOf(Uint8Array.of(0, 0, 0, 2, 0x41, 0x42), frameOf('<ok/>')));
    expect(events[0]).toMatchObject({ kind: 'garbage', error: { code: 'FRAME_NOT_XML' } });
    expect(frames(events)).toEqual(['<ok/>']);
  });

  it('reset() drops a partial packet', () => {
    const sut = new FrameDecoder({ maxFrameBytes: MAX });
    sut.push(frameOf('<keepalive/>').subarray(0, 6));
    sut.reset();
    expect(sut.bufferedBytes).toBe(0);
    expect(frames(sut.push(frameOf('<x/>')))).toEqual(['<x/>']);
  });

  it('requires a sane maxFrameBytes', () => {
    expect(() => new FrameDecoder({ maxFrameBytes: 4 })).toThrow(expect.objectContaining({ code: 'INVALID_ARGUMENT' }));
  });
});

describe(encodeFrame.name, () => {
  it('writes the 4-byte big-endian length of the payload [JPAY-4-LEN]', () => {
    const xml = '<display><msg>ОДОБРЕНО</msg></display>';
    expect(Buffer.from(encodeFrame(Buffer.from(xml, 'utf8')))).toEqual(Buffer.from(frameOf(xml)));
  });

  it('rejects empty and oversized payloads', () => {
    expect(() => encodeFrame(new Uint8Array(0))).toThrow(expect.objectContaining({ code: 'FRAME_EMPTY' }));
    expect(() => encodeFrame(new Uint8Array(100).fill(0x3c), 50)).toThrow(expect.objectContaining({ code: 'FRAME_TOO_LARGE' }));
  });
});
