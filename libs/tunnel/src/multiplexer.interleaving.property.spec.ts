import { fc, it } from '@fast-check/jest';

import { Multiplexer } from './multiplexer';
import type { TunnelStream } from './stream';
import { collect, type Collected } from './testing/collect';
import { createMuxPair } from './testing/mux-pair';

/**
 * Interleavings (STYLE C8, fast-check `fc.scheduler()`): frame deliveries in both directions,
 * writes, pauses and resets run in an order chosen by the scheduler. Whatever the order, every
 * byte arrives once and in order on streams that were not reset, no reader buffers more than its
 * window, and every stream ends closed on both sides.
 */

const WINDOW = 4096;

const streamPlanArb = fc.record({
  fromAgent: fc.boolean(),
  payload: fc.integer({ min: 0, max: 20_000 }).map((length) => Uint8Array.from({ length }, (_, i) => (i * 31 + length) & 0xff)),
  cuts: fc.array(fc.integer({ min: 1, max: 6000 }), { maxLength: 8, size: 'max' }),
  /** The reader starts paused and toggles this many times at scheduler-chosen moments. */
  pauses: fc.nat({ max: 6 }),
  /** One stream in four is reset by its writer instead of ended. */
  reset: fc.nat({ max: 3 }).map((n) => n === 0),
});

function chunksOf(payload: Uint8Array, sizes: number[]): Uint8Array[] {
  const chunks: Uint8Array[] = [];
  let offset = 0;
  for (const size of sizes) {
    if (offset >= payload.length) break;
    chunks.push(payload.subarray(offset, offset + size));
    offset += size;
  }
  if (offset < payload.length) chunks.push(payload.subarray(offset));
  return chunks;
}

describe(`${Multiplexer.name} interleavings`, () => {
  it.prop([fc.scheduler(), fc.array(streamPlanArb, { minLength: 1, maxLength: 4 })], {
    numRuns: 100,
  })('delivers every byte in order under any scheduling of frames, writes, pauses and resets', async (s, plans) => {
    const pair = createMuxPair({
      pipe: { schedule: (deliver) => void s.schedule(Promise.resolve()).then(deliver) },
      agent: {
        initialWindow: WINDOW,
        streamHighWaterMark: 2048,
        openTimeoutMs: 0,
        handshakeTimeoutMs: 0,
      },
      connector: {
        initialWindow: WINDOW,
        streamHighWaterMark: 2048,
        openTimeoutMs: 0,
        handshakeTimeoutMs: 0,
      },
    });
    const receivers: TunnelStream[] = [];
    let maxReadable = 0;
    for (const mux of [pair.agent, pair.connector]) {
      const receive = mux.receive.bind(mux);
      mux.receive = (message, isBinary) => {
        receive(message, isBinary);
        for (const stream of receivers) maxReadable = Math.max(maxReadable, stream.readableLength);
      };
    }
    const received = new Map<number, Promise<Collected>>();
    const onOpen = (plansById: Map<number, (typeof plans)[number]>) => (request: { streamId: number; accept(): TunnelStream }) => {
      const stream = request.accept();
      stream.pause();
      receivers.push(stream);
      received.set(request.streamId, collect(stream));
      stream.onEnd(() => stream.end());
      const plan = plansById.get(request.streamId);
      void (async () => {
        for (let i = 0; i < (plan?.pauses ?? 0); i++) {
          await s.schedule(Promise.resolve());
          if (stream.isPaused) stream.resume();
          else stream.pause();
        }
        await s.schedule(Promise.resolve());
        stream.resume();
      })();
    };
    const plansById = new Map<number, (typeof plans)[number]>();
    pair.agent.setOpenHandler(onOpen(plansById));
    pair.connector.setOpenHandler(onOpen(plansById));

    const ready = Promise.all([new Promise((r) => pair.agent.onReady(r)), new Promise((r) => pair.connector.onReady(r))]);
    pair.connector.start();
    pair.agent.start();
    await s.waitIdle();
    await ready;

    const senders = plans.map((plan) => {
      const stream = (plan.fromAgent ? pair.agent : pair.connector).openStream({
        kind: 'tcp-connect',
        host: 'pos.local',
        port: 1,
      });
      plansById.set(stream.id, plan);
      const closed = collect(stream);
      void (async () => {
        for (const chunk of chunksOf(plan.payload, plan.cuts)) {
          await s.schedule(Promise.resolve());
          if (stream.state === 'closed') return;
          if (!stream.write(chunk)) await new Promise<void>((resolve) => stream.onDrain(resolve));
        }
        await s.schedule(Promise.resolve());
        if (plan.reset) stream.destroy('CANCELLED', 'test reset');
        else stream.end();
      })();
      return { stream, plan, closed };
    });
    await s.waitIdle();

    for (const { stream, plan, closed } of senders) {
      const sender = await closed;
      const receiver = await (received.get(stream.id) as Promise<Collected>);
      if (plan.reset) {
        expect(sender.error).toMatchObject({ code: 'CANCELLED', remote: false });
        expect(receiver.error).toMatchObject({ code: 'CANCELLED', remote: true });
        expect(Buffer.from(plan.payload).subarray(0, receiver.data.length).equals(receiver.data)).toBe(true);
      } else {
        expect(sender.error).toBeUndefined();
        expect(receiver.error).toBeUndefined();
        expect(receiver.data.equals(Buffer.from(plan.payload))).toBe(true);
      }
    }
    expect(maxReadable).toBeLessThanOrEqual(WINDOW);
    expect(pair.agent.stats.protocolErrors + pair.connector.stats.protocolErrors).toBe(0);
    expect(pair.agent.stats.streams + pair.connector.stats.streams).toBe(0);
    pair.agent.close();
    pair.connector.close();
  });
});
