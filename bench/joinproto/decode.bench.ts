/**
 * Joinproto decode throughput vs a plain Buffer.indexOf/copy baseline, measured in the same run.
 *   node scripts/run-ts.mjs bench/joinproto/decode.bench.ts   (~10 s; BENCH_QUICK=1: ~3 s)
 * Stream: a realistic till↔terminal mix (approved purchases with receipts, declines, echoes, 4 KiB relay
 * chunks), fed in 64 KiB socket-sized chunks. Goals (issue 19): FrameDecoder ≥ 0.5×, + decodeMessage ≥ 0.25×.
 */
import { decodeMessage, encodeMessageFrame, FrameDecoder, type Message } from '@payorch/joinproto';

import { QUICK, reportRow } from '../support/report';

const CHUNK_BYTES = 64 * 1024;
const ROUND_MS = QUICK ? 700 : 1_500;
const ROUNDS = 3;

/** What the profile (node --cpu-prof) taught, kept next to the figures. */
const LESSONS = {
  framer: 'profile: a new backing store per frame (~30%) and the byte-wise LRC dominated; frames now come from a shared slab, the LRC XORs 32-bit words',
  decode:
    'profile: TLV objects, a Map of value lists, hex tag strings and a latin1 string + regex per tag; now one walk into reused scratch arrays, checks on the bytes, one latin1 decode per short DATA, binary values are views',
};

function realisticStream(targetBytes: number): { stream: Buffer; frames: number } {
  const receipt = new Uint8Array(Buffer.from('ЧЕК ПОКУПКИ\nСУММА 15.00\nОДОБРЕНО\n'.repeat(6), 'utf8'));
  const relay = new Uint8Array(4096).map((_, i) => (i * 31) % 256);
  const templates: Message[] = [
    {
      type: 'PurchaseResponse',
      id: '464448',
      maskedPan: '544966******2078',
      amount: 1500,
      authCode: '614597',
      receipt,
      receiptNo: '000005',
      shiftNo: '000001',
      merchantId: '111122223333444',
      terminalId: 'AB040000',
      responseCode: '000',
      time: '183734',
      message: 'Successful transaction',
      rrn: '000000614597',
      date: '180122',
    },
    { type: 'PurchaseResponse', id: '464449', maskedPan: '521324******4018', amount: 1, responseCode: '904', message: 'Message Not within Standard' },
    { type: 'EchoRequest', id: '931154' },
    { type: 'SendDataRequest', id: '100753', connectionId: '2546035541', data: relay },
    { type: 'ReceiveDataRequest', id: '203725', connectionId: '2546035541', maxBytes: 4096 },
  ];
  const encoded = templates.map((m) => Buffer.from(encodeMessageFrame(m)));
  const parts: Buffer[] = [];
  let size = 0;
  for (let i = 0; size < targetBytes; i++) {
    const frame = encoded[i % encoded.length];
    parts.push(frame);
    size += frame.length;
  }
  return { stream: Buffer.concat(parts), frames: parts.length };
}

/**
 * Baseline: the least a correct splitter must do on a whole buffer — find STX, skip TLVs by length to ETX
 * (binary values may hold 0x03), copy DATA out. No LRC check, no bounds, no chunk boundaries.
 */
function baseline(stream: Buffer): number {
  let frames = 0;
  let at = 0;
  while ((at = stream.indexOf(0x02, at)) >= 0) {
    let cursor = at + 1;
    while (stream[cursor] !== 0x03) cursor += 4 + stream.readUInt16BE(cursor + 2);
    const data = Buffer.allocUnsafe(cursor - at - 1);
    stream.copy(data, 0, at + 1, cursor);
    frames += data.length > 0 ? 1 : 0;
    at = cursor + 2;
  }
  return frames;
}

function framing(stream: Buffer): number {
  const decoder = new FrameDecoder({ maxFrameBytes: 128 * 1024 });
  let frames = 0;
  for (let offset = 0; offset < stream.length; offset += CHUNK_BYTES) {
    for (const event of decoder.push(stream.subarray(offset, offset + CHUNK_BYTES))) if (event.kind === 'frame') frames += 1;
  }
  return frames;
}

function framingAndMessages(stream: Buffer): number {
  const decoder = new FrameDecoder({ maxFrameBytes: 128 * 1024 });
  let frames = 0;
  for (let offset = 0; offset < stream.length; offset += CHUNK_BYTES) {
    for (const event of decoder.push(stream.subarray(offset, offset + CHUNK_BYTES))) {
      if (event.kind === 'frame') {
        decodeMessage(event.frame, 'terminal->till');
        frames += 1;
      }
    }
  }
  return frames;
}

function measure(name: string, run: (stream: Buffer) => number, stream: Buffer, expectedFrames: number) {
  run(stream); // warm-up
  let bytes = 0;
  let frames = 0;
  const start = process.hrtime.bigint();
  let elapsedMs = 0;
  while (elapsedMs < ROUND_MS) {
    const decoded = run(stream);
    if (decoded !== expectedFrames) throw new Error(`${name}: decoded ${decoded} frames, expected ${expectedFrames}`);
    bytes += stream.length;
    frames += decoded;
    elapsedMs = Number(process.hrtime.bigint() - start) / 1e6;
  }
  const seconds = elapsedMs / 1000;
  return { name, mbPerSecond: bytes / seconds / 1e6, framesPerSecond: frames / seconds };
}

function main(): void {
  const { stream, frames } = realisticStream((QUICK ? 2 : 8) * 1024 * 1024);
  console.log(`stream: ${(stream.length / 1e6).toFixed(1)} MB, ${frames} frames, fed in ${CHUNK_BYTES / 1024} KiB chunks`);
  const results: ReturnType<typeof measure>[] = [];
  for (let round = 0; round < ROUNDS; round++) {
    results.push(measure('baseline indexOf/copy', baseline, stream, frames));
    results.push(measure('FrameDecoder', framing, stream, frames));
    results.push(measure('FrameDecoder + decodeMessage', framingAndMessages, stream, frames));
  }
  const best = (name: string) => results.filter((r) => r.name === name).sort((a, b) => b.mbPerSecond - a.mbPerSecond)[0];
  const base = best('baseline indexOf/copy');
  for (const name of ['baseline indexOf/copy', 'FrameDecoder', 'FrameDecoder + decodeMessage']) {
    const r = best(name);
    console.log(
      `${name.padEnd(30)} ${r.mbPerSecond.toFixed(1).padStart(8)} MB/s ${Math.round(r.framesPerSecond).toString().padStart(10)} frames/s` +
        `   ratio vs baseline ${(r.mbPerSecond / base.mbPerSecond).toFixed(2)}`,
    );
  }
  const framer = best('FrameDecoder');
  const full = best('FrameDecoder + decodeMessage');
  console.log(LESSONS.framer);
  console.log(LESSONS.decode);
  reportRow({
    bench: 'joinproto: FrameDecoder',
    measured: framer.mbPerSecond,
    baseline: base.mbPerSecond,
    unit: 'MB/s',
    ratio: framer.mbPerSecond / base.mbPerSecond,
    goal: { on: 'ratio', op: '>=', value: 0.5 },
    note: LESSONS.framer,
  });
  reportRow({
    bench: 'joinproto: FrameDecoder + decodeMessage',
    measured: full.mbPerSecond,
    baseline: base.mbPerSecond,
    unit: 'MB/s',
    ratio: full.mbPerSecond / base.mbPerSecond,
    goal: { on: 'ratio', op: '>=', value: 0.25 },
    note: LESSONS.decode,
  });
}

main();
