import { adapter } from './ssi-ecr';

const GOLDEN_PING = '02660100177b226d6574686f64223a2250696e67446576696365227d2b';
const hex = (bytes: Uint8Array): string => Buffer.from(bytes).toString('hex');

describe('ssi-ecr CLI adapter', () => {
  it('decodes the golden PingDevice frame (ssi-ecr-notes.md)', () => {
    expect(adapter.decode(Buffer.from(GOLDEN_PING, 'hex'))).toEqual([{ kind: 'frame', message: { method: 'PingDevice' } }]);
  });

  it('encodes the decode shape back to the golden bytes', () => {
    expect(hex(adapter.encode({ kind: 'frame', message: { method: 'PingDevice' } }))).toBe(GOLDEN_PING);
    expect(hex(adapter.encode({ method: 'PingDevice' }))).toBe(GOLDEN_PING);
  });

  it('reports garbage, bad LRC and bad JSON without throwing, in stream order', () => {
    const badLrc = GOLDEN_PING.slice(0, -2) + '00';
    const capture = Buffer.from('ffff' + badLrc + '02660100012121' + GOLDEN_PING, 'hex');
    const entries = adapter.decode(capture) as { kind: string; error?: { code: string; reply?: string } }[];
    expect(entries.map((e) => [e.kind, e.error?.code, e.error?.reply])).toEqual([
      ['garbage', 'UNEXPECTED_BYTES', 'drop'],
      ['garbage', 'BAD_CHECKSUM', 'E02'],
      ['frame', 'BAD_JSON', 'E03'],
      ['frame', undefined, undefined],
    ]);
  });

  it('marks a capture that ends inside a frame', () => {
    expect(adapter.decode(Buffer.from(GOLDEN_PING.slice(0, 20), 'hex'))).toEqual([expect.objectContaining({ kind: 'truncated', bufferedBytes: 10 })]);
  });

  it('encodes raw DATA from dataHex (the bad-JSON frame of the notes)', () => {
    expect(hex(adapter.encode({ dataHex: '21' }))).toBe('02660100012121');
  });

  it('throws a typed error on invalid input', () => {
    expect(() => adapter.encode([1])).toThrow(expect.objectContaining({ code: 'INVALID_FIELD' }));
    expect(() => adapter.encode({ message: { method: 5 } })).toThrow(expect.objectContaining({ code: 'INVALID_FIELD' }));
    expect(() => adapter.encode({ dataHex: 'zz' })).toThrow(expect.objectContaining({ code: 'INVALID_FIELD' }));
  });
});
