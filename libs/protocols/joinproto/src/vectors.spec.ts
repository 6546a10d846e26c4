import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';

import { decodeMessage, encodeMessage } from './codec';
import { FrameDecoder, encodeFrame } from './framing';
import { data, frame, fromHex, hex, vectorValue } from './testing/frame-builder';
import { JOINPROTO_VECTORS } from './testing/vectors';
import { decodeTlvs, encodeTlvs } from './tlv';

const cases = JOINPROTO_VECTORS.map((vector, index) => [`#${index} ${vector.section} (${vector.direction})`, vector] as const);
const wholeAndByteByByte = (bytes: Uint8Array, decoder: FrameDecoder) => {
  const whole = decoder.push(bytes);
  const single = [...bytes].flatMap((byte) => decoder.push(Uint8Array.of(byte)));
  return { whole, single };
};

describe('Joinproto spec vectors', () => {
  it('has the 86 examples of the spec, identical to the shared copy', () => {
    expect(JOINPROTO_VECTORS).toHaveLength(86);
    const shared = join(__dirname, '../../../../../shared/specs/joinproto-vectors.json');
    if (existsSync(shared)) {
      expect(JSON.parse(readFileSync(shared, 'utf8'))).toEqual(JOINPROTO_VECTORS);
    }
  });

  describe.each(cases)('%s', (_name, vector) => {
    it('the independent builder reproduces data_hex, lrc and frame_hex from the tag table', () => {
      const body = data(vector.tags);
      expect(hex(body)).toBe(vector.data_hex);
      expect(hex(frame(body))).toBe(vector.frame_hex);
      expect(hex(frame(body)).slice(-2)).toBe(vector.lrc);
    });

    it('decodes to the given tags and re-encodes byte for byte (TLV layer)', () => {
      const tlvs = decodeTlvs(fromHex(vector.data_hex));
      expect(tlvs.map((t) => [t.tag, hex(t.value)])).toEqual(vector.tags.map(([tag, value]) => [tag, hex(vectorValue(value))]));
      expect(hex(encodeTlvs(tlvs))).toBe(vector.data_hex);
      expect(hex(encodeFrame(encodeTlvs(tlvs)))).toBe(vector.frame_hex);
    });

    it('decodes to a typed message that re-encodes byte for byte', () => {
      const message = decodeMessage(fromHex(vector.data_hex), vector.direction);
      const repeatedDf24 = vector.tags.filter(([tag]) => tag === 'DF24');
      const chunk = repeatedDf24.length > 1 ? vectorValue(repeatedDf24[0][1]).length : undefined;
      expect(hex(encodeMessage(message, { dataChunkBytes: chunk }))).toBe(vector.data_hex);
    });

    it('is framed identically whether fed whole or byte by byte', () => {
      const { whole, single } = wholeAndByteByByte(fromHex(vector.frame_hex), new FrameDecoder({ maxFrameBytes: 4096 }));
      const expected = [{ kind: 'frame', frame: fromHex(vector.data_hex) }];
      expect(whole).toEqual(expected);
      expect(single).toEqual(expected);
    });
  });

  it('maps the spec examples to the expected message types and fields', () => {
    const at = (section: string, direction = 'terminal->till') => {
      const vector = JOINPROTO_VECTORS.find((v) => v.section.startsWith(section) && v.direction === direction);
      if (vector === undefined) throw new Error(`no vector ${section}`);
      return decodeMessage(fromHex(vector.data_hex), vector.direction);
    };
    expect(at('5.1 ', 'till->terminal')).toEqual({ type: 'PurchaseRequest', id: '464448', amount: 1, cashback: 1, department: '01' });
    expect(at('5.1.4')).toMatchObject({
      type: 'PurchaseResponse',
      id: '464448',
      maskedPan: '544966******2078',
      amount: 1,
      authCode: '614597',
      receiptNo: '000005',
      shiftNo: '000001',
      merchantId: '111122223333444',
      terminalId: 'AB040000',
      responseCode: '000',
      time: '183734',
      message: 'Successful transaction',
      rrn: '000000614597',
      date: '180122',
    });
    expect(at('3 ')).toEqual({ type: 'ErrorResponse', responseCode: 'XX', message: 'other err' });
    expect(at('4.8.2')).toEqual({ type: 'UploadLogsResponse', id: '380358', data: new Uint8Array(Buffer.from('helloworld')) });
    expect(at('4.9.1')).toEqual({ type: 'RepeatResponse', responseCode: 'XX', message: 'FAILED' });
    expect(at('4.2 ')).toEqual({ type: 'OpenConnectionRequest', id: '559734', protocol: 'tcp', address: '127.0.0.1:1337' });
    expect(at('4.4 ')).toEqual({ type: 'ReceiveDataRequest', id: '203725', connectionId: '2546035541', maxBytes: 4096 });
    expect(at('4.3.1', 'till->terminal')).toEqual({ type: 'SendDataResponse', id: '100753', sentBytes: 6 });
    expect(at('5.2.2', 'till->terminal')).toEqual({ type: 'CardCheckResponse', id: '511454', responseCode: '000', message: 'black' });
    expect(at('5.6.3')).toMatchObject({ type: 'CloseDayResponse', receipt: new Uint8Array(Buffer.from('данные', 'utf8')) });
  });
});
