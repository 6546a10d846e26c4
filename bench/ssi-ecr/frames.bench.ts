/**
 * SSI ECR framing throughput: frames/s through FrameDecoder + JSON parse, against a baseline of plain
 * JSON.parse over the same payloads, measured in the same run and reported as a ratio (framing overhead).
 *   npx tsx bench/ssi-ecr/frames.bench.ts
 * Bounded to ~10 s: each of 2 rounds runs both cases for ~2.5 s.
 */
import { FrameDecoder, encodeMessage, parseJsonData, type JsonObject } from '@payorch/ssi-ecr';

import { QUICK, reportRow } from '../support/report';

const ROUND_MS = QUICK ? 400 : 2500;
const ROUNDS = 2;
const CHUNK = 1460; // one TCP segment

const messages: JsonObject[] = [
  { method: 'GetStatus' },
  { method: 'GetStatus', error: false, errorCode: '', errorDescription: '', status: 'S02', params: {} },
  { method: 'Purchase', params: { transAmount: '24500', transCurrency: '980', merchantId: '000000060007176' } },
  {
    method: 'GetLastResult',
    error: false,
    errorCode: '',
    errorDescription: '',
    params: {
      originalTrnName: 'Purchase',
      transAmount: '24500',
      authCode: '123456',
      date: '08/11/2023',
      time: '11:34:14',
      invoiceNum: '999999',
      bankName: 'Bank Acquirer',
      merchantId: 'MERCHANT1',
      pan: '4725XXXXXXXX1627',
      responseCode: '0000',
      rrn: '9999999999999',
      transactionResult: 'APPROVED_ONLINE',
      terminalId: 'T0000001',
      posEntryMode: 'CONTACTLESS',
    },
  },
];
const BATCH = 256;
const payloads = Array.from({ length: BATCH }, (_, i) => messages[i % messages.length]);
const texts = payloads.map((m) => JSON.stringify(m));
const stream = Buffer.concat(payloads.map((m) => encodeMessage(m)));
const chunks: Buffer[] = [];
for (let i = 0; i < stream.length; i += CHUNK) chunks.push(stream.subarray(i, i + CHUNK));

function measure(run: () => number): number {
  let frames = 0;
  const start = process.hrtime.bigint();
  const end = start + BigInt(ROUND_MS) * 1_000_000n;
  let now = start;
  while (now < end) {
    frames += run();
    now = process.hrtime.bigint();
  }
  return frames / (Number(now - start) / 1e9);
}

const decoder = new FrameDecoder();
const framerAndJson = (): number => {
  let n = 0;
  for (const chunk of chunks) {
    for (const event of decoder.push(chunk)) {
      if (event.kind === 'frame') {
        parseJsonData(event.frame.data);
        n++;
      }
    }
  }
  return n;
};
const baseline = (): number => {
  for (const text of texts) JSON.parse(text);
  return texts.length;
};

console.log(`ssi-ecr frames bench: ${BATCH} frames/batch, ${stream.length} bytes, ${CHUNK}-byte chunks, ${ROUNDS}×${ROUND_MS} ms per case`);
const results: { framer: number; base: number }[] = [];
for (let round = 1; round <= ROUNDS; round++) {
  const framer = measure(framerAndJson);
  const base = measure(baseline);
  results.push({ framer, base });
  console.log(
    `round ${round}: framer+JSON ${Math.round(framer).toLocaleString('en')} frames/s, JSON.parse baseline ${Math.round(base).toLocaleString('en')} frames/s, ratio ${(framer / base).toFixed(3)}`,
  );
}
const best = (key: 'framer' | 'base'): number => Math.max(...results.map((r) => r[key]));
console.log(
  `best: framer+JSON ${Math.round(best('framer')).toLocaleString('en')} frames/s; baseline ${Math.round(best('base')).toLocaleString('en')} frames/s; ratio framer/baseline = ${(best('framer') / best('base')).toFixed(3)}`,
);
reportRow({
  bench: 'ssi-ecr: FrameDecoder + JSON parse',
  measured: best('framer'),
  baseline: best('base'),
  unit: 'frames/s',
  ratio: best('framer') / best('base'),
});
