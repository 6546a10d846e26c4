import { adapter } from './jpay';

/** Independent §4 framing: 4-byte big-endian length + UTF-8 XML. */
function frameOf(xml: string): Uint8Array {
  const payload = Buffer.from(xml, 'utf8');
  const header = Buffer.alloc(4);
  header.writeUInt32BE(payload.length, 0);
  return Buffer.concat([header, payload]);
}
const streamOf = (...parts: Uint8Array[]): Uint8Array => Buffer.concat(parts);

describe('jpay CLI adapter', () => {
  it('decodes a capture of command, messages, replies and response in stream order', () => {
    const capture = streamOf(
      frameOf('<transaction><type>purchase</type><amount>000000012300</amount></transaction>'),
      frameOf('<keepalive/>'),
      frameOf('<keepalive><status>ok</status></keepalive>'),
      frameOf('<display><code>03</code><msg>ОДОБРЕНО</msg><status>02</status></display>'),
      frameOf('<display><status>ok</status></display>'),
      frameOf('<transaction><status>ok</status><receipt><tstatus>approved</tstatus></receipt></transaction>'),
    );
    expect(adapter.decode(capture)).toEqual([
      { kind: 'command', packet: { command: 'transaction', type: 'purchase', amount: 12300 } },
      { kind: 'message', packet: { type: 'keepalive', root: 'keepalive' } },
      { kind: 'reply', packet: { type: 'status', root: 'keepalive', status: 'ok' } },
      { kind: 'message', packet: { type: 'display', code: '03', msg: 'ОДОБРЕНО', status: '02' } },
      { kind: 'reply', packet: { type: 'status', root: 'display', status: 'ok' } },
      {
        kind: 'response',
        packet: expect.objectContaining({
          command: 'transaction',
          status: 'ok',
          receipt: expect.objectContaining({ tstatus: 'approved' }),
        }),
      },
    ]);
  });

  it('redacts manual-entry PAN and passwords', () => {
    const [entry] = adapter.decode(
      frameOf(
        '<transaction><type>purchase</type><amount>000000000100</amount><pan>4000000010000001</pan><expired>2812</expired><password>12345678</password></transaction>',
      ),
    );
    expect(JSON.stringify(entry)).not.toMatch(/4000000010000001|12345678/);
    expect(entry).toMatchObject({
      packet: { manualEntry: { pan: '400000******0001', password: '[redacted]' } },
    });
  });

  it('reports garbage, malformed XML, encrypted and truncated packets without throwing', () => {
    const entries = adapter.decode(
      streamOf(Uint8Array.of(0xff, 0xfe), frameOf('<a><b></a>'), frameOf('<login><encrypted>AAAA</encrypted></login>'), frameOf('<keepalive/>').subarray(0, 6)),
    );
    expect(entries).toEqual([
      expect.objectContaining({
        kind: 'garbage',
        error: expect.objectContaining({ code: 'FRAME_TOO_LARGE' }),
      }),
      expect.objectContaining({
        kind: 'frame',
        error: expect.objectContaining({ code: 'XML_MALFORMED' }),
      }),
      { kind: 'encrypted', root: 'login', attrs: {} },
      expect.objectContaining({ kind: 'truncated', bufferedBytes: 6 }),
    ]);
  });

  it('encodes JSON into a frame that decodes back to the same packet', () => {
    const json = {
      kind: 'command',
      packet: { command: 'report', password: '12345678', reportType: 'full' },
    };
    expect(Buffer.from(adapter.encode(json))).toEqual(Buffer.from(frameOf('<report><password>12345678</password><report-type>full</report-type></report>')));
    const reply = { kind: 'reply', packet: { type: 'smartcard', command: 'next' } };
    expect(adapter.decode(adapter.encode(reply))).toEqual([reply]);
  });

  it('throws a typed error on invalid JSON', () => {
    expect(() => adapter.encode({ kind: 'nope' })).toThrow(expect.objectContaining({ code: 'INVALID_ARGUMENT' }));
    expect(() => adapter.encode({ kind: 'command', packet: { command: 'transaction', type: 'purchase' } })).toThrow(
      expect.objectContaining({ code: 'INVALID_ARGUMENT', details: { field: 'amount' } }),
    );
  });
});
