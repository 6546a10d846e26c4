import { fc, test } from '@fast-check/jest';

import { FrameDecoder, type DecodeEvent } from './framing';
import { buildFrame } from './testing/frame-builder';

const NUM_RUNS = { numRuns: 200 };
const MAX = 512;

/** DATA up to 200 bytes (JSON-ish text or raw bytes: the framer does not look inside). */
const dataArb = fc.oneof(
  fc
    .json()
    .map((j) => new TextEncoder().encode(j))
    .filter((d) => d.length <= 200),
  fc.uint8Array({ maxLength: 200 }),
);
const framesArb = fc.array(dataArb, { minLength: 1, maxLength: 5 });
/** Garbage that cannot itself contain a complete frame header (02 66 01). */
const garbageArb = fc.uint8Array({ minLength: 1, maxLength: 64 }).filter((g) => !Buffer.from(g).includes(Buffer.from([0x02, 0x66, 0x01])));

const frameData = (events: DecodeEvent[]): string[] => events.flatMap((e) => (e.kind === 'frame' ? [Buffer.from(e.frame.data).toString('hex')] : []));

function splitAt(bytes: Uint8Array, cuts: number[]): Uint8Array[] {
  const points = [...new Set(cuts.map((c) => c % (bytes.length + 1)))].sort((a, b) => a - b);
  const parts: Uint8Array[] = [];
  let prev = 0;
  for (const p of [...points, bytes.length]) {
    parts.push(bytes.subarray(prev, p));
    prev = p;
  }
  return parts;
}

describe('FrameDecoder properties (STYLE C8)', () => {
  test.prop([framesArb], NUM_RUNS)('1. decode(encode(m)) returns every DATA unchanged', (datas) => {
    const events = new FrameDecoder({ maxFrameBytes: MAX }).push(Buffer.concat(datas.map((d) => buildFrame(d))));
    expect(frameData(events)).toEqual(datas.map((d) => Buffer.from(d).toString('hex')));
  });

  test.prop([framesArb, fc.array(fc.nat(), { maxLength: 20 })], NUM_RUNS)('2. any chunking yields the same frames as the whole stream', (datas, cuts) => {
    const stream = Buffer.concat(datas.map((d) => buildFrame(d)));
    const whole = frameData(new FrameDecoder({ maxFrameBytes: MAX }).push(stream));
    const sut = new FrameDecoder({ maxFrameBytes: MAX });
    const chunked = splitAt(stream, cuts).flatMap((part) => frameData(sut.push(part)));
    expect(chunked).toEqual(whole);
  });

  test.prop([garbageArb, dataArb], NUM_RUNS)('3. garbage ++ valid yields ≥1 garbage event, then the valid frame', (garbage, data) => {
    const events = new FrameDecoder({ maxFrameBytes: MAX }).push(Buffer.concat([garbage, buildFrame(data)]));
    expect(events.filter((e) => e.kind === 'garbage').length).toBeGreaterThanOrEqual(1);
    expect(frameData(events)).toEqual([Buffer.from(data).toString('hex')]);
  });

  test.prop([fc.array(fc.uint8Array({ maxLength: 300 }), { maxLength: 10 })], NUM_RUNS)(
    '4. arbitrary bytes never throw and bufferedBytes ≤ maxFrameBytes at every step',
    (chunks) => {
      const sut = new FrameDecoder({ maxFrameBytes: MAX });
      for (const chunk of chunks) {
        expect(() => sut.push(chunk)).not.toThrow();
        expect(sut.bufferedBytes).toBeLessThanOrEqual(MAX);
      }
    },
  );

  test.prop([fc.uint8Array({ minLength: 1, maxLength: 300 }), dataArb], NUM_RUNS)(
    '5. after any garbage and a reset-free resync point, the same instance decodes a valid frame',
    (noise, data) => {
      const sut = new FrameDecoder({ maxFrameBytes: MAX });
      sut.push(noise);
      // A partial header left by the noise may swallow up to maxFrameBytes; flush it with filler that
      // contains no STX, as a quiet line would, then send the frame.
      sut.push(new Uint8Array(MAX).fill(0x20));
      const events = sut.push(buildFrame(data));
      expect(frameData(events)).toEqual([Buffer.from(data).toString('hex')]);
    },
  );
});
