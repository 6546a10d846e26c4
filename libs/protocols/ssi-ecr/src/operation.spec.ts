import type { SsiEcrClient } from './client';
import { systemClock } from './clock';
import { decodeResponse, type SsiResponse } from './codec';
import type { TerminalStatus } from './codes';
import { terminalError } from './client';
import type { SsiRequest } from './messages';
import { SsiEcrRunner, type OperationOutcome, type OperationTicket } from './operation';
import { parseTransactionResult } from './results';
import { RESPONSE_EXAMPLES } from './testing/vectors';

/**
 * A scripted terminal behind the client's typed helpers: GetStatus answers `statuses` one by one (the last one
 * repeats), GetLastResult answers `buffer`. Only what FinancialOperation's recovery asks for.
 */
class ScriptedTerminal {
  readonly clock = systemClock;
  readonly asked: string[] = [];

  constructor(
    private statuses: TerminalStatus[],
    public buffer: SsiResponse,
  ) {}

  async getStatus(): Promise<TerminalStatus> {
    this.asked.push('GetStatus');
    return this.statuses.length > 1 ? (this.statuses.shift() as TerminalStatus) : (this.statuses[0] as TerminalStatus);
  }

  async getLastResult() {
    this.asked.push('GetLastResult');
    if (this.buffer.error && this.buffer.params === undefined) throw terminalError(this.buffer);
    return parseTransactionResult(this.buffer);
  }

  async call(request: SsiRequest): Promise<SsiResponse> {
    this.asked.push(request.method);
    if (request.method !== 'GetLastResult') throw new Error(`unexpected ${request.method}`);
    return this.buffer;
  }
}

const lastResult = (invoiceNum: string): SsiResponse => {
  const example = JSON.parse(RESPONSE_EXAMPLES['5.5.1 GetLastResult']) as { params: Record<string, unknown> };
  return decodeResponse({ ...example, params: { ...example.params, invoiceNum } });
};
const EMPTY = decodeResponse({ method: 'GetLastResult', error: true, errorCode: 'E20', errorDescription: 'No last transactions found' });
const purchase: SsiRequest<'Purchase'> = { method: 'Purchase', params: { transAmount: 24500, transCurrency: '980' } };

describe(`${SsiEcrRunner.name}.recover of a request lost unread`, () => {
  const recover = (terminal: ScriptedTerminal, ticket: Partial<OperationTicket>): Promise<OperationOutcome> =>
    new SsiEcrRunner(terminal as unknown as SsiEcrClient, { uidSupport: 'unsupported', pollBackoff: () => 0, recoveryTimeoutMs: 1_000 }).recover({
      request: purchase,
      startedAt: 0,
      ...ticket,
    });
  const baseline = parseTransactionResult(lastResult('000041'));
  const notExecuted = (outcome: OperationOutcome) =>
    outcome.kind === 'rejected' ? outcome.error.code : [outcome.kind, outcome.kind === 'unknown' && outcome.reason];

  it('idle and the buffer still holds the baseline → rejected NOT_EXECUTED (nothing was charged)', async () => {
    const terminal = new ScriptedTerminal(['S00'], lastResult('000041'));
    const outcome = await recover(terminal, { baseline });
    expect(notExecuted(outcome)).toBe('NOT_EXECUTED');
    // The proof is taken on a fresh read, with the terminal idle on both sides of it.
    expect(terminal.asked.slice(-3)).toEqual(['GetStatus', 'GetLastResult', 'GetStatus']);
  });

  it('idle and the buffer was empty before and still is (E20) → rejected NOT_EXECUTED', async () => {
    const outcome = await recover(new ScriptedTerminal(['S00'], EMPTY), { baseline: null });
    expect(notExecuted(outcome)).toBe('NOT_EXECUTED');
  });

  it('busy again at the proof (an operation started on the terminal meanwhile) → unknown', async () => {
    const outcome = await recover(new ScriptedTerminal(['S00', 'S01'], lastResult('000041')), { baseline });
    expect(notExecuted(outcome)).toEqual(['unknown', 'RESULT_NOT_OURS']);
  });

  it('a different result that is not ours (a standalone operation done by hand) → unknown', async () => {
    const byHand = decodeResponse({
      ...JSON.parse(RESPONSE_EXAMPLES['5.5.1 GetLastResult']),
      params: { originalTrnName: 'Refund', transAmount: '500', invoiceNum: '000042' },
    });
    const outcome = await recover(new ScriptedTerminal(['S00'], byHand), { baseline });
    expect(notExecuted(outcome)).toEqual(['unknown', 'RESULT_NOT_OURS']);
  });

  it('baseline unknown → unknown, even with the terminal idle', async () => {
    const outcome = await recover(new ScriptedTerminal(['S00'], lastResult('000041')), {});
    expect(notExecuted(outcome)).toEqual(['unknown', 'RESULT_NOT_OURS']);
  });

  it('a changed buffer that is ours is still approved (the proof never overrides a match)', async () => {
    const outcome = await recover(new ScriptedTerminal(['S00'], lastResult('000042')), { baseline });
    expect(outcome.kind).toBe('approved');
  });
});
