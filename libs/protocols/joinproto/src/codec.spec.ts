import { decodeMessage, encodeMessage, MAX_AMOUNT } from './codec';
import { isJoinprotoError, JoinprotoError } from './errors';
import { data, hex } from './testing/frame-builder';

function decodeError(body: Uint8Array, direction: 'till->terminal' | 'terminal->till' = 'terminal->till'): JoinprotoError {
  try {
    decodeMessage(body, direction);
  } catch (error) {
    if (isJoinprotoError(error)) return error;
    throw error;
  }
  throw new Error('expected a JoinprotoError');
}

describe('decodeMessage', () => {
  it('[JP-3] an unknown command request gets the UNKNOWN COMMAND reply with its DF00 and DF01', () => {
    const error = decodeError(
      data([
        ['DF00', '73'],
        ['DF01', '019903'],
      ]),
    );
    expect(error.code).toBe('UNKNOWN_COMMAND');
    expect(error.reply).toBe('UNKNOWN COMMAND');
    expect(error.details).toMatchObject({ command: '73', id: '019903' });
  });

  it('requires DF00 unless the frame is an XX answer', () => {
    expect(decodeError(data([['DF01', '019903']])).code).toBe('MISSING_TAG');
  });

  it('requires the mandatory tags of the message, naming the tag', () => {
    const error = decodeError(
      data([
        ['DF00', '01'],
        ['DF01', '464448'],
      ]),
      'till->terminal',
    );
    expect(error).toMatchObject({ code: 'MISSING_TAG', details: { tag: 'DF05', command: '01', id: '464448' } });
    expect(error.reply).toBe('other err');
  });

  it('[JP-2-TAG] rejects a value of the wrong length or format', () => {
    expect(
      decodeError(
        data([
          ['DF00', '01'],
          ['DF01', '464448'],
          ['DF05', '1200'],
        ]),
        'till->terminal',
      ),
    ).toMatchObject({
      code: 'BAD_TAG_LENGTH',
      details: { tag: 'DF05' },
    });
    expect(
      decodeError(
        data([
          ['DF00', '01'],
          ['DF01', '464448'],
          ['DF05', '00000000001A'],
        ]),
        'till->terminal',
      ),
    ).toMatchObject({
      code: 'BAD_TAG_FORMAT',
      details: { tag: 'DF05' },
    });
    expect(
      decodeError(
        data([
          ['DF00', '91'],
          ['DF01', '559734'],
          ['DF21', 'tcp4'],
          ['DF22', 'h:1'],
        ]),
      ).code,
    ).toBe('BAD_TAG_FORMAT');
    expect(
      decodeError(
        data([
          ['DF00', '01'],
          ['DF01', '464448'],
          ['DF16', 'X1'],
        ]),
      ).code,
    ).toBe('BAD_TAG_FORMAT');
  });

  it('rejects a repeated tag other than DF24', () => {
    expect(
      decodeError(
        data([
          ['DF00', '99'],
          ['DF01', '931154'],
          ['DF01', '931155'],
        ]),
      ).code,
    ).toBe('DUPLICATE_TAG');
  });

  it('rejects a truncated TLV in DATA', () => {
    expect(decodeError(Buffer.from('DF000003393939DF01', 'hex')).code).toBe('TRUNCATED_TLV');
  });

  it('requires data or an error in a relay answer', () => {
    expect(
      decodeError(
        data([
          ['DF00', '93'],
          ['DF01', '203725'],
        ]),
        'till->terminal',
      ).code,
    ).toBe('MISSING_TAG');
  });

  it('masks a full PAN sent by a terminal to first 6 / last 4', () => {
    const message = decodeMessage(
      data([
        ['DF00', '01'],
        ['DF01', '464448'],
        ['DF04', '5449661234562078'],
        ['DF16', '000'],
      ]),
      'terminal->till',
    );
    expect(message).toMatchObject({ maskedPan: '544966******2078' });
    expect(JSON.stringify(message)).not.toContain('123456');
  });

  it('ignores tags outside the message shape (tolerant reader) but still validates known ones', () => {
    const extra = data([
      ['DF00', '99'],
      ['DF01', '931154'],
      ['DF30', Uint8Array.of(1, 2)],
    ]);
    expect(decodeMessage(extra, 'terminal->till')).toEqual({ type: 'EchoRequest', id: '931154' });
    expect(
      decodeError(
        data([
          ['DF00', '99'],
          ['DF01', '931154'],
          ['DF05', '1'],
        ]),
      ).code,
    ).toBe('BAD_TAG_LENGTH');
  });
});

describe('encodeMessage', () => {
  it('emits tags in ascending order with amounts as 12 digits', () => {
    const body = encodeMessage({ type: 'PurchaseRequest', id: '000042', amount: 1250, department: '01', cashback: 300 });
    expect(hex(body)).toBe(
      hex(
        data([
          ['DF00', '01'],
          ['DF01', '000042'],
          ['DF05', '000000001250'],
          ['DF0B', '000000000300'],
          ['DF0C', '01'],
        ]),
      ),
    );
  });

  it('rejects amounts that are not integer minor units within 12 digits', () => {
    for (const amount of [-1, 1.5, MAX_AMOUNT + 1, Number.NaN]) {
      expect(() => encodeMessage({ type: 'PreauthRequest', id: '000001', amount })).toThrow(expect.objectContaining({ code: 'INVALID_MESSAGE' }));
    }
  });

  it('validates string values against the tag table', () => {
    expect(() => encodeMessage({ type: 'CancelRequest', id: '000001', rrn: '12345' })).toThrow(
      expect.objectContaining({ code: 'BAD_TAG_LENGTH', details: { tag: 'DF2B' } }),
    );
    expect(() => encodeMessage({ type: 'EchoRequest', id: 'ЭХО123' })).toThrow(expect.objectContaining({ code: 'BAD_TAG_FORMAT', details: { tag: 'DF01' } }));
  });

  it('splits DF24 data into chunks of at most 65 535 bytes, concatenated again on decode', () => {
    const payload = new Uint8Array(70_000).map((_, i) => i % 251);
    const body = encodeMessage({ type: 'ReceiveDataResponse', id: '203725', data: payload });
    const message = decodeMessage(body, 'till->terminal');
    expect(message).toEqual({ type: 'ReceiveDataResponse', id: '203725', data: payload });
    expect(body.length).toBe(4 + 2 + 4 + 6 + 2 * 4 + 70_000);
  });

  it('refuses a required field that is missing', () => {
    expect(() => encodeMessage({ type: 'OpenConnectionResponse', id: '559734' })).toThrow(expect.objectContaining({ code: 'MISSING_TAG' }));
  });
});
