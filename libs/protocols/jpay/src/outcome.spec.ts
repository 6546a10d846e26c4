import type { Receipt, TransactionResponse, XReport } from './messages';
import { transactionOutcome } from './outcome';
import { resolveApplicationName } from './receipt';
import { closeDayFromReport, findTransactionCandidates, resolveFromReport } from './recovery';
import { STATUS_CODES, classifyStatus, normalizeStatus, provesNotPerformed } from './status';

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
    ['invalidarguments', undefined, 'error'],
    ['transactionnotfound', undefined, 'error'],
    // [JPAY-8.9-APPROVED] a receipt approved is the approval, whatever the status beside it.
    ['systemerror', receipt({ tstatus: 'approved' }), 'approved'],
    ['communicationerror', receipt({ tstatus: 'approved' }), 'approved'],
    ['timeout', receipt({ status: 'approved', iface: 'sbp' }), 'approved'],
    ['failed', receipt({ tstatus: 'declined' }), 'declined'],
    ['cancelled', receipt({ seq: '000007' }), 'canceled'],
    // No receipt, and a status that can follow a host approval: not known, recovered from the report.
    ['systemerror', undefined, 'unknown'],
    ['communicationerror', undefined, 'unknown'],
    ['timeout', undefined, 'unknown'],
    ['failed', undefined, 'unknown'],
    ['emverror', undefined, 'unknown'],
    ['connectionerror', undefined, 'unknown'],
    ['systemerror', receipt({ seq: '000007' }), 'unknown'],
  ] as const)('status %s with receipt %j → %s', (status, r, expected) => {
    expect(transactionOutcome(response(status, r)).outcome).toBe(expected);
  });

  it('keeps the status of an unproven answer for the caller, and says why it is unknown', () => {
    expect(transactionOutcome(response('communicationerror'))).toMatchObject({ outcome: 'unknown', reason: 'status-unproven', status: 'communicationerror' });
  });

  it('counts as proof of non-execution only statuses raised before the host is asked [PAYORCH-NOT-PERFORMED]', () => {
    expect(STATUS_CODES.filter((s) => s !== 'ok' && classifyStatus(s) !== 'canceled' && !provesNotPerformed(s))).toEqual([
      'failed',
      'communicationerror',
      'fileioerror',
      'verificationfailed',
      'systemerror',
      'timeout',
      'emverror',
      'batchuploadfailed',
      'readererror',
    ]);
    expect(provesNotPerformed('ormaterror')).toBe(true);
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
      // Card entries: they name the card (an SBP entry has no pan/aid and its own receipt counter, §8.10).
    ].map((t) => ({ ...t, pan: '************1234' })),
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
    expect(resolveFromReport(report, { request: { type: 'refund', amount: 1000 }, afterSeq: '000004' })).toEqual({
      resolution: 'not-found',
    });
  });
});

describe(`${resolveFromReport.name} [PAYORCH-RECOVER-ANCHOR]`, () => {
  // Card entries (they name the card): SBP entries, numbered apart (§8.10), are in recovery-sbp.spec.ts.
  const entry = (seq: string, amount: number, time: string, rrn = `R${seq}`) => ({
    seq,
    type: 'purchase',
    status: 'approved',
    amount,
    time,
    rrn,
    pan: '************1234',
  });
  const log = (...transactions: ReturnType<typeof entry>[]): XReport => ({ header: { title: [] }, totals: [], transactions });
  const purchase1500 = { type: 'purchase' as const, amount: 1500 };

  it('never takes an entry at or before the anchor while the anchor is in the log', () => {
    // 15.00 approved as receipt 1 (the anchor); a second 15.00 lost before the terminal read it.
    const report = log(entry('000001', 1500, '250116100000'));
    expect(resolveFromReport(report, { request: purchase1500, afterSeq: '000001', afterRrn: 'R000001', notBeforeTime: '250116095000' })).toEqual({
      resolution: 'not-found',
    });
  });

  it('decides by receipt number, not time: a terminal clock 11 minutes behind does not hide our entry', () => {
    const report = log(entry('000001', 1000, '250116100000'), entry('000002', 1500, '250116100900'));
    // Sent at 10:20 by our clock; the terminal logged it at 10:09 by its own.
    expect(resolveFromReport(report, { request: purchase1500, afterSeq: '000001', afterTime: '250116100000', notBeforeTime: '250116101000' })).toMatchObject({
      resolution: 'approved',
      transaction: { seq: '000002' },
    });
    // Several entries after the anchor: time breaks the tie, else an operator decides.
    const two = log(entry('000001', 1000, '250116100000'), entry('000002', 1500, '250116100500'), entry('000003', 1500, '250116101500'));
    expect(resolveFromReport(two, { request: purchase1500, afterSeq: '000001', notBeforeTime: '250116101000' })).toMatchObject({
      resolution: 'approved',
      transaction: { seq: '000003' },
    });
    expect(resolveFromReport(two, { request: purchase1500, afterSeq: '000001', notBeforeTime: '250116100000' })).toMatchObject({ resolution: 'ambiguous' });
  });

  it('does not conclude "not performed" from a log emptied since the anchor, nor without an anchor', () => {
    // A close emptied the log (and the counter restarted): receipt 1 now is another transaction.
    const afterClose = log(entry('000001', 1000, '250116120000', 'OTHER'));
    expect(resolveFromReport(afterClose, { request: purchase1500, afterSeq: '000001', afterRrn: 'R000001' })).toEqual({
      resolution: 'undetermined',
      why: 'log-emptied',
    });
    expect(resolveFromReport(log(), { request: purchase1500, afterSeq: '000003' })).toEqual({ resolution: 'undetermined', why: 'log-emptied' });
    // 000000: the log was empty when the anchor was learned; there is no entry to check.
    expect(resolveFromReport(log(), { request: purchase1500, afterSeq: '000000' })).toEqual({ resolution: 'undetermined', why: 'no-anchor' });
    expect(resolveFromReport(log(entry('000001', 1000, '250116100000')), { request: purchase1500 })).toEqual({ resolution: 'undetermined', why: 'no-anchor' });
  });

  it('finds the entry after a close by time alone, and leaves several to an operator', () => {
    const afterClose = log(entry('000001', 1500, '250116120000', 'NEW'));
    expect(resolveFromReport(afterClose, { request: purchase1500, afterSeq: '000009', afterRrn: 'R000009', notBeforeTime: '250116110000' })).toMatchObject({
      resolution: 'approved',
      transaction: { rrn: 'NEW' },
    });
    const two = log(entry('000001', 1500, '250116120000', 'A'), entry('000002', 1500, '250116121000', 'B'));
    expect(resolveFromReport(two, { request: purchase1500, afterSeq: '000009', afterRrn: 'R000009', notBeforeTime: '250116110000' })).toMatchObject({
      resolution: 'ambiguous',
      candidates: [{ rrn: 'A' }, { rrn: 'B' }],
    });
  });
});

describe(closeDayFromReport.name, () => {
  const report = (transactions: XReport['transactions']): XReport => ({ header: { title: [] }, totals: [], transactions });
  const before = { seq: '000004', rrn: '100000000004' };

  it('tells a close-day that closed (its entry gone) from one that did not (still there) [PAYORCH-RECOVER-CLOSE]', () => {
    expect(closeDayFromReport(report([{ seq: '000004', rrn: '100000000004' }]), before)).toBe('not-closed');
    expect(closeDayFromReport(report([]), before)).toBe('closed');
    // Closed, and the restarted counter numbered a new transaction alike.
    expect(closeDayFromReport(report([{ seq: '000004', rrn: '100000000077' }]), before)).toBe('closed');
    expect(closeDayFromReport(report([]), undefined)).toBe('undetermined');
  });
});
