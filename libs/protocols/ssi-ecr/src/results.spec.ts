import { decodeResponse } from './codec';
import { matchResult, resultFingerprint } from './matching';
import { maskPan } from './pan';
import { parseMerchantList, parseReceipt, parseReport, parseTerminalInfo, parseTransactionResult, type TransactionResult } from './results';
import { RESPONSE_EXAMPLES } from './testing/vectors';

const response = (name: keyof typeof RESPONSE_EXAMPLES) => decodeResponse(JSON.parse(RESPONSE_EXAMPLES[name]));

describe(parseTransactionResult.name, () => {
  const sut = parseTransactionResult(response('5.5.1 GetLastResult'));

  it('reads the 5.5.1 example with amounts in minor units and the hyphen spelling normalised', () => {
    expect(sut).toEqual(
      expect.objectContaining({
        error: false,
        originalTrnName: 'Purchase',
        transAmount: 24500,
        discount: 500,
        balance: 99958881159,
        transactionResult: 'APPROVED_ONLINE',
        transactionResultRaw: 'APPROVED-ONLINE',
        responseCode: '0000',
        invoiceNum: '999999',
        cardholderName: 'MR CARDHOLDER',
        posEntryMode: 'CONTACTLESS',
        parEnabled: true,
      }),
    );
  });

  it('never exposes a full PAN or track2', () => {
    const text = JSON.stringify(sut);
    expect(text).not.toContain('4402722218390184');
    expect(sut.panMasked).toBe('4725XX******1627');
    expect(Object.keys(sut)).not.toContain('track2');
  });

  it('empty values become undefined (spec 5.5.1 "empty/zero values when no data")', () => {
    const empty = parseTransactionResult(
      decodeResponse({ method: 'GetLastResult', error: false, errorCode: '', errorDescription: '', params: { originalTrnName: '', rrn: '', transAmount: '' } }),
    );
    expect(empty).toEqual({ error: false, errorCode: '', errorDescription: '' });
  });
});

describe(maskPan.name, () => {
  it.each([
    ['4402722218390184', '440272******0184'],
    ['4143********9008', '4143********9008'],
    ['12345', '*2345'],
  ])('%s → %s', (pan, masked) => {
    expect(maskPan(pan)).toBe(masked);
  });
});

describe(parseReport.name, () => {
  it('reads the 5.5.4 example totals and masks transaction PANs', () => {
    const report = parseReport(response('5.5.4 GetLastReport'));
    expect(report.totals).toEqual({
      saleCount: 2,
      saleAmount: 123,
      finAuthCount: 0,
      finAuthAmount: 0,
      refundCount: 0,
      refundAmount: 0,
      cashCount: 1,
      cashAmount: 23,
      paymentCount: 1,
      paymentAmount: 11,
      voidCount: 0,
      voidAmount: 0,
    });
    expect(report.isBatchEmpty).toBe(true);
    expect(report.batchNumber).toBe('999');
    expect(report.transactions).toEqual([expect.objectContaining({ transAmount: 24500, invoiceNum: '999999', panMasked: '4725XX******1627' })]);
  });
});

describe('other 5.5 parsers', () => {
  it('5.5.5 merchant list (merchantCount as a JSON number)', () => {
    expect(parseMerchantList(response('5.5.5 GetMerchantList'))).toEqual({ merchantCount: 2, merchantList: ['mer1', 'mer2'] });
  });

  it('5.5.2 / 5.5.6 receipts', () => {
    expect(parseReceipt(response('5.5.2 GetLastReceipt'))).toBe('Receipt text');
    expect(parseReceipt(response('5.5.6 GetLastReportReceipt'))).toBe('Receipt text');
  });

  it('5.5.9 Android shape', () => {
    const info = parseTerminalInfo(response('5.5.9 GetTerminalInfo android'));
    expect(info.os).toBe('android');
    if (info.os === 'android') {
      expect([info.terminalModel, info.terminalSerialNumber, info.sdkVersion, info.currentApp?.name]).toEqual([
        'Verifone X990',
        'V1E0207420',
        '25',
        'MonoBank',
      ]);
      expect(info.paymentApps.map((a) => a.name)).toEqual(['MonoBank', 'Raif', 'PivdennyBank']);
      expect(info.securityDriver?.versionName).toBe('X990-V1.0.12(202111221449)');
    }
  });

  it('5.5.9 Linux shape', () => {
    const info = parseTerminalInfo(response('5.5.9 GetTerminalInfo linux'));
    expect(info).toEqual(expect.objectContaining({ os: 'linux', model: 'SP880', serialNumber: 'B9AA00176476', napiApiVersion: 'NAPI_API_V2.7.0' }));
  });
});

describe(matchResult.name, () => {
  const request = { method: 'Purchase', params: { transAmount: 24500, transCurrency: '980' } } as const;
  const ours: TransactionResult = {
    error: false,
    errorCode: '',
    errorDescription: '',
    originalTrnName: 'Purchase',
    transAmount: 24500,
    invoiceNum: '000002',
    time: '10:00:02',
  };
  const older: TransactionResult = { ...ours, invoiceNum: '000001', time: '10:00:01' };

  it('accepts a new result of the same method and amount', () => {
    expect(matchResult({ request, baseline: older }, ours)).toEqual({ ok: true });
  });

  it('accepts when the buffer was empty before (null baseline)', () => {
    expect(matchResult({ request, baseline: null }, ours)).toEqual({ ok: true });
  });

  it.each<[string, Parameters<typeof matchResult>[0], TransactionResult, string]>([
    ['the same result as before', { request, baseline: older }, older, 'SAME_AS_BEFORE'],
    ['no baseline and no uid', { request }, ours, 'SAME_AS_BEFORE'],
    ['another method', { request, baseline: older }, { ...ours, originalTrnName: 'Refund' }, 'METHOD_MISMATCH'],
    ['another amount', { request, baseline: older }, { ...ours, transAmount: 100 }, 'AMOUNT_MISMATCH'],
    ['another uid', { request, baseline: older, transactionUid: 'a' }, { ...ours, transactionUid: 'b' }, 'UID_MISMATCH'],
    ['an empty buffer', { request, baseline: older }, { error: false, errorCode: '', errorDescription: '' }, 'EMPTY'],
  ])('rejects %s', (_name, context, result, reason) => {
    expect(matchResult(context, result)).toEqual({ ok: false, reason });
  });

  it('a matching uid proves ownership even when the fingerprint is unchanged', () => {
    const withUid = { ...ours, transactionUid: 'u1' };
    expect(matchResult({ request, baseline: withUid, transactionUid: 'u1' }, withUid)).toEqual({ ok: true });
  });

  it('fingerprints differ when any identifying field differs', () => {
    expect(resultFingerprint(ours)).not.toBe(resultFingerprint(older));
  });
});
