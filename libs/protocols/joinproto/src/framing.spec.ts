import { FrameDecoder, type DecodeEvent } from './framing';
import { data, frame, fromHex } from './testing/frame-builder';

const echo = data([
  ['DF00', '99'],
  ['DF01', '931154'],
]);
const relayChunk = data([
  ['DF00', '92'],
  ['DF01', '100753'],
  ['DF23', '1'],
  ['DF24', Uint8Array.of(0x03, 0x02, 0x03, 0x00)],
]);

function feed(bytes: Uint8Array, maxFrameBytes = 1024): { events: DecodeEvent[]; sut: FrameDecoder } {
  const sut = new FrameDecoder({ maxFrameBytes });
  return { events: sut.push(bytes), sut };
}
const kinds = (events: DecodeEvent[]) => events.map((e) => (e.kind === 'frame' ? 'frame' : e.error.code));

describe(FrameDecoder.name, () => {
  it('yields DATA of a frame, with ETX and STX bytes inside a binary value (length-driven walk)', () => {
    const { events, sut } = feed(frame(relayChunk));
    expect(events).toEqual([{ kind: 'frame', frame: new Uint8Array(relayChunk) }]);
    expect(sut.bufferedBytes).toBe(0);
  });

  it('holds a partial frame and completes it with the next chunk', () => {
    const bytes = frame(echo);
    const sut = new FrameDecoder({ maxFrameBytes: 64 });
    expect(sut.push(bytes.subarray(0, 7))).toEqual([]);
    expect(sut.bufferedBytes).toBe(7);
    expect(sut.push(bytes.subarray(7))).toEqual([{ kind: 'frame', frame: new Uint8Array(echo) }]);
    expect(sut.bufferedBytes).toBe(0);
  });

  it('[JP-3-STX] reports bytes before STX as garbage and decodes the frame after them', () => {
    const { events } = feed(Buffer.concat([Buffer.from('noise'), frame(echo)]));
    expect(kinds(events)).toEqual(['NO_STX', 'frame']);
    expect(events[0]).toMatchObject({ bytes: new Uint8Array(Buffer.from('noise')) });
    expect(events[0].kind === 'garbage' && events[0].error.reply).toBe('other err');
  });

  it('[JP-2-LRC] rejects a bad LRC, then decodes the next frame', () => {
    const bad = frame(echo, 0x55);
    const { events } = feed(Buffer.concat([bad, frame(echo)]));
    expect(kinds(events)).toEqual(['BAD_LRC', 'frame']);
    expect(events[0]).toMatchObject({ bytes: new Uint8Array(bad) });
  });

  it('[JP-3-EMPTY] rejects STX ETX with no DATA', () => {
    expect(kinds(feed(Buffer.concat([fromHex('020300'), frame(echo)])).events)).toEqual(['EMPTY_DATA', 'frame']);
  });

  it('[JP-2-TLV] rejects a frame whose DATA ends inside a TLV, then decodes the next frame', () => {
    // DF00 declares 3 bytes but only "99" precedes ETX LRC.
    const truncated = Buffer.concat([fromHex('02DF0000033939'), fromHex('03'), Buffer.from([0xdf ^ 0x03 ^ 0x39 ^ 0x39])]);
    const { events } = feed(Buffer.concat([truncated, frame(echo)]));
    expect(kinds(events)).toEqual(['TRUNCATED_TLV', 'frame']);
    expect(events[0]).toMatchObject({ bytes: new Uint8Array(truncated) });
  });

  it('reports a TLV boundary that holds neither a tag nor ETX as BAD_TLV and resynchronises', () => {
    expect(kinds(feed(Buffer.concat([fromHex('02DF000002393941'), frame(echo)])).events)).toEqual(['BAD_TLV', 'frame']);
  });

  it('[JP-2-SIZE] rejects a frame larger than maxFrameBytes as soon as a TLV header says so, without buffering it', () => {
    const big = frame(
      data([
        ['DF00', '92'],
        ['DF24', new Uint8Array(100)],
      ]),
    );
    const sut = new FrameDecoder({ maxFrameBytes: 64 });
    const events = sut.push(big.subarray(0, 16));
    expect(kinds(events)).toEqual(['FRAME_TOO_LARGE']);
    expect(sut.bufferedBytes).toBeLessThanOrEqual(64);
    expect(kinds(sut.push(Buffer.concat([big.subarray(16), frame(echo)])))).toContain('frame');
  });

  it('accepts a frame of exactly maxFrameBytes and rejects one byte more', () => {
    const exact = frame(echo);
    expect(kinds(feed(exact, exact.length).events)).toEqual(['frame']);
    expect(kinds(feed(exact, exact.length - 1).events)).toEqual(['FRAME_TOO_LARGE']);
  });

  it('flush() reports a partial frame as INCOMPLETE_FRAME and empties the buffer', () => {
    const sut = new FrameDecoder({ maxFrameBytes: 64 });
    sut.push(frame(echo).subarray(0, 9));
    expect(kinds(sut.flush())).toEqual(['INCOMPLETE_FRAME']);
    expect(sut.bufferedBytes).toBe(0);
    expect(kinds(sut.push(frame(echo)))).toEqual(['frame']);
  });

  it("flush() delivers a complete frame that arrived inside the span a cut frame's TLV header claimed", () => {
    const sut = new FrameDecoder({ maxFrameBytes: 1024 });
    // Line noise cut a frame after DF0A declared 100 bytes; three arrived, then the terminal's next frame (an echo),
    // then silence. The walk waits for the 100 bytes, so only flush() can tell; before, it dropped the echo with them.
    const cut = Buffer.concat([Buffer.from([0x02]), fromHex('DF0000023031DF0A0064'), Buffer.from([0x41, 0x42, 0x43])]);
    expect(sut.push(Buffer.concat([cut, frame(echo)]))).toEqual([]);
    const events = sut.flush();
    expect(kinds(events)).toEqual(['INCOMPLETE_FRAME', 'frame']);
    expect(events[1]).toEqual({ kind: 'frame', frame: new Uint8Array(echo) });
    expect(events[0]!.kind === 'garbage' && events[0]!.bytes.length).toBe(cut.length);
    expect(sut.bufferedBytes).toBe(0);
  });

  it('flush() after a cut frame and the beginning of another reports both as incomplete', () => {
    const sut = new FrameDecoder({ maxFrameBytes: 1024 });
    const cut = Buffer.concat([Buffer.from([0x02]), fromHex('DF0000023031DF0A0064'), Buffer.from([0x41])]);
    expect(sut.push(Buffer.concat([cut, frame(echo).subarray(0, 9)]))).toEqual([]);
    expect(kinds(sut.flush())).toEqual(['INCOMPLETE_FRAME', 'INCOMPLETE_FRAME']);
    expect(sut.bufferedBytes).toBe(0);
  });

  it('flush() reports a truncated TLV whose declared length runs past ETX', () => {
    const sut = new FrameDecoder({ maxFrameBytes: 64 });
    // DF01 declares 6 bytes, 2 are present, then ETX LRC: the walk waits for 4 more bytes.
    const body = fromHex('DF0000023939DF0100063931');
    let check = 0;
    for (const byte of body) check ^= byte;
    expect(sut.push(Buffer.concat([Buffer.from([0x02]), body, Buffer.from([0x03, check])]))).toEqual([]);
    expect(kinds(sut.flush())).toEqual(['TRUNCATED_TLV']);
  });

  it('reset() drops a partial frame', () => {
    const sut = new FrameDecoder({ maxFrameBytes: 64 });
    sut.push(frame(echo).subarray(0, 5));
    sut.reset();
    expect(sut.bufferedBytes).toBe(0);
    expect(kinds(sut.push(frame(echo)))).toEqual(['frame']);
  });

  it('requires a sane maxFrameBytes', () => {
    expect(() => new FrameDecoder({ maxFrameBytes: 3 })).toThrow(expect.objectContaining({ code: 'INVALID_MESSAGE' }));
  });
});
