/**
 * [PAYORCH-RECOVER-ANCHOR] with SBP: a purchase without force-sbp may be paid by SBP (§8.10), whose receipts
 * are numbered apart from card ones ("Номер транзакции в поле seq назначается независимо от номеров
 * карточных транзакций"). Until 2026-12-07 recovery compared SBP entries with the card anchor.
 */
import type { ReportTransaction, TransactionRequest, XReport } from './messages';
import { paymentMethodsOf, resolveFromReport } from './recovery';

type Entry = ReportTransaction & { readonly seq: string };

const log = (...transactions: Entry[]): XReport => ({ header: { title: [] }, totals: [], transactions });
const card = (seq: string, amount: number, time: string, type = 'purchase'): Entry => ({
  seq,
  type,
  status: 'approved',
  amount,
  time,
  rrn: `C${seq}`,
  pan: '************1234',
  aid: 'A0000000031010',
});
// An SBP entry names no card (the simulator's full report lists it so; its receipt has iface=sbp).
const sbp = (seq: string, amount: number, time: string, type = 'purchase'): Entry => ({ seq, type, status: 'approved', amount, time, rrn: `S${seq}` });

/** The anchors a driver records: the card entry's and the SBP entry's seq/rrn/time. */
const after = (entry: Entry) => ({ afterSeq: entry.seq, afterRrn: entry.rrn, afterTime: entry.time });
const afterSbp = (entry: Entry) => ({ afterSbpSeq: entry.seq, afterSbpRrn: entry.rrn, afterSbpTime: entry.time });

const purchase1500: TransactionRequest = { type: 'purchase', amount: 1500 };
// Sent at 10:20 by our clock; the bound allows the terminal's clock 10 minutes behind.
const notBeforeTime = '250116101000';

describe(paymentMethodsOf.name, () => {
  it('reads §8.10: a purchase offers card and SBP unless force-sbp says otherwise; a refund is SBP only with force-sbp', () => {
    expect(paymentMethodsOf({ type: 'purchase', amount: 1 })).toEqual({ card: true, sbp: true });
    expect(paymentMethodsOf({ type: 'purchase', amount: 1, forceSbp: true })).toEqual({ card: false, sbp: true });
    expect(paymentMethodsOf({ type: 'purchase', amount: 1, forceSbp: false })).toEqual({ card: true, sbp: false });
    expect(paymentMethodsOf({ type: 'refund', amount: 1 })).toEqual({ card: true, sbp: false });
    expect(paymentMethodsOf({ type: 'refund', amount: 1, forceSbp: true })).toEqual({ card: false, sbp: true });
    expect(paymentMethodsOf({ type: 'void', number: 'last' })).toEqual({ card: true, sbp: false });
    expect(paymentMethodsOf({ type: 'purchase-with-cashback', amount: 1, amountOther: 1 })).toEqual({ card: true, sbp: false });
  });
});

describe(`${resolveFromReport.name}: a purchase without force-sbp paid by SBP [PAYORCH-RECOVER-ANCHOR]`, () => {
  const cardAnchor = card('000150', 1000, '250116090000');

  it('finds an SBP payment numbered below the card anchor: approved, not "not performed"', () => {
    const sbpAnchor = sbp('000010', 700, '250116091000');
    const paid = sbp('000013', 1500, '250116102000');
    const report = log(cardAnchor, sbpAnchor, sbp('000011', 300, '250116092000'), paid);
    // Until 2026-12-07: only entries above card receipt 150 counted, so SBP receipt 13 was "not found" (failed).
    expect(resolveFromReport(report, { request: purchase1500, ...after(cardAnchor), ...afterSbp(sbpAnchor), notBeforeTime })).toEqual({
      resolution: 'approved',
      transaction: paid,
    });
    // No SBP entry when the anchors were learned (000000): every SBP entry is new, whatever its time.
    const behind = sbp('000001', 1500, '250116100500');
    expect(resolveFromReport(log(cardAnchor, behind), { request: purchase1500, ...after(cardAnchor), afterSbpSeq: '000000', notBeforeTime })).toMatchObject({
      resolution: 'approved',
      transaction: { seq: '000001' },
    });
  });

  it('does not take an older SBP payment numbered above the card anchor for ours: not performed', () => {
    const anchor5 = card('000005', 1000, '250116090000');
    const olderSbp = sbp('000009', 1500, '250116093000');
    const report = log(card('000004', 800, '250116085000'), anchor5, olderSbp);
    // Until 2026-12-07 SBP receipt 9 > card receipt 5 was taken as ours (approved, never run).
    expect(resolveFromReport(report, { request: purchase1500, ...after(anchor5), ...afterSbp(olderSbp), notBeforeTime })).toEqual({
      resolution: 'not-found',
    });
  });

  it('keeps refs without an SBP anchor (recorded before 2026-12-07) safe: never "not performed" over an SBP entry, never an older one blindly', () => {
    const anchor5 = card('000005', 1000, '250116090000');
    const olderSbp = sbp('000009', 1500, '250116093000');
    const oldRefs = { request: purchase1500, ...after(anchor5), notBeforeTime };
    // Without an SBP anchor nothing tells SBP receipt 9 from ours by number: it is older than the time bound, and
    // ours may be it under a terminal clock further behind, so the outcome stays unknown.
    expect(resolveFromReport(log(anchor5, olderSbp), oldRefs)).toEqual({ resolution: 'undetermined', why: 'kind-unanchored' });
    // An SBP payment below card receipt 5, within the bound: one match decides, as in the time-bound search.
    const paid = sbp('000002', 1500, '250116102000');
    expect(resolveFromReport(log(anchor5, olderSbp, paid), oldRefs)).toEqual({ resolution: 'approved', transaction: paid });
    // Two within the bound: an operator decides.
    const twin = sbp('000003', 1500, '250116101500');
    expect(resolveFromReport(log(anchor5, paid, twin), oldRefs)).toMatchObject({ resolution: 'ambiguous', candidates: [paid, twin] });
    // No SBP entry of that amount at all in an unbroken log, nor a card one above the anchor: it never ran.
    expect(resolveFromReport(log(anchor5, sbp('000009', 700, '250116101500')), oldRefs)).toEqual({ resolution: 'not-found' });
  });

  it('counts card entries above the card anchor and SBP entries above the SBP anchor, and leaves both to an operator', () => {
    const sbpAnchor = sbp('000010', 700, '250116091000');
    const byCard = card('000151', 1500, '250116101200');
    const bySbp = sbp('000011', 1500, '250116101300');
    const criteria = { request: purchase1500, ...after(cardAnchor), ...afterSbp(sbpAnchor), notBeforeTime };
    expect(resolveFromReport(log(cardAnchor, sbpAnchor, byCard), criteria)).toEqual({ resolution: 'approved', transaction: byCard });
    expect(resolveFromReport(log(cardAnchor, sbpAnchor, byCard, bySbp), criteria)).toMatchObject({ resolution: 'ambiguous', candidates: [byCard, bySbp] });
    // Time only breaks the tie.
    const earlier = card('000151', 1500, '250116095000');
    expect(resolveFromReport(log(cardAnchor, sbpAnchor, earlier, bySbp), criteria)).toEqual({ resolution: 'approved', transaction: bySbp });
  });

  it('proves the log unbroken by the SBP anchor when there was no card entry', () => {
    const sbpAnchor = sbp('000004', 700, '250116091000');
    const criteria = { request: purchase1500, afterSeq: '000000', ...afterSbp(sbpAnchor), notBeforeTime };
    expect(resolveFromReport(log(sbpAnchor), criteria)).toEqual({ resolution: 'not-found' });
    const byCard = card('000001', 1500, '250116100500');
    expect(resolveFromReport(log(sbpAnchor, byCard), criteria)).toEqual({ resolution: 'approved', transaction: byCard });
  });

  it('does not number SBP entries after an SBP anchor a close removed before the card anchor was recorded', () => {
    // SBP receipt 10 was closed away (another client's close), the counter restarted; card receipt 150 came later.
    const goneSbp = sbp('000010', 700, '250116080000');
    const criteria = { request: purchase1500, ...after(cardAnchor), ...afterSbp(goneSbp), notBeforeTime };
    const paid = sbp('000003', 1500, '250116102000');
    expect(resolveFromReport(log(cardAnchor, paid), criteria)).toEqual({ resolution: 'approved', transaction: paid });
    // Behind the time bound it may be ours or older: unknown, not "not performed".
    expect(resolveFromReport(log(cardAnchor, sbp('000003', 1500, '250116095000')), criteria)).toEqual({ resolution: 'undetermined', why: 'kind-unanchored' });
  });

  it('falls back to the time bound when neither anchor is in the log (emptied by a close)', () => {
    const criteria = { request: purchase1500, ...after(cardAnchor), ...afterSbp(sbp('000010', 700, '250116080000')), notBeforeTime };
    expect(resolveFromReport(log(), criteria)).toEqual({ resolution: 'undetermined', why: 'log-emptied' });
    const paid = sbp('000001', 1500, '250116102000');
    expect(resolveFromReport(log(paid), criteria)).toEqual({ resolution: 'approved', transaction: paid });
  });
});

describe(`${resolveFromReport.name}: requests that run one way only`, () => {
  const cardAnchor = card('000005', 1000, '250116090000');
  const sbpAnchor = sbp('000002', 700, '250116091000');

  it('an SBP payment (force-sbp) counts SBP entries only: a card payment of the same amount is not it', () => {
    const request: TransactionRequest = { type: 'purchase', amount: 1500, forceSbp: true };
    const criteria = { request, ...after(cardAnchor), ...afterSbp(sbpAnchor), notBeforeTime };
    expect(resolveFromReport(log(cardAnchor, sbpAnchor, card('000006', 1500, '250116102000')), criteria)).toEqual({ resolution: 'not-found' });
    const paid = sbp('000003', 1500, '250116102000');
    expect(resolveFromReport(log(cardAnchor, sbpAnchor, paid), criteria)).toEqual({ resolution: 'approved', transaction: paid });
  });

  it('an SBP refund (force-sbp) is found by the SBP anchor below the card one', () => {
    const request: TransactionRequest = { type: 'refund', amount: 700, rrn: 'S000002', forceSbp: true };
    const refunded = sbp('000003', 700, '250116102000', 'refund');
    const criteria = { request, ...after(cardAnchor), ...afterSbp(sbpAnchor), notBeforeTime };
    expect(resolveFromReport(log(cardAnchor, sbpAnchor, refunded), criteria)).toEqual({ resolution: 'approved', transaction: refunded });
  });

  it('card-only requests (refund without force-sbp, void) are decided by the card anchor over every entry, as before', () => {
    const refund: TransactionRequest = { type: 'refund', amount: 700, rrn: 'C000005' };
    // An SBP refund of the same amount numbered below the card anchor: not counted, the refund was not performed.
    expect(resolveFromReport(log(cardAnchor, sbp('000003', 700, '250116102000', 'refund')), { request: refund, ...after(cardAnchor), notBeforeTime })).toEqual({
      resolution: 'not-found',
    });
    const refunded = card('000006', 700, '250116102000', 'refund');
    expect(resolveFromReport(log(cardAnchor, refunded), { request: refund, ...after(cardAnchor), notBeforeTime })).toEqual({
      resolution: 'approved',
      transaction: refunded,
    });
    const voided = card('000006', 1000, '250116102000', 'purchasereversal');
    expect(resolveFromReport(log(cardAnchor, voided), { request: { type: 'void', number: '000005' }, ...after(cardAnchor), notBeforeTime })).toEqual({
      resolution: 'approved',
      transaction: voided,
    });
    expect(resolveFromReport(log(cardAnchor), { request: { type: 'void', number: '000005' }, ...after(cardAnchor), notBeforeTime })).toEqual({
      resolution: 'not-found',
    });
  });
});
