/**
 * JPAY packets/s through FrameDecoder + safe XML parse + typed decode, against a baseline measured in
 * the same run: a bare length-prefix split + JSON.parse of an equivalent JSON payload. The cases run in
 * alternating rounds and each keeps its best round, so a busy machine skews both alike.
 *   node scripts/run-ts.mjs bench/jpay/packets.bench.ts   (~12 s; BENCH_QUICK=1: ~3 s)
 * Goal (issue 19): full path ≥ 0.3× the baseline.
 */
import { decodeResponse, FrameDecoder, parseXmlBytes } from '@payorch/jpay';

import { QUICK, reportRow } from '../support/report';

/**
 * What the profile (node --cpu-prof) taught: before issue 19, 60 % of the time was fast-xml-parser
 * (a validation pass, then a parse into its own ordered tree that we converted again) and 14 % the
 * receipt's compaction passes; now one strict reader builds the elements directly, the receipt's fields
 * are named stores and frames are views of a shared slab, so the time is spread over reading the XML and
 * the UTF-8 decode.
 */
const LESSON =
  'profile: was 60% fast-xml-parser (validate + ordered tree + conversion), 14% receipt compaction, then a backing store per frame; now one strict pass builds the elements, receipt fields are named stores, frames come from a slab';

const RECEIPT_XML = `<transaction><status>ok</status><receipt><header><line>Merchant Name</line><line>Merchant Address</line></header><tid>1000000001</tid><mid>012345678912345</mid><seq>000009</seq><type>purchase</type><state>active</state><tstatus>approved</tstatus><amount-authorized>000000012300</amount-authorized><currency>643</currency><aid>A0000000031010</aid><appname>VISA Classic</appname><pan>************1234</pan><aed>200331</aed><rrn>120157645346</rrn><resp-code>000</resp-code><auth-number>AFK045</auth-number><datetime>180328120133</datetime><tsi>EF00</tsi><tvr>2040300000</tvr><bank-name>БАНК</bank-name><footer><line>ОДОБРЕНО</line></footer></receipt><error-stack/></transaction>`;
const RECEIPT_JSON = JSON.stringify({
  transaction: {
    status: 'ok',
    receipt: {
      header: ['Merchant Name', 'Merchant Address'],
      tid: '1000000001',
      mid: '012345678912345',
      seq: '000009',
      type: 'purchase',
      state: 'active',
      tstatus: 'approved',
      'amount-authorized': '000000012300',
      currency: '643',
      aid: 'A0000000031010',
      appname: 'VISA Classic',
      pan: '************1234',
      aed: '200331',
      rrn: '120157645346',
      'resp-code': '000',
      'auth-number': 'AFK045',
      datetime: '180328120133',
      tsi: 'EF00',
      tvr: '2040300000',
      'bank-name': 'БАНК',
      footer: ['ОДОБРЕНО'],
    },
  },
});
const PACKETS_PER_STREAM = 64;
const ROUNDS = 3;
const ROUND_MS = QUICK ? 600 : 1300;

function stream(payload: string): Buffer {
  const body = Buffer.from(payload, 'utf8');
  const header = Buffer.alloc(4);
  header.writeUInt32BE(body.length, 0);
  return Buffer.concat(Array.from({ length: PACKETS_PER_STREAM }, () => Buffer.concat([header, body])));
}

/** Feeds the stream in 1400-byte chunks (a TCP segment) and returns the packets decoded. */
function chunks(bytes: Buffer): Buffer[] {
  const out: Buffer[] = [];
  for (let i = 0; i < bytes.length; i += 1400) out.push(bytes.subarray(i, i + 1400));
  return out;
}

/** Packets/s of one round of `runOnce` over the stream, for ROUND_MS. */
function round(segments: Buffer[], runOnce: (segments: Buffer[]) => number): number {
  let packets = 0;
  const deadline = process.hrtime.bigint() + BigInt(ROUND_MS * 1e6);
  const start = process.hrtime.bigint();
  while (process.hrtime.bigint() < deadline) packets += runOnce(segments);
  return packets / (Number(process.hrtime.bigint() - start) / 1e9);
}

const print = (name: string, rate: number) => console.log(`${name.padEnd(44)} ${Math.round(rate).toLocaleString('en-US').padStart(12)} packets/s`);

const jpaySegments = chunks(stream(RECEIPT_XML));
const jsonSegments = chunks(stream(RECEIPT_JSON));

function jpayRun(segments: Buffer[]): number {
  const decoder = new FrameDecoder({ maxFrameBytes: 64 * 1024 });
  let n = 0;
  for (const segment of segments) {
    for (const event of decoder.push(segment)) {
      if (event.kind === 'frame') {
        decodeResponse('transaction', parseXmlBytes(event.frame));
        n++;
      }
    }
  }
  return n;
}

function baselineRun(segments: Buffer[]): number {
  let pending: Buffer = Buffer.alloc(0);
  let n = 0;
  for (const segment of segments) {
    pending = pending.length === 0 ? segment : Buffer.concat([pending, segment]);
    while (pending.length >= 4) {
      const length = pending.readUInt32BE(0);
      if (pending.length < 4 + length) break;
      JSON.parse(pending.toString('utf8', 4, 4 + length));
      pending = pending.subarray(4 + length);
      n++;
    }
  }
  return n;
}

function framerOnlyRun(segments: Buffer[]): number {
  const decoder = new FrameDecoder({ maxFrameBytes: 64 * 1024 });
  let n = 0;
  for (const segment of segments) for (const event of decoder.push(segment)) if (event.kind === 'frame') n++;
  return n;
}

if (jpayRun(jpaySegments) !== PACKETS_PER_STREAM || baselineRun(jsonSegments) !== PACKETS_PER_STREAM) {
  throw new Error('bench setup decodes the wrong number of packets');
}
console.log(`JPAY transaction response, ${Buffer.byteLength(RECEIPT_XML)} bytes XML / ${Buffer.byteLength(RECEIPT_JSON)} bytes JSON, 1400-byte segments`);
const best = { baseline: 0, framer: 0, full: 0 };
for (let i = 0; i < ROUNDS; i++) {
  best.baseline = Math.max(best.baseline, round(jsonSegments, baselineRun));
  best.framer = Math.max(best.framer, round(jpaySegments, framerOnlyRun));
  best.full = Math.max(best.full, round(jpaySegments, jpayRun));
}
print('baseline: length split + JSON.parse', best.baseline);
print('FrameDecoder alone', best.framer);
print('FrameDecoder + safe XML parse + typed decode', best.full);
console.log(
  `ratio framer+parser / baseline: ${(best.full / best.baseline).toFixed(3)}  (framer alone / baseline: ${(best.framer / best.baseline).toFixed(2)})`,
);
console.log(LESSON);
reportRow({
  bench: 'jpay: framer + XML + typed decode',
  measured: best.full,
  baseline: best.baseline,
  unit: 'packets/s',
  ratio: best.full / best.baseline,
  goal: { on: 'ratio', op: '>=', value: 0.3 },
  note: LESSON,
});
