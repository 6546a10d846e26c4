import { SsiEcrClient, terminalError } from './client';
import { sleep } from './clock';
import { decodeResponse, encodeMessage, encodeResponse, type SsiResponse } from './codec';
import type { TerminalStatus } from './codes';
import { SsiEcrError } from './errors';
import { FrameDecoder } from './framing';
import { parseJsonData } from './json';
import type { SsiRequest } from './messages';
import { SsiEcrRunner, type OperationOutcome, type OperationTicket } from './operation';
import { parseTransactionResult } from './results';
import type { ByteTransport } from './transport';
import { RESPONSE_EXAMPLES } from './testing/vectors';
import { VirtualClock } from './testing/virtual-clock';

/**
 * A scripted terminal behind the client's typed helpers: GetStatus answers `statuses` one by one (the last one
 * repeats), GetLastResult answers `buffer`, GetResultByUid answers `byUid` (E20 for another uid; E05 when the
 * terminal predates the extension). Only what FinancialOperation's recovery asks for; time is virtual.
 */
class ScriptedTerminal {
  readonly clock = new VirtualClock();
  readonly asked: string[] = [];
  /** `asked`, with the clock time of each request. */
  readonly askedAt: [string, number][] = [];

  constructor(
    private statuses: TerminalStatus[],
    public buffer: SsiResponse,
    private readonly byUid: Record<string, SsiResponse> | 'E05' = {},
  ) {}

  async getStatus(): Promise<TerminalStatus> {
    this.ask('GetStatus');
    return this.statuses.length > 1 ? (this.statuses.shift() as TerminalStatus) : (this.statuses[0] as TerminalStatus);
  }

  async getLastResult() {
    this.ask('GetLastResult');
    if (this.buffer.error && this.buffer.params === undefined) throw terminalError(this.buffer);
    return parseTransactionResult(this.buffer);
  }

  async call(request: SsiRequest): Promise<SsiResponse> {
    this.ask(request.method);
    if (request.method === 'GetLastResult') return this.buffer;
    if (request.method === 'GetResultByUid') {
      if (this.byUid === 'E05') return decodeResponse({ method: request.method, error: true, errorCode: 'E05', errorDescription: 'Unknown method' });
      return (
        this.byUid[request.params.transactionUid] ??
        decodeResponse({ method: request.method, error: true, errorCode: 'E20', errorDescription: 'No last transactions found' })
      );
    }
    throw new Error(`unexpected ${request.method}`);
  }

  private ask(method: string): void {
    this.asked.push(method);
    this.askedAt.push([method, this.clock.now()]);
  }
}

const lastResult = (invoiceNum: string, extra: Record<string, string> = {}): SsiResponse => {
  const example = JSON.parse(RESPONSE_EXAMPLES['5.5.1 GetLastResult']) as { params: Record<string, unknown> };
  return decodeResponse({ ...example, params: { ...example.params, invoiceNum, ...extra } });
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

  it('a GetLastResult that fails with another error (E00, no result) is not an empty buffer: unknown, never NOT_EXECUTED', async () => {
    // The buffer was empty (E20) before the request; the terminal ran it, and the proof's read fails. Read as "still
    // empty", this was NOT_EXECUTED (failed) for a purchase the terminal had approved.
    const failed = decodeResponse({ method: 'GetLastResult', error: true, errorCode: 'E00', errorDescription: 'General error' });
    const outcome = await recover(new ScriptedTerminal(['S00'], failed), { baseline: null });
    expect(notExecuted(outcome)).toEqual(['unknown', 'RESULT_NOT_OURS']);
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

describe(`${SsiEcrRunner.name}.recover of a request sent with a transactionUid (later revision)`, () => {
  const ours = 'uid-ours-1';
  const recover = (terminal: ScriptedTerminal): Promise<OperationOutcome> =>
    new SsiEcrRunner(terminal as unknown as SsiEcrClient, { uidSupport: 'supported', pollBackoff: () => 0, recoveryTimeoutMs: 1_000 }).recover({
      request: purchase,
      transactionUid: ours,
      baseline: parseTransactionResult(lastResult('000041')),
      startedAt: 0,
    });
  const verdict = (outcome: OperationOutcome) =>
    outcome.kind === 'rejected' ? outcome.error.code : [outcome.kind, outcome.kind === 'unknown' ? outcome.reason : outcome.ticket.transactionUid];

  it('GetResultByUid knows our uid → judged from that result (approved)', async () => {
    const terminal = new ScriptedTerminal(['S00'], lastResult('000043'), { [ours]: lastResult('000042', { transactionUid: ours }) });
    expect(verdict(await recover(terminal))).toEqual(['approved', ours]);
  });

  // A standalone purchase done by hand after ours was lost: same method and amount, different from the baseline.
  it.each([
    ['carries no uid (done by hand on the terminal)', {}],
    ['carries another uid', { transactionUid: 'uid-someone-else' }],
  ])('GetResultByUid does not know our uid and GetLastResult shows the same purchase that %s → unknown, never credited to ours', async (_name, extra) => {
    const terminal = new ScriptedTerminal(['S00'], lastResult('000042', extra));
    expect(verdict(await recover(terminal))).toEqual(['unknown', 'RESULT_NOT_OURS']);
  });

  it('GetResultByUid does not know our uid and the buffer still holds the baseline → NOT_EXECUTED', async () => {
    expect(verdict(await recover(new ScriptedTerminal(['S00'], lastResult('000041'))))).toBe('NOT_EXECUTED');
  });

  it('a terminal that answers E05 to GetResultByUid (no extension after all) is judged by the baseline, as without uids', async () => {
    const terminal = new ScriptedTerminal(['S00'], lastResult('000042'), 'E05');
    expect(verdict(await recover(terminal))).toEqual(['approved', ours]);
    expect(terminal.asked).toEqual(['GetStatus', 'GetResultByUid', 'GetLastResult']);
  });
});

/**
 * A terminal behind a real SsiEcrClient, on a virtual clock; every connect() is a new link. A Purchase sent
 * while `stickNextRequest` is set stays in its link unread (bytes in a socket or serial buffer) and reaches the
 * terminal `surfacesAfterMs` after that link closed (never when undefined); the terminal then runs it (S01) for 1 s
 * and approves it.
 */
class LinkedTerminal {
  readonly clock = new VirtualClock();
  status: TerminalStatus = 'S00';
  buffer: SsiResponse = lastResult('000041');
  stickNextRequest = true;
  /** Answers to the next GetLastResult requests, before `buffer` (a read that fails). */
  readonly lastResultAnswers: SsiResponse[] = [];
  readonly executed: string[] = [];
  /** Clock times at which the terminal answered a request, by method. */
  readonly answeredAt: [string, number][] = [];
  linkClosedAt: number | undefined;

  constructor(private readonly surfacesAfterMs: number | undefined) {}

  async connect(): Promise<ByteTransport> {
    const decoder = new FrameDecoder();
    let onData: ((chunk: Uint8Array) => void) | undefined;
    const onClose: ((error?: Error) => void)[] = [];
    let stuck: SsiRequest | undefined;
    let closed = false;
    return {
      write: (bytes) => {
        if (closed) throw new SsiEcrError('CONNECTION_CLOSED', 'transport is closed');
        for (const event of decoder.push(bytes)) {
          if (event.kind !== 'frame') continue;
          const request = parseJsonData(event.frame.data) as unknown as SsiRequest;
          if (request.method === 'Purchase' && this.stickNextRequest) {
            this.stickNextRequest = false;
            stuck = request;
            continue;
          }
          const response = this.answer(request);
          queueMicrotask(() => {
            if (!closed) onData?.(encodeMessage(encodeResponse(response)));
          });
        }
      },
      onData: (listener) => {
        onData = listener;
      },
      onClose: (listener) => {
        if (closed) listener();
        else onClose.push(listener);
      },
      close: () => {
        if (closed) return;
        closed = true;
        this.linkClosedAt = this.clock.now();
        const request = stuck;
        if (request && this.surfacesAfterMs !== undefined) this.clock.setTimer(() => this.run(request), this.surfacesAfterMs);
        onClose.splice(0).forEach((listener) => listener());
      },
    };
  }

  private run(request: SsiRequest): void {
    this.executed.push(request.method);
    this.status = 'S01';
    this.clock.setTimer(() => {
      this.status = 'S00';
      this.buffer = lastResult('000042');
    }, 1_000);
  }

  private answer(request: SsiRequest): SsiResponse {
    this.answeredAt.push([request.method, this.clock.now()]);
    const ok = { method: request.method, error: false, errorCode: '', errorDescription: '' };
    switch (request.method) {
      case 'GetStatus':
        return { ...ok, status: this.status };
      case 'GetLastResult':
        if (this.status !== 'S00') return { ...ok, error: true, errorCode: 'E06', errorDescription: 'Terminal Busy' };
        return this.lastResultAnswers.shift() ?? this.buffer;
      default:
        return { ...ok, params: {} };
    }
  }
}

describe(`${SsiEcrRunner.name}: the baseline read before sending`, () => {
  const setup = (terminal: LinkedTerminal) =>
    new SsiEcrRunner(new SsiEcrClient({ connect: () => terminal.connect(), clock: terminal.clock, minRequestGapMs: 0, responseTimeoutMs: 5_000 }), {
      uidSupport: 'unsupported',
      pollBackoff: () => 250,
      lostRequestSettleMs: 5_000,
    });

  it('a baseline read that fails (E00, no result) rejects the operation unsent: an older result of the same amount is never taken for it', async () => {
    // The buffer holds an earlier purchase of the same amount (000041); the baseline read fails once. Read as an empty
    // buffer, the baseline was "nothing": the request was sent, lost unread with its link, and the older result
    // matched it (approved, never run on the terminal).
    const terminal = new LinkedTerminal(undefined);
    terminal.lastResultAnswers.push({ method: 'GetLastResult', error: true, errorCode: 'E00', errorDescription: 'General error' });
    const outcome = await setup(terminal).run(purchase);
    expect(outcome.kind === 'rejected' && outcome.error.code).toBe('TERMINAL_ERROR');
    expect(outcome.kind === 'rejected' && outcome.error.message).toContain('E00');
    // Nothing was sent: the terminal never saw a Purchase.
    expect(terminal.answeredAt.map(([method]) => method)).toEqual(['GetLastResult']);
    expect(terminal.executed).toEqual([]);
  });

  it('an empty buffer (E20) is a baseline: the request is sent', async () => {
    const terminal = new LinkedTerminal(undefined);
    terminal.stickNextRequest = false;
    terminal.lastResultAnswers.push({ method: 'GetLastResult', error: true, errorCode: 'E20', errorDescription: 'No last transactions found' });
    const outcome = await setup(terminal).run(purchase);
    expect(terminal.answeredAt.map(([method]) => method).slice(0, 2)).toEqual(['GetLastResult', 'Purchase']);
    expect(outcome.kind === 'unknown' || outcome.kind === 'approved').toBe(true);
  });
});

describe(`${SsiEcrRunner.name}: the "never executed" proof waits for a lost request to surface`, () => {
  const SETTLE_MS = 5_000;
  const setup = (terminal: LinkedTerminal) => {
    // The ack timeout equals the settle window, as in the driver (responseTimeoutMs 5 s, lostRequestSettleMs 5 s).
    const client = new SsiEcrClient({ connect: () => terminal.connect(), clock: terminal.clock, minRequestGapMs: 0, responseTimeoutMs: 5_000 });
    return new SsiEcrRunner(client, { uidSupport: 'unsupported', pollBackoff: () => 250, lostRequestSettleMs: SETTLE_MS });
  };

  it('a slow claim, then an ack lost with its link: a request that reaches the terminal after the link closed is unknown, not NOT_EXECUTED', async () => {
    const terminal = new LinkedTerminal(3_000);
    let claimedAt = 0;
    const outcome = await setup(terminal).run(purchase, {
      // Persisting the ticket (the database claim) takes longer than the settle window.
      onSending: async () => {
        await sleep(terminal.clock, 6_000);
        claimedAt = terminal.clock.now();
      },
    });
    // Not failed: the terminal did run our purchase, 3 s after the link that carried it was closed (the ack timed out).
    expect(outcome.kind === 'rejected' ? outcome.error.code : outcome.kind).toBe('unknown');
    expect(terminal.executed).toEqual(['Purchase']);
    // The ticket says when the request was written: after the claim, not before it.
    expect(outcome.kind === 'unknown' && outcome.ticket.startedAt).toBe(claimedAt);
    // The proof's reads came no sooner than the settle window after the link closed.
    const firstProofRead = terminal.answeredAt.filter(([method]) => method === 'GetLastResult')[2];
    expect(firstProofRead?.[1]).toBeGreaterThanOrEqual(terminal.linkClosedAt! + SETTLE_MS);
  });

  it('a request that never surfaces is still proven never executed once the settle window after the link closed is over', async () => {
    const terminal = new LinkedTerminal(undefined);
    const outcome = await setup(terminal).run(purchase);
    expect(outcome.kind === 'rejected' && outcome.error.code).toBe('NOT_EXECUTED');
    expect(terminal.executed).toEqual([]);
    expect(terminal.clock.now()).toBeGreaterThanOrEqual(terminal.linkClosedAt! + SETTLE_MS);
  });

  it('recover() does not know when the link that carried the request closed: the proof waits the settle window from its own start', async () => {
    const terminal = new ScriptedTerminal(['S00'], lastResult('000041'));
    const runner = new SsiEcrRunner(terminal as unknown as SsiEcrClient, { uidSupport: 'unsupported', pollBackoff: () => 0, lostRequestSettleMs: SETTLE_MS });
    const startedAt = terminal.clock.now();
    const outcome = await runner.recover({ request: purchase, startedAt: startedAt - 60_000, baseline: parseTransactionResult(lastResult('000041')) });
    expect(outcome.kind === 'rejected' && outcome.error.code).toBe('NOT_EXECUTED');
    const proof = terminal.askedAt.slice(-3);
    expect(proof.map(([method]) => method)).toEqual(['GetStatus', 'GetLastResult', 'GetStatus']);
    expect(proof[0]![1]).toBeGreaterThanOrEqual(startedAt + SETTLE_MS);
  });
});
