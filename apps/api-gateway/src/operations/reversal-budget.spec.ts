import { decideReversal, type LiveReversal } from './reversal-budget';

const original = { id: 'o', amount: 1000n };
const refused = (...args: Parameters<typeof decideReversal>) => decideReversal(...args).refusal;
const live = (type: string, amount: bigint | null, state = 'APPROVED'): LiveReversal => ({ id: `${type}-${amount}`, type, state, amount });

describe(decideReversal.name, () => {
  it('lets refunds, partial voids and SBP refunds take back up to what is left of the original, in flight and unknown ones counted', () => {
    expect(refused('refund', 1000, original, [])).toBeNull();
    expect(refused('refund', 400, original, [live('REFUND', 300n), live('PARTIAL_VOID', 300n, 'UNKNOWN')])).toBeNull();
    const refusal = refused('refund', 401, original, [live('REFUND', 300n), live('PARTIAL_VOID', 300n, 'SENT')]);
    expect(refusal).toMatchObject({
      code: 'AMOUNT_EXCEEDS_ORIGINAL',
      details: { field: 'amount', originalOperationId: 'o', originalAmount: 1000, reversedAmount: 600, remainingAmount: 400 },
    });
    expect(refused('partial_void', 1001, original, [])).toMatchObject({ code: 'AMOUNT_EXCEEDS_ORIGINAL' });
    expect(refused('sbp_refund', 1, original, [live('SBP_REFUND', 1000n, 'PENDING')])).toMatchObject({
      code: 'AMOUNT_EXCEEDS_ORIGINAL',
      details: { remainingAmount: 0 },
    });
  });

  it("a void without an amount takes the original's whole amount: refused after any refund, and it leaves nothing", () => {
    expect(refused('void', undefined, original, [])).toBeNull();
    expect(refused('void', undefined, original, [live('REFUND', 1n, 'IN_PROGRESS')])).toMatchObject({ code: 'AMOUNT_EXCEEDS_ORIGINAL' });
    // A void recorded without an amount (an older row) counts as the original's amount.
    expect(refused('refund', 1, original, [live('VOID', null)])).toMatchObject({ code: 'AMOUNT_EXCEEDS_ORIGINAL' });
    expect(refused('void', 600, original, [live('REFUND', 400n)])).toBeNull();
  });

  it('a JPAY void without an amount takes what is left (§8.9), and is refused once nothing is', () => {
    expect(decideReversal('void', undefined, original, [live('PARTIAL_VOID', 300n)], 'rest')).toEqual({ refusal: null, amount: 700n });
    expect(decideReversal('void', undefined, original, [live('PARTIAL_VOID', 300n)], 'whole').refusal).toMatchObject({ code: 'AMOUNT_EXCEEDS_ORIGINAL' });
    expect(refused('void', undefined, original, [live('PARTIAL_VOID', 1000n, 'UNKNOWN')], 'rest')).toMatchObject({
      code: 'AMOUNT_EXCEEDS_ORIGINAL',
      details: { remainingAmount: 0 },
    });
    expect(decideReversal('void', undefined, original, [], 'whole')).toEqual({ refusal: null, amount: 1000n });
  });

  it('closes a preauthorisation once: one capture or cancel, a capture at most the preauthorised amount', () => {
    expect(refused('preauth_capture', 1000, original, [])).toBeNull();
    expect(refused('preauth_capture', 1001, original, [])).toMatchObject({ code: 'AMOUNT_EXCEEDS_ORIGINAL' });
    expect(refused('preauth_cancel', undefined, original, [])).toBeNull();
    const captured = refused('preauth_cancel', undefined, original, [live('PREAUTH_CAPTURE', 500n)]);
    expect(captured).toMatchObject({
      code: 'ORIGINAL_ALREADY_CLOSED',
      message: 'the preauthorisation is already captured',
      details: { originalOperationId: 'o', by: [{ id: 'PREAUTH_CAPTURE-500', type: 'preauth_capture', state: 'approved' }] },
    });
    expect(refused('preauth_capture', 10, original, [live('PREAUTH_CANCEL', 1000n, 'UNKNOWN')])?.message).toBe(
      'the preauthorisation is already being canceled (operation PREAUTH_CANCEL-1000 is unknown)',
    );
  });

  it('has nothing to check for an original without an amount', () => {
    expect(refused('refund', 5, { id: 'o', amount: null }, [])).toBeNull();
  });
});
