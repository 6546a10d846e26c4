import { decodeMessage, decodeRequest, decodeResponse, encodeRequest, encodeResponse, receiptLrc } from './codec';
import { SsiEcrError, type SsiEcrErrorCode } from './errors';
import { FrameDecoder } from './framing';
import type { JsonObject } from './json';
import type { SsiRequest } from './messages';
import { buildFrame } from './testing/frame-builder';
import { PRINT_XML_EXAMPLE_RECEIPT, REQUEST_EXAMPLES, RESPONSE_EXAMPLES } from './testing/vectors';

function caught(fn: () => unknown): SsiEcrError {
  try {
    fn();
  } catch (error) {
    if (error instanceof SsiEcrError) return error;
    throw error;
  }
  throw new Error('expected an SsiEcrError');
}

describe('request codec: every request example of spec section 5', () => {
  describe.each(REQUEST_EXAMPLES)('$section', ({ json, typed }) => {
    it('decodes the framed example to the typed request', () => {
      const [event] = new FrameDecoder().push(buildFrame(json));
      expect(event.kind).toBe('frame');
      if (event.kind === 'frame') expect(decodeRequest(decodeMessage(event.frame))).toEqual(typed);
    });

    it('encodes the typed request to the example JSON (same keys and values)', () => {
      expect(encodeRequest(typed as SsiRequest)).toEqual(JSON.parse(json));
    });
  });
});

describe(decodeRequest.name, () => {
  it.each<[string, JsonObject, SsiEcrErrorCode, string, string?]>([
    ['no method', { params: {} }, 'MISSING_FIELD', 'E04', 'method'],
    ['unknown method', { method: 'Teleport' }, 'UNKNOWN_METHOD', 'E05', 'method'],
    ['financial without params', { method: 'Purchase' }, 'MISSING_FIELD', 'E04', 'params'],
    ['missing transAmount', { method: 'Purchase', params: { transCurrency: '980' } }, 'MISSING_FIELD', 'E04', 'transAmount'],
    ['amount with a decimal point', { method: 'Purchase', params: { transAmount: '245.00', transCurrency: '980' } }, 'INVALID_FIELD', 'E09', 'transAmount'],
    ['amount of 13 digits', { method: 'Cash', params: { transAmount: '1234567890123', transCurrency: '980' } }, 'INVALID_FIELD', 'E09', 'transAmount'],
    ['negative amount', { method: 'Cash', params: { transAmount: -5, transCurrency: '980' } }, 'INVALID_FIELD', 'E09', 'transAmount'],
    ['currency of letters', { method: 'Balance', params: { transCurrency: 'UAH' } }, 'INVALID_FIELD', 'E09', 'transCurrency'],
    [
      'discount above amount',
      { method: 'Purchase', params: { transAmount: '100', transCurrency: '980', discountedAmount: '200' } },
      'INVALID_FIELD',
      'E09',
      'discountedAmount',
    ],
    ['PrintXml with a wrong lrc', { method: 'PrintXml', params: { lrc: '26', receipt: PRINT_XML_EXAMPLE_RECEIPT } }, 'INVALID_FIELD', 'E09', 'lrc'],
    ['step 3', { method: 'Purchase', step: '3', params: { transAmount: '1', transCurrency: '980' } }, 'INVALID_FIELD', 'E09', 'step'],
  ])('%s → %s (%s)', (_name, message, code, reply, field) => {
    const error = caught(() => decodeRequest(message));
    expect([error.code, error.reply, error.details.field]).toEqual([code, reply, field]);
  });

  it('ignores unknown keys (spec 1.2)', () => {
    expect(decodeRequest({ method: 'Void', extra: 1, params: { invoiceNum: '000001', colour: 'red' } })).toEqual({
      method: 'Void',
      params: { invoiceNum: '000001' },
    });
  });

  it('accepts step as a number (document) or a string (later revision)', () => {
    const base = { method: 'Purchase', params: { transAmount: '1', transCurrency: '980' } };
    expect(decodeRequest({ ...base, step: 2 })).toEqual(expect.objectContaining({ step: 2 }));
    expect(decodeRequest({ ...base, step: '2' })).toEqual(expect.objectContaining({ step: 2 }));
  });

  it('keeps a space-padded merchant id untrimmed (later revision)', () => {
    const request = decodeRequest({ method: 'Echo', params: { merchantId: 'EXIM CASH      ' } });
    expect(request).toEqual({ method: 'Echo', params: { merchantId: 'EXIM CASH      ' } });
  });

  it('accepts PrintXml lrc as unsigned decimal, signed decimal (Kotlin Byte) or 0x hex', () => {
    const receipt = '<receipt>\u0800x</receipt>';
    const lrc = receiptLrc(receipt);
    expect(lrc).toBeGreaterThan(127);
    for (const wire of [String(lrc), String(lrc - 256), `0x${lrc.toString(16)}`]) {
      expect(decodeRequest({ method: 'PrintXml', params: { lrc: wire, receipt } })).toEqual({ method: 'PrintXml', params: { receipt } });
    }
  });
});

describe(encodeRequest.name, () => {
  it('writes amounts as digit strings and step as a string', () => {
    expect(encodeRequest({ method: 'Purchase', step: 1, params: { transAmount: 2450, transCurrency: '980' } })).toEqual({
      method: 'Purchase',
      params: { transAmount: '2450', transCurrency: '980' },
      step: '1',
    });
  });

  it('always sends params for financial and report methods (spec 4.3.5)', () => {
    expect(encodeRequest({ method: 'ZReport', params: {} })).toEqual({ method: 'ZReport', params: {} });
  });

  it.each([1.5, -1, 1e12, Number.NaN])('rejects amount %p with INVALID_FIELD', (amount) => {
    expect(caught(() => encodeRequest({ method: 'Cash', params: { transAmount: amount, transCurrency: '980' } })).code).toBe('INVALID_FIELD');
  });

  it('adds the receipt LRC to PrintXml as a decimal string', () => {
    const wire = encodeRequest({ method: 'PrintXml', params: { receipt: PRINT_XML_EXAMPLE_RECEIPT } });
    const expected = Buffer.from(PRINT_XML_EXAMPLE_RECEIPT, 'utf8').reduce((a, b) => a ^ b, 0);
    expect(wire.params).toEqual({ receipt: PRINT_XML_EXAMPLE_RECEIPT, lrc: String(expected) });
  });
});

describe('response envelope: every response example of spec section 5', () => {
  it.each(Object.entries(RESPONSE_EXAMPLES))('%s decodes', (_name, json) => {
    const response = decodeResponse(JSON.parse(json));
    expect(typeof response.method).toBe('string');
    expect(response.errorCode === '' ? response.error : true).toBe(response.error);
  });

  it('5.1: lifts details from params and keeps the E01 code', () => {
    expect(decodeResponse(JSON.parse(RESPONSE_EXAMPLES['5.1 error']))).toEqual(
      expect.objectContaining({ method: 'Purchase', error: true, errorCode: 'E01', details: 'actual: ee, expected: 66' }),
    );
  });

  it('5.4.1 / 5.4.3: status at the top level', () => {
    expect(decodeResponse(JSON.parse(RESPONSE_EXAMPLES['5.4.1 GetStatus'])).status).toBe('S00');
    expect(decodeResponse(JSON.parse(RESPONSE_EXAMPLES['5.4.3 Restart'])).status).toBe('S00');
  });

  it('mirrors: encodeResponse(decodeResponse(x)) equals x for the GetStatus example', () => {
    const wire = JSON.parse(RESPONSE_EXAMPLES['5.4.1 GetStatus']);
    expect(encodeResponse(decodeResponse(wire))).toEqual(wire);
  });

  it('a response without method or error flag is UNEXPECTED_RESPONSE', () => {
    expect(caught(() => decodeResponse({ error: false })).code).toBe('UNEXPECTED_RESPONSE');
    expect(caught(() => decodeResponse({ method: 'GetStatus' })).code).toBe('UNEXPECTED_RESPONSE');
  });
});
