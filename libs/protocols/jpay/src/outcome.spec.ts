import type { Receipt, TransactionResponse, XReport } from './messages';
import { transactionOutcome } from './outcome';
import { resolveApplicationName } from './receipt';
import { findTransactionCandidates, resolveFromReport } from './recovery';
import { STATUS_CODES, classifyStatus, normalizeStatus } from './status';

const receipt = (fields: Partial<Receipt>): Receipt => ({
  header: [],
  footer: [],
  extras: [],
  ...fields,
});
const response = (status: string, r?: Receipt): TransactionResponse => ({
  command: 'transaction',
  status,
  errors: [],
  ...(r ? { receipt: r } : {}),
});

describe(transactionOutcome.name, () => {
  it.each([
    ['ok', receipt({ tstatus: 'approved' }), 'approved'],
    ['ok', receipt({ status: 'approved', iface: 'sbp' }), 'approved'],
    ['ok', receipt({ tstatus: 'declined' }), 'declined'],
    ['ok', undefined, 'unknown'],
    ['cancelled', undefined, 'canceled'],
    ['pinentrybypassed', undefined, 'canceled'],
    ['tryagain', undefined, 'error'],
    ['connectionerror', undefined, 'error'],
  ] as const)('status %s with receipt %j → %s', (status, r, expected) => {
    expect(transactionOutcome(response(status, r)).outcome).toBe(expected);
  });

  it("knows every Appendix A code and normalises the documents' typos", () => {
    expect(STATUS_CODES).toHaveLength(30);
    expect(normalizeStatus(' ormaterror ')).toBe('formaterror');
    expect(normalizeStatus('pinpadmalfunctionornotprsent')).toBe('pinpadmalfunctionornotpresent');
    expect(classifyStatus('notauthorized')).toBe('auth');
    expect(classifyStatus('usechip')).toBe('card-retry');
  });
});

describe(resolveApplicationName.name, () => {
  it('prefers apname decoded with ict-id, then alabel, then appname [JPAY-8.9-APPNAME]', () => {
    expect(
      resolveApplicationName({
        apname: '5649534120B4B5B1B5C2',
        ictId: '05',
        alabel: 'VISA DEBIT',
        appname: 'VISA',
      }),
    ).toBe('VISA ДЕБЕТ');
    expect(
      resolveApplicationName({
        apname: '5649534120B4B5B1B5C2',
        ictId: '0F',
        alabel: 'VISA DEBIT',
        appname: 'VISA',
      }),
    ).toBe('VISA DEBIT');
    expect(resolveApplicationName({ apname: '56495341', alabel: 'VISA DEBIT' })).toBe('VISA DEBIT');
    expect(resolveApplicationName({ appname: 'VISA Classic' })).toBe('VISA Classic');
  });
});

describe(findTransactionCandidates.name, () => {
  const report: XReport = {
    header: { title: [] },
    totals: [],
    transactions: [
      { seq: '000001', type: 'purchase', status: 'approved', amount: 1000, time: '250116100000' },
      { seq: '000002', type: 'purchase', status: 'declined', amount: 1000, time: '250116101000' },
      {
        seq: '000003',
        type: 'purchasereversal',
        status: 'approved',
        amount: 400,
        time: '250116102000',
      },
      {
        seq: '000004',
        type: 'purchase-with-cashback',
        status: 'approved',
        amount: 1500,
        amountOther: 500,
        time: '250116103000',
      },
    ],
  };

  it('narrows by afterSeq and notBeforeTime', () => {
    expect(findTransactionCandidates(report, { request: { type: 'purchase', amount: 1000 } }).map((t) => t.seq)).toEqual(['000001', '000002']);
    expect(
      resolveFromReport(report, {
        request: { type: 'purchase', amount: 1000 },
        afterSeq: '000001',
      }),
    ).toMatchObject({
      resolution: 'declined',
      transaction: { seq: '000002' },
    });
    expect(
      resolveFromReport(report, {
        request: { type: 'purchase', amount: 1000 },
        notBeforeTime: '250116100500',
      }),
    ).toMatchObject({ resolution: 'declined' });
  });

  it('maps void to the reversal log types and cashback to amount or amount + cashback', () => {
    expect(resolveFromReport(report, { request: { type: 'void', number: 'last', amount: 400 } })).toMatchObject({
      resolution: 'approved',
      transaction: { seq: '000003' },
    });
    expect(
      resolveFromReport(report, {
        request: { type: 'purchase-with-cashback', amount: 1000, amountOther: 500 },
        afterSeq: '000003',
      }),
    ).toMatchObject({
      resolution: 'approved',
      transaction: { seq: '000004' },
    });
    expect(resolveFromReport(report, { request: { type: 'refund', amount: 1000 } })).toEqual({
      resolution: 'not-found',
    });
  });
});
