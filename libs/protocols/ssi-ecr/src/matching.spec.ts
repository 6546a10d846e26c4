import { provesNotExecuted, type IdleEvidence } from './matching';
import type { TransactionResult } from './results';

const result = (invoiceNum: string, extra: Partial<TransactionResult> = {}): TransactionResult => ({
  error: false,
  errorCode: '',
  errorDescription: '',
  originalTrnName: 'Purchase',
  transactionResult: 'APPROVED_ONLINE',
  transAmount: 24500,
  invoiceNum,
  rrn: `rrn-${invoiceNum}`,
  ...extra,
});

describe(provesNotExecuted.name, () => {
  const before = result('000041');
  const idle = (overrides: Partial<IdleEvidence>): IdleEvidence => ({
    baseline: before,
    statusBefore: 'S00',
    lastResult: before,
    statusAfter: 'S00',
    ...overrides,
  });

  it.each<[string, Partial<IdleEvidence>, ReturnType<typeof provesNotExecuted>]>([
    ['idle, buffer equal to the baseline → never executed', {}, { proven: true }],
    ['idle, a second read of the same buffer (new object, same fields) → never executed', { lastResult: { ...before } }, { proven: true }],
    ['idle, the buffer was empty before and still is (E20) → never executed', { baseline: null, lastResult: null }, { proven: true }],
    ['busy before the read (an operation is running) → unknown', { statusBefore: 'S01' }, { proven: false, reason: 'TERMINAL_BUSY' }],
    ['busy after the read (an operation started in between) → unknown', { statusAfter: 'S02' }, { proven: false, reason: 'TERMINAL_BUSY' }],
    ['Z report required (S06) is not idle for this proof → unknown', { statusBefore: 'S06', statusAfter: 'S06' }, { proven: false, reason: 'TERMINAL_BUSY' }],
    ['idle, a different result (ours, or one done by hand) → unknown', { lastResult: result('000042') }, { proven: false, reason: 'RESULT_CHANGED' }],
    [
      'idle, a declined result of the same amount after an approved baseline → unknown',
      { lastResult: { ...before, error: true, errorCode: 'E16' } },
      { proven: false, reason: 'RESULT_CHANGED' },
    ],
    ['idle, empty before but a result now → unknown', { baseline: null, lastResult: result('000001') }, { proven: false, reason: 'RESULT_CHANGED' }],
    ['idle, a result before but empty now (the terminal was reset) → unknown', { lastResult: null }, { proven: false, reason: 'RESULT_CHANGED' }],
    ['baseline unknown (never read before sending) → unknown', { baseline: undefined }, { proven: false, reason: 'BASELINE_UNKNOWN' }],
  ])('%s', (_, overrides, expected) => {
    expect(provesNotExecuted(idle(overrides))).toEqual(expected);
  });
});
