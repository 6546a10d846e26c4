/**
 * Every XML example of both documents (src/testing/spec-examples.ts): it parses, it decodes to the
 * values the documents state, commands mirror back to the same XML, and the documents' typos are
 * rejected as malformed.
 */
import { decodeCommand, encodeCommand } from './codec-commands';
import { decodeMessage, decodeReply, encodeMessage, encodeReply } from './codec-messages';
import { decodeResponse, encodeResponse } from './codec-responses';
import { JpayEcdhe, decodeServerHandshake } from './crypto';
import { openElement } from './envelope';
import type { CommandName, JpayResponse } from './messages';
import { transactionOutcome } from './outcome';
import { canonicalXml } from './testing/builders';
import { CRYPTO_VECTOR, MALFORMED_SPEC_SNIPPETS, SPEC_EXAMPLES, type SpecExample } from './testing/spec-examples';
import { parseXml, parseXmlBytes, writeXml, type XmlElement } from './xml';

const byId = (id: string): SpecExample => {
  const example = SPEC_EXAMPLES.find((e) => e.id === id);
  if (!example) throw new Error(`no example ${id}`);
  return example;
};

function openedRoot(example: SpecExample): XmlElement {
  const root = parseXml(example.xml);
  if (example.id !== 'login-secure-ok') return root;
  const client = new JpayEcdhe(Buffer.from(CRYPTO_VECTOR.clientPrivateKey, 'hex'));
  return openElement(root, client.deriveKey(decodeServerHandshake(root.attrs['server-handshake'])));
}

function response(id: string): JpayResponse {
  const example = byId(id);
  return decodeResponse(example.command as CommandName, openedRoot(example));
}

describe('spec examples', () => {
  describe.each(SPEC_EXAMPLES.filter((e) => e.kind === 'command').map((e) => [e.id, e] as const))('command %s', (_id, example) => {
    it('decodes, and encodes back to the same elements', () => {
      const command = decodeCommand(parseXml(example.xml));
      const expected =
        example.id === 'tx-sbp-payment' ? '<transaction force-sbp="true"><type>purchase</type><amount>000000012300</amount></transaction>' : example.xml;
      expect(canonicalXml(writeXml(encodeCommand(command)))).toEqual(canonicalXml(expected));
    });
  });

  describe.each(SPEC_EXAMPLES.filter((e) => e.kind === 'response').map((e) => [e.id, e] as const))('response %s', (_id, example) => {
    it('decodes, and re-encoding decodes to the same response', () => {
      const decoded = decodeResponse(example.command as CommandName, openedRoot(example));
      expect(decoded.command).toBe(example.command);
      expect(decodeResponse(example.command as CommandName, parseXml(writeXml(encodeResponse(decoded))))).toEqual(decoded);
    });
  });

  describe.each(SPEC_EXAMPLES.filter((e) => e.kind === 'message').map((e) => [e.id, e] as const))('message %s', (_id, example) => {
    it('decodes, and encodes back to the same elements', () => {
      const message = decodeMessage(parseXml(example.xml));
      expect(message).toBeDefined();
      expect(canonicalXml(writeXml(encodeMessage(message!)))).toEqual(canonicalXml(example.xml));
    });
  });

  describe.each(SPEC_EXAMPLES.filter((e) => e.kind === 'reply').map((e) => [e.id, e] as const))('reply %s', (_id, example) => {
    it('decodes, and encodes back to the same elements', () => {
      const reply = decodeReply(parseXml(example.xml));
      expect(canonicalXml(writeXml(encodeReply(reply)))).toEqual(canonicalXml(example.xml));
    });
  });

  it('decodes the hex error-stack to UTF-8 text (§8)', () => {
    expect(response('loadmasterkeys-error-stack')).toEqual({
      command: 'loadmasterkeys',
      status: 'connectionerror',
      errors: ['Host name is not found.'],
    });
  });

  it('decodes the secure login of §9 with the jpay-notes vector key', () => {
    expect(response('login-secure-ok')).toMatchObject({
      status: 'ok',
      token: '392480923040932923',
    });
  });

  it('decodes the aQsi master key list', () => {
    expect(response('loadmasterkeys-ok-aqsi')).toMatchObject({
      receipt: {
        pkcv: '123456',
        mkcv: '789ABC',
        keys: [{ type: '10', algorithm: '01', result: 'success', kcv: 'B5A146' }],
      },
    });
    expect(response('loadmasterkeys-ok-jpay')).toMatchObject({
      receipt: { pkcv: '123456', mkcv: '789ABC', keys: [] },
    });
  });

  it('decodes getparameters', () => {
    expect(response('getparameters-ok')).toMatchObject({
      parameters: {
        sn: '000000000009',
        tid: '1000000001',
        devid: 'M2100-0000005164',
        'firmware-mcu': '1.5.3',
      },
    });
  });

  it('decodes the card receipt and maps it to approved', () => {
    const decoded = response('tx-response');
    expect(decoded).toMatchObject({
      status: 'ok',
      errors: [],
      receipt: {
        header: ['Merchant Name', 'Merchant Address'],
        footer: ['Byte'],
        seq: '000009',
        tstatus: 'approved',
        amountAuthorized: 12300,
        amountOther: 12300,
        rrn: '120157645346',
        psCode: 'VISA Classic',
        pan: '*****1234',
        declineReason: '',
        acquirerTag: 'abc',
        applicationName: 'VISA Classic',
      },
    });
    expect(transactionOutcome(decoded as never).outcome).toBe('approved');
  });

  it('decodes the SBP receipt (status instead of tstatus, iface=sbp, Cyrillic bank name)', () => {
    const decoded = response('tx-sbp-response');
    expect(decoded).toMatchObject({
      receipt: { status: 'approved', iface: 'sbp', tidSbp: '123456789A2', bankName: 'БАНК' },
    });
    expect(transactionOutcome(decoded as never).outcome).toBe('approved');
  });

  it('decodes the SBP/CFT receipt with its 11-digit amount and MPI fields', () => {
    expect(response('tx-sbp-cft-response')).toMatchObject({
      receipt: {
        amountAuthorized: 110,
        cft: { localQrcId: '232796', paymentPurpose: 'Оплата товара или услуги' },
        errorCode: 'ok',
      },
    });
  });

  it('decodes report totals with the D/C sign: C is negative (§8.11)', () => {
    expect(response('report-ok')).toMatchObject({
      xreport: {
        header: { mid: 'M123456789012345', title: ['Header line 1'], currency: '643' },
        transactions: [
          {
            type: 'refund',
            seq: '000009',
            amount: 1000,
            amountOther: 100,
            authNumber: 'AFJ879',
            respCode: '000',
          },
        ],
        totals: [
          {
            rid: 'A000000003',
            name: 'VISA',
            purchase: { count: 100, sum: 10000 },
            purchaseWithCashback: { count: 100, sum: 10000 },
            refundReversal: { count: 2, sum: 10000 },
            totalSum: -10000,
            totalCount: 400,
          },
        ],
        grandTotals: { refund: { count: 100, sum: 10000 }, totalSum: -10000, totalCount: 400 },
      },
    });
  });

  it('decodes settlement and clear amounts with the D sign as positive', () => {
    expect(response('settlement-ok')).toMatchObject({
      bankName: 'BANK',
      sreport: {
        origAmount: 3030001000,
        amount: 3030001000,
        tnum: 100,
        settlementResult: 'passed',
        covRrn: '123456789012',
      },
    });
    expect(response('clear-ok')).toMatchObject({
      sreport: { amount: 3030001000, mid: '123456789012345' },
    });
  });

  it('decodes display, dex, smartcard and runreset keepalives', () => {
    expect(decodeMessage(parseXml(byId('display').xml))).toEqual({
      type: 'display',
      code: '03',
      language: 'ruen',
      msg: 'ОДОБРЕНО',
      status: '02',
      holdTime: '000000',
      valueQualifier: '00',
      value: 0,
      currency: '643',
    });
    expect(decodeMessage(parseXml(byId('dex').xml))).toEqual({
      type: 'dex',
      kernelTags: [{ name: '5A', value: '01234567890ABCDEF' }],
    });
    expect(decodeMessage(parseXml(byId('smartcard-newcard').xml))).toEqual({
      type: 'smartcard',
      command: 'newcard',
      descriptor: { hex: '0705804E4B097000440028', uid: '05804E4B097000', atqa: '4400', sak: '28' },
    });
    expect(decodeMessage(parseXml(byId('runreset-keepalive-jpay').xml))).toEqual({
      type: 'keepalive',
      root: 'keep-alive',
      resetConnected: false,
    });
  });

  it('decodes manual card entry and SBP attributes of transaction commands', () => {
    expect(decodeCommand(parseXml(byId('tx-manual-pan').xml))).toMatchObject({
      type: 'purchase',
      amount: 12300,
      manualEntry: {
        pan: '4000000010000001',
        expiry: '1805',
        password: '12345678',
        cardholder: 'JOHN SMITH',
      },
    });
    expect(decodeCommand(parseXml(byId('tx-sbp-payment').xml))).toEqual({
      command: 'transaction',
      type: 'purchase',
      amount: 12300,
      forceSbp: true,
    });
  });

  it.each(MALFORMED_SPEC_SNIPPETS)("rejects the documents' typo %#: %s", (xml) => {
    expect(() => parseXml(xml)).toThrow(expect.objectContaining({ code: 'XML_MALFORMED' }));
  });
});

describe('XML safety', () => {
  it('rejects DTDs and entity declarations (no expansion) [PAYORCH-XML-DTD]', () => {
    const bomb = '<!DOCTYPE x [<!ENTITY a "aaaa"><!ENTITY b "&a;&a;&a;">]><x>&b;</x>';
    expect(() => parseXml(bomb)).toThrow(expect.objectContaining({ code: 'XML_DTD_FORBIDDEN' }));
  });

  it('rejects nesting beyond the bound', () => {
    const deep = '<a>'.repeat(40) + '</a>'.repeat(40);
    expect(() => parseXml(deep)).toThrow(expect.objectContaining({ code: 'XML_MALFORMED' }));
  });

  it('rejects several roots and invalid UTF-8', () => {
    expect(() => parseXml('<a/><b/>')).toThrow(expect.objectContaining({ code: 'XML_MALFORMED' }));
    expect(() => parseXmlBytes(Uint8Array.of(0x3c, 0x61, 0xff, 0x2f, 0x3e))).toThrow(expect.objectContaining({ code: 'XML_NOT_UTF8' }));
  });

  it('decodes only the predefined and numeric entities', () => {
    expect(parseXml('<m>A&amp;B &lt;&#1054;&#x41;&gt; &nbsp;</m>').text).toBe('A&B <ОA> &nbsp;');
  });

  it('refuses prototype-polluting tag names', () => {
    expect(() => parseXml('<a><__proto__>x</__proto__></a>')).toThrow(expect.objectContaining({ code: 'XML_MALFORMED' }));
  });
});
