import { fc, it } from '@fast-check/jest';

import { decodeFrame, encodeDataFrame, encodeFrame, type DecodeEvent } from './codec';
import { FRAME_HEADER_BYTES } from './constants';
import type { Frame } from './frames';
import { FrameDecoder } from './framing';
import { frameArb, headerValidFrameArb } from './testing/arbitraries';
import { concatBytes, frameBytes, TYPE } from './testing/frame-builder';

/**
 * The decoder properties of STYLE C8, adapted to the tunnel (docs/tunnel.md §3.3): over a
 * WebSocket the message boundary is the resync point; on a byte stream a header error fails closed
 * instead of resyncing, and `reset()` is what makes the same instance usable again.
 */

const MAX = 8192;
const OPTIONS = { maxFrameBytes: MAX };
const RUNS = { numRuns: 200 };
const MAX_MAX = 16 * 1024 * 1024;
const smallFrameArb = frameArb.filter((frame) => encodeFrame(frame).length <= MAX);

function split(bytes: Uint8Array, cuts: number[]): Uint8Array[] {
  const points = [...new Set(cuts.map((cut) => cut % (bytes.length + 1)))].sort((a, b) => a - b);
  const parts: Uint8Array[] = [];
  let previous = 0;
  for (const point of [...points, bytes.length]) {
    parts.push(bytes.subarray(previous, point));
    previous = point;
  }
  return parts;
}

function framesOf(events: DecodeEvent[]): Frame[] {
  return events.flatMap((event) => (event.kind === 'frame' ? [event.frame] : []));
}

describe('tunnel codec properties', () => {
  it.prop([frameArb], RUNS)('1. decode(encode(frame)) equals frame', (frame) => {
    expect(decodeFrame(encodeFrame(frame), { maxFrameBytes: 16 * 1024 * 1024 })).toEqual({
      kind: 'frame',
      frame,
    });
  });

  it.prop([fc.array(smallFrameArb, { minLength: 1, maxLength: 8 }), fc.array(fc.nat(), { maxLength: 20 })], RUNS)(
    '2. any chunking of a byte stream decodes to the same frames as the whole stream',
    (frames, cuts) => {
      const stream = concatBytes(frames.map((frame) => encodeFrame(frame)));
      const whole = new FrameDecoder(OPTIONS).push(stream);
      const decoder = new FrameDecoder(OPTIONS);
      const chunked = split(stream, cuts).flatMap((chunk) => decoder.push(chunk));
      expect(chunked).toEqual(whole);
      expect(framesOf(whole)).toEqual(frames);
      expect(decoder.bufferedBytes).toBe(0);
    },
  );

  it.prop([fc.uint8Array({ maxLength: 200 }).filter((junk) => junk[0] !== 0xa1), smallFrameArb], RUNS)(
    '3a. message mode: a garbage message is reported and the next message decodes (resync at the message boundary)',
    (junk, frame) => {
      const junkEvent = decodeFrame(junk, OPTIONS);
      expect(junkEvent).toMatchObject({
        kind: 'garbage',
        bytes: junk,
        error: { reaction: 'drop-frame' },
      });
      expect(decodeFrame(encodeFrame(frame), OPTIONS)).toEqual({ kind: 'frame', frame });
    },
  );

  it.prop([fc.uint8Array({ minLength: 1, maxLength: 200 }).filter((junk) => junk[0] >> 4 !== 0xa), smallFrameArb], RUNS)(
    '3b. byte stream: garbage ++ valid yields garbage and never a frame (fails closed, no frame injection)',
    (junk, frame) => {
      const decoder = new FrameDecoder(OPTIONS);
      const events = [...decoder.push(junk), ...decoder.push(encodeFrame(frame))];
      expect(events.length).toBeGreaterThanOrEqual(1);
      expect(events.every((event) => event.kind === 'garbage' && event.error.reaction === 'close-tunnel')).toBe(true);
      expect(decoder.failed).toBeDefined();
    },
  );

  it.prop(
    [
      fc.array(
        fc.oneof(
          fc.uint8Array({ maxLength: 300 }),
          headerValidFrameArb,
          smallFrameArb.map((frame) => encodeFrame(frame)),
        ),
        { maxLength: 10 },
      ),
      fc.array(fc.nat(), { maxLength: 20 }),
    ],
    RUNS,
  )('4. arbitrary bytes never throw and bufferedBytes <= maxFrameBytes after every push', (parts, cuts) => {
    const decoder = new FrameDecoder(OPTIONS);
    for (const chunk of split(concatBytes(parts), cuts)) {
      expect(() => decoder.push(chunk)).not.toThrow();
      expect(decoder.bufferedBytes).toBeLessThanOrEqual(MAX);
    }
    for (const part of parts) expect(() => decodeFrame(part, OPTIONS)).not.toThrow();
  });

  it.prop([fc.uint8Array({ minLength: FRAME_HEADER_BYTES, maxLength: 300 }), smallFrameArb], RUNS)(
    '5a. after any garbage and reset(), the same decoder decodes a valid frame',
    (junk, frame) => {
      const decoder = new FrameDecoder(OPTIONS);
      decoder.push(junk);
      decoder.reset();
      expect(decoder.push(encodeFrame(frame))).toEqual([{ kind: 'frame', frame }]);
    },
  );

  it.prop(
    [fc.integer({ min: 1, max: 0xffff_ffff }), fc.uint8Array({ minLength: 1, maxLength: 3000 }), fc.array(fc.nat(), { maxLength: 8 }), fc.boolean()],
    RUNS,
  )(
    '6. encodeDataFrame of any split of a payload (into a fresh or a recycled buffer) is the DATA frame of the whole payload',
    (streamId, payload, cuts, recycled) => {
      const expected = frameBytes(TYPE.DATA, streamId, [...payload]);
      // A recycled buffer holds the previous frame's bytes: every one of them must be overwritten.
      const into = recycled ? new Uint8Array(expected.length).fill(0xee) : undefined;
      const parts = split(payload, cuts).filter((part) => part.length > 0);
      const frame = encodeDataFrame(streamId, parts, payload.length, MAX_MAX, into);
      expect(Buffer.from(frame).equals(Buffer.from(expected))).toBe(true);
      if (into) expect(frame).toBe(into);
      expect(decodeFrame(frame, { maxFrameBytes: MAX_MAX })).toEqual({ kind: 'frame', frame: { type: 'DATA', streamId, data: payload } });
    },
  );

  it.prop([headerValidFrameArb, smallFrameArb], RUNS)('5b. a frame with a valid header but any payload never desynchronises the decoder', (suspect, frame) => {
    const decoder = new FrameDecoder(OPTIONS);
    const events = decoder.push(concatBytes([suspect, encodeFrame(frame)]));
    expect(events).toHaveLength(2);
    expect(events[1]).toEqual({ kind: 'frame', frame });
  });
});
