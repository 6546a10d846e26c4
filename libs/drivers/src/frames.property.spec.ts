import { fc, test } from '@fast-check/jest';

import * as joinproto from '@payorch/joinproto';
import * as jpay from '@payorch/jpay';
import { luhnValid } from '@payorch/logging';
import * as ssi from '@payorch/ssi-ecr';

import { FrameTap, MAX_MASKED_FRAME_CHARS } from './frames';
import type { DriverProtocol, ExecuteHooks, OperationFrame } from './types';

/** A Luhn-valid card number of `length` digits starting with `prefix` (what a real card looks like). */
function luhnPan(prefix: string, body: string, length: number): string {
  const partial = (prefix + body).slice(0, length - 1).padEnd(length - 1, '0');
  for (let check = 0; check <= 9; check++) if (luhnValid(partial + check)) return partial + check;
  throw new Error('unreachable: one check digit always fits');
}

const panArb = fc
  .tuple(fc.constantFrom('4', '51', '2200', '6011', '37'), fc.stringMatching(/^\d{18}$/), fc.integer({ min: 13, max: 19 }))
  .map(([prefix, body, length]) => luhnPan(prefix, body, length));

const PIN_BLOCK = '041234FFFFFFFFFF';
const KEY_MATERIAL = '0123456789ABCDEFFEDCBA9876543210';
const PASSWORD = '31415926';

/** Every Luhn-valid 13–19 digit run of `text`, and of the bytes any even-length hex run in it stands for. */
function fullPans(text: string): string[] {
  const decoded = (text.match(/[0-9A-Fa-f]{26,}/g) ?? []).map((hex) => Buffer.from(hex.slice(0, hex.length - (hex.length % 2)), 'hex').toString('latin1'));
  const found: string[] = [];
  for (const source of [text, ...decoded]) {
    for (const run of source.match(/\d{13,}/g) ?? []) {
      for (let length = 13; length <= 19; length++) {
        for (let start = 0; start + length <= run.length; start++) {
          const candidate = run.slice(start, start + length);
          if (luhnValid(candidate)) found.push(candidate);
        }
      }
    }
  }
  return found;
}

function secretsIn(frames: readonly OperationFrame[], pan: string): string[] {
  const text = frames.map((f) => `${f.summary}\n${f.masked}`).join('\n');
  return [
    ...fullPans(text),
    ...[pan, PIN_BLOCK, KEY_MATERIAL, PASSWORD].filter((secret) => text.toUpperCase().includes(secret.toUpperCase())),
    ...(text.includes(Buffer.from(PIN_BLOCK, 'hex').toString('latin1')) ? ['PIN block bytes'] : []),
  ];
}

/** Feeds `outgoing` through the tap's write and `incoming` to its data listener, in the given chunks. */
function tapped(protocol: DriverProtocol, outgoing: Uint8Array, incoming: Uint8Array, cuts: number[]): OperationFrame[] {
  const frames: OperationFrame[] = [];
  const tap = new FrameTap(protocol);
  let deliver: (chunk: Uint8Array) => void = () => undefined;
  const transport = tap.wrap({
    write: () => undefined,
    onData: (listener) => (deliver = listener),
    onClose: () => undefined,
    close: () => undefined,
  });
  const hooks: ExecuteHooks = { beforeSend: async () => undefined, onProgress: () => undefined, onFrame: (frame) => frames.push(frame) };
  const detach = tap.attach(hooks);
  for (const chunk of split(outgoing, cuts)) transport.write(chunk);
  for (const chunk of split(incoming, cuts)) deliver(chunk);
  detach();
  return frames;
}

function split(bytes: Uint8Array, cuts: readonly number[]): Uint8Array[] {
  const points = [...new Set(cuts.map((c) => c % (bytes.length + 1)))].sort((a, b) => a - b);
  const out: Uint8Array[] = [];
  let from = 0;
  for (const point of [...points, bytes.length]) {
    if (point > from) out.push(bytes.subarray(from, point));
    from = Math.max(from, point);
  }
  return out;
}

const concat = (...parts: Uint8Array[]): Uint8Array => new Uint8Array(Buffer.concat(parts));
const ascii = (text: string): Uint8Array => new Uint8Array(Buffer.from(text, 'latin1'));
const cutsArb = fc.array(fc.nat(4000), { maxLength: 12 });

describe(FrameTap.name, () => {
  test.prop([panArb, cutsArb])('Joinproto: a purchase whose terminal sends the full PAN, track and PIN block journals none of them', (pan, cuts) => {
    const request = joinproto.encodeMessageFrame({ type: 'PurchaseRequest', id: '000123', amount: 1500 } as never);
    const tlvs = (entries: [string, Uint8Array][]) => joinproto.encodeFrame(joinproto.encodeTlvs(entries.map(([tag, value]) => ({ tag, value }))));
    const answer = tlvs([
      ['DF00', ascii('01')],
      ['DF01', ascii('000123')],
      ['DF04', ascii(pan)],
      ['DF05', ascii('000000001500')],
      ['DF16', ascii('000')],
      ['DF0A', ascii(`CARD ${pan}\nTRACK ;${pan}=2512101?`)],
    ]);
    const relay = tlvs([
      ['DF00', ascii('92')],
      ['DF23', ascii('1')],
      ['DF24', concat(ascii(`${pan}D2512101`), Buffer.from(PIN_BLOCK, 'hex'))],
    ]);
    const frames = tapped('JOINPROTO', request, concat(relay, answer), cuts);
    expect(frames.map((f) => [f.direction, f.summary])).toEqual([
      ['out', 'Purchase (01)'],
      ['in', expect.stringContaining('(92)')],
      ['in', 'Purchase (01)'],
    ]);
    expect(frames[2]!.masked).toContain(`DF04=${joinproto.maskPan(pan)}`);
    expect(secretsIn(frames, pan)).toEqual([]);
  });

  test.prop([panArb, cutsArb])('JPAY: manual entry, EMV card tags and a receipt PAN are masked, passwords and keys redacted', (pan, cuts) => {
    const packet = (xml: string) => jpay.encodeFrame(ascii(xml));
    const command = jpay.encodeFrame(
      jpay.writeXmlBytes(
        jpay.encodeCommand({
          command: 'transaction',
          type: 'purchase',
          amount: 1500,
          manualEntry: { pan, expiry: '2512', password: PASSWORD, cardholder: 'IVAN PETROV' },
        }),
      ),
    );
    const login = jpay.encodeFrame(jpay.writeXmlBytes(jpay.encodeCommand({ command: 'login', password: PASSWORD, clientHandshake: KEY_MATERIAL })));
    const incoming = concat(
      packet(
        `<dex><kernel-tags><tag name="5A" value="${pan}"/><tag name="57" value="${pan}D2512101"/><tag name="9F02" value="000000001500"/></kernel-tags></dex>`,
      ),
      packet(`<sethostkey><material>${KEY_MATERIAL}</material><status>ok</status></sethostkey>`),
      packet(
        `<transaction><status>ok</status><receipt><pan>${pan}</pan><plain-text-pan>${pan}</plain-text-pan><pinblock>${PIN_BLOCK}</pinblock></receipt></transaction>`,
      ),
      packet(`<transaction><encrypted>${KEY_MATERIAL}</encrypted></transaction>`),
    );
    const frames = tapped('JPAY', concat(login, command), incoming, cuts);
    expect(frames.map((f) => [f.direction, f.summary])).toEqual([
      ['out', 'login'],
      ['out', 'transaction'],
      ['in', 'dex'],
      ['in', 'sethostkey'],
      ['in', 'transaction'],
      ['in', 'transaction (encrypted)'],
    ]);
    expect(frames[4]!.masked).toContain(jpay.maskPan(pan));
    expect(secretsIn(frames, pan)).toEqual([]);
  });

  test.prop([panArb, cutsArb])('SSI ECR: PAN masked, track, PIN block, expiry and cardholder redacted', (pan, cuts) => {
    const request = ssi.encodeMessage({ method: 'Purchase', params: { transAmount: 1500, currencyCode: '643' } });
    const answer = ssi.encodeMessage({
      method: 'GetLastResult',
      result: { pan, cardPan: pan, track2: `${pan}=2512101`, pinBlock: PIN_BLOCK, expiryDate: '2512', cardholderName: 'IVAN PETROV', workKey: KEY_MATERIAL },
    });
    const frames = tapped('SSI_ECR', request, answer, cuts);
    expect(frames.map((f) => [f.direction, f.summary])).toEqual([
      ['out', 'Purchase'],
      ['in', 'GetLastResult'],
    ]);
    expect(frames[1]!.masked).toContain(ssi.maskPan(pan));
    expect(secretsIn(frames, pan)).toEqual([]);
  });

  it('cuts a long frame to MAX_MASKED_FRAME_CHARS and says so', () => {
    const frames = tapped('SSI_ECR', ssi.encodeMessage({ method: 'PrintText', params: { text: 'x'.repeat(5000) } }), new Uint8Array(), []);
    expect(frames).toHaveLength(1);
    expect(frames[0]!.masked.length).toBeLessThan(MAX_MASKED_FRAME_CHARS + 80);
    expect(frames[0]!.masked).toMatch(/more characters not kept\]$/);
  });

  it('decodes nothing and reports nothing without an onFrame hook', () => {
    const tap = new FrameTap('SSI_ECR');
    const written: Uint8Array[] = [];
    const transport = tap.wrap({ write: (b) => written.push(b), onData: () => undefined, onClose: () => undefined, close: () => undefined });
    const detach = tap.attach({ beforeSend: async () => undefined, onProgress: () => undefined });
    const bytes = ssi.encodeMessage({ method: 'GetStatus' });
    transport.write(bytes);
    detach();
    expect(written).toEqual([bytes]);
  });
});
