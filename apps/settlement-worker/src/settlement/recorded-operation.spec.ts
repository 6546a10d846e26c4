import { recordedOperation } from './settlement.service';

const row = (type: string, amount: bigint | null, answered: number | null, originalAmount: bigint | null = 1000n) => ({
  id: 'op',
  type,
  amount,
  cashbackAmount: null,
  result: answered === null ? null : { amount: answered, data: null },
  rrn: null,
  approvalCode: null,
  original: { type: 'PURCHASE', amount: originalAmount },
});

describe(recordedOperation.name, () => {
  it('counts a void as what the terminal answered it reversed, not the amount computed when it was created', () => {
    // A JPAY void created while a refund of 300 was in flight was recorded with 700 (what was left); the refund then
    // failed and the terminal voided all 1,000 (reconciliation reported a mismatch of 300 on an agreeing day).
    expect(recordedOperation(row('VOID', 700n, 1000)).amount).toBe(1000);
    expect(recordedOperation(row('PREAUTH_CANCEL', 1000n, 900)).amount).toBe(900);
    // No answered amount: the recorded one, else the original's.
    expect(recordedOperation(row('VOID', 700n, null)).amount).toBe(700);
    expect(recordedOperation(row('VOID', null, null)).amount).toBe(1000);
  });

  it('counts every other type as recorded (the request named its amount)', () => {
    expect(recordedOperation(row('REFUND', 300n, 250)).amount).toBe(300);
    expect(recordedOperation(row('PURCHASE', 1500n, 1500)).amount).toBe(1500);
  });
});
