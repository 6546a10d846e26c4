import { fc, test } from '@fast-check/jest';

import { frameOf, streamOf } from './testing/builders';
import { encodeFrame, FrameDecoder, type DecodeEvent } from './framing';

const MAX = 512;
const xmlPayload = fc.string({ unit: 'grapheme', minLength: 0, maxLength: 60 }).map((text) => `<m>${text.replace(/[<&]/g, '')}</m>`);

const framesOf = (events: DecodeEvent[]): string[] => events.flatMap((e) => (e.kind === 'frame' ? [Buffer.from(e.frame).toString('utf8')] : []));

function feedInChunks(decoder: FrameDecoder, bytes: Uint8Array, cuts: number[]): DecodeEvent[] {
  const points = [...new Set(cuts.map((c) => c % (bytes.length + 1)))].sort((a, b) => a - b);
  const events: DecodeEvent[] = [];
  let from = 0;
  for (const point of [...points, bytes.length]) {
    events.push(...decoder.push(bytes.subarray(from, point)));
    from = point;
  }
  return events;
}

describe('FrameDecoder properties', () => {
  test.prop([fc.array(xmlPayload, { minLength: 1, maxLength: 6 }), fc.array(fc.nat(), { maxLength: 20 })], { numRuns: 200 })(
    '(1, 2) any split of a valid stream decodes to the same packets as the whole stream',
    (payloads, cuts) => {
      const stream = streamOf(...payloads.map(frameOf));
      const whole = framesOf(new FrameDecoder({ maxFrameBytes: MAX }).push(stream));
      const chunked = framesOf(feedInChunks(new FrameDecoder({ maxFrameBytes: MAX }), stream, cuts));
      expect(whole).toEqual(payloads);
      expect(chunked).toEqual(payloads);
    },
  );

  // Garbage without 0x00 bytes cannot hold a header with a length ≤ MAX, so it can never swallow the
  // valid packet that follows (a 4-byte length starting with a non-zero byte is ≥ 16 MiB).
  test.prop([fc.uint8Array({ min: 1, minLength: 1, maxLength: 64 }), xmlPayload], { numRuns: 200 })(
    '(3) garbage ++ valid yields the valid packet after at least one garbage event',
    (garbage, payload) => {
      const events = new FrameDecoder({ maxFrameBytes: MAX }).push(streamOf(garbage, frameOf(payload)));
      expect(events[0].kind).toBe('garbage');
      expect(framesOf(events)).toEqual([payload]);
    },
  );

  test.prop([fc.array(fc.uint8Array({ maxLength: 700 }), { maxLength: 10 })], { numRuns: 200 })(
    '(4) arbitrary bytes never throw and never buffer more than maxFrameBytes',
    (chunks) => {
      const sut = new FrameDecoder({ maxFrameBytes: MAX });
      for (const chunk of chunks) {
        expect(() => sut.push(chunk)).not.toThrow();
        expect(sut.bufferedBytes).toBeLessThanOrEqual(MAX);
      }
    },
  );

  test.prop([fc.uint8Array({ minLength: 1, maxLength: 200 }), xmlPayload], { numRuns: 200 })(
    '(5) after any garbage the same decoder still decodes a valid packet',
    (garbage, payload) => {
      const sut = new FrameDecoder({ maxFrameBytes: MAX });
      sut.push(garbage);
      // The garbage may have left a plausible partial packet (≤ MAX bytes pending); MAX filler bytes
      // that can never start a header complete or discard it, so the next packet starts clean.
      sut.push(new Uint8Array(MAX).fill(0xff));
      expect(framesOf(sut.push(frameOf(payload)))).toEqual([payload]);
    },
  );
});

describe('frames from the shared slab', () => {
  test.prop([fc.array(fc.uint8Array({ minLength: 1, maxLength: 3000 }), { minLength: 1, maxLength: 60 })], { numRuns: 30 })(
    'keep their own bytes: a later packet never overwrites an earlier one',
    (payloads) => {
      const decoder = new FrameDecoder({ maxFrameBytes: 4096 });
      const frames: { frame: Uint8Array; copy: number[] }[] = [];
      for (const body of payloads) {
        const payload = new Uint8Array([0x3c, ...body]); // starts as XML
        for (const event of decoder.push(encodeFrame(payload, 4096))) {
          if (event.kind === 'frame') frames.push({ frame: event.frame, copy: Array.from(event.frame) });
        }
      }
      expect(frames).toHaveLength(payloads.length);
      for (const { frame, copy } of frames) expect(Array.from(frame)).toEqual(copy);
    },
  );
});
