import {
  SsiEcrClient,
  SsiEcrRunner,
  isSsiEcrError,
  tcpTransportFactory,
  type FinancialMethod,
  type OperationOutcome,
  type RunnerOptions,
  type SsiRequest,
  type StatusEvent,
} from '@payorch/ssi-ecr';

import { SsiEcrSimulator, type SsiEcrSimulatorOptions } from './simulator';

const FAST: RunnerOptions = {
  uidSupport: 'auto',
  pollBackoff: () => 1,
  busyBackoff: () => 1,
  operationTimeoutMs: 5000,
  recoveryTimeoutMs: 1500,
  // Real time here: the settle window itself is specified on a virtual clock (operation.spec.ts).
  lostRequestSettleMs: 50,
};

let sim: SsiEcrSimulator;
let client: SsiEcrClient;

async function setup(simOptions: SsiEcrSimulatorOptions = {}, runnerOptions: RunnerOptions = {}, port = 0): Promise<SsiEcrRunner> {
  sim = new SsiEcrSimulator({ ...simOptions, port });
  const address = await sim.start();
  client = new SsiEcrClient({
    connect: tcpTransportFactory({ host: '127.0.0.1', port: address.port, connectTimeoutMs: 500 }),
    minRequestGapMs: 0,
    responseTimeoutMs: 1000,
  });
  return new SsiEcrRunner(client, { ...FAST, ...runnerOptions });
}

afterEach(async () => {
  client?.close();
  await sim?.stop();
});

const purchase = (transAmount: number): SsiRequest<'Purchase'> => ({ method: 'Purchase', params: { transAmount, transCurrency: '980' } });
const kindOf = (outcome: OperationOutcome) =>
  outcome.kind === 'approved' || outcome.kind === 'declined' || outcome.kind === 'cancelled'
    ? [outcome.kind, outcome.result.transactionResult, outcome.result.errorCode]
    : [outcome.kind];

describe('SsiEcrRunner against the simulator', () => {
  it('Purchase: ack → status events S01…S07 → S00 → approved result that is ours', async () => {
    const runner = await setup();
    const events: StatusEvent[] = [];
    const outcome = await runner.run(purchase(24500), { onStatus: (e) => events.push(e) });
    expect(events.map((e) => e.status)).toEqual(['S01', 'S02', 'S03', 'S04', 'S05', 'S07', 'S00']);
    expect(events.map((e) => e.phase)).toContain('waiting_for_card');
    expect(kindOf(outcome)).toEqual(['approved', 'APPROVED_ONLINE', '']);
    expect(outcome.kind === 'approved' && [outcome.result.transAmount, outcome.result.originalTrnName, outcome.result.panMasked]).toEqual([
      24500,
      'Purchase',
      '440272******0184',
    ]);
  });

  const ok = <M extends FinancialMethod>(request: SsiRequest<M>) => request;
  it.each([
    ok({ method: 'Refund', params: { transAmount: 1000, transCurrency: '980', rrn: '987612344098' } }),
    ok({ method: 'CashBack', params: { transAmount: 2000, cashAmount: 700, transCurrency: '980' } }),
    ok({ method: 'Preauthorization', params: { transAmount: 3000, transCurrency: '980' } }),
    ok({ method: 'SalePreauth', params: { transAmount: 3000, endAmount: 2700, transCurrency: '980', rrn: '100000000001', authCode: 'A00001' } }),
    ok({ method: 'Cash', params: { transAmount: 4000, transCurrency: '980' } }),
    ok({ method: 'Deposit', params: { transAmount: 5000, transCurrency: '980', merchantId: 'EXIM CASH      ' } }),
    ok({ method: 'Balance', params: { transCurrency: '980' } }),
    ok({ method: 'Echo', params: {} }),
  ])('$method is approved', async (request) => {
    const runner = await setup();
    const outcome = await runner.run(request);
    expect(kindOf(outcome)).toEqual(['approved', 'APPROVED_ONLINE', '']);
    expect(outcome.kind === 'approved' && outcome.result.originalTrnName).toBe(request.method);
  });

  it.each(['Void', 'VoidPreauth'] as const)('%s of an earlier purchase is approved and voids its amount', async (method) => {
    const runner = await setup();
    const paid = await runner.run(purchase(1200));
    const invoiceNum = paid.kind === 'approved' ? paid.result.invoiceNum! : '';
    const outcome = await runner.run({ method, params: { invoiceNum } });
    expect(kindOf(outcome)).toEqual(['approved', 'APPROVED_ONLINE', '']);
    expect(outcome.kind === 'approved' && outcome.result.transAmount).toBe(1200);
  });

  it('PartialVoid of an earlier purchase is approved for the partial amount', async () => {
    const runner = await setup();
    const paid = await runner.run(purchase(1200));
    const outcome = await runner.run({
      method: 'PartialVoid',
      params: { invoiceNum: paid.kind === 'approved' ? paid.result.invoiceNum! : '', transAmount: 200 },
    });
    expect(outcome.kind === 'approved' && outcome.result.transAmount).toBe(200);
  });

  it('Void of an unknown invoice is declined (FAILED, E21)', async () => {
    const runner = await setup();
    expect(kindOf(await runner.run({ method: 'Void', params: { invoiceNum: '999999' } }))).toEqual(['declined', 'FAILED', 'E21']);
  });

  it.each([
    [151, ['declined', 'DECLINED_ONLINE', 'E21']],
    [152, ['declined', 'PIN_ERROR', 'E11']],
    [153, ['declined', 'NO_CONNECTION', 'E10']],
    [154, ['declined', 'FAILED', 'E16']],
    [155, ['cancelled', 'CANCELLED', 'E12']],
    [159, ['approved', 'APPROVED_OFFLINE', '']],
  ])('scenario amount %d → %j', async (amount, expected) => {
    const runner = await setup();
    expect(kindOf(await runner.run(purchase(amount)))).toEqual(expected);
  });

  it.each([
    ['printer out of paper (E18)', purchase(158), 'E18'],
    ['amount over the limit (E19)', purchase(99_999_999), 'E19'],
    ['unknown merchant (E07)', { method: 'Purchase', params: { transAmount: 100, transCurrency: '980', merchantId: 'NOPE' } } as SsiRequest<'Purchase'>, 'E07'],
  ])('%s is rejected at the ack and nothing is started', async (_name, request, code) => {
    const runner = await setup();
    const outcome = await runner.run(request);
    expect(outcome.kind === 'rejected' && outcome.error.details.terminalErrorCode).toBe(code);
    expect(sim.received).not.toContain('GetStatus');
  });

  it('the "APPROVED-ONLINE" spelling is normalised', async () => {
    const runner = await setup({ resultSpelling: 'hyphen' });
    const outcome = await runner.run(purchase(100));
    expect(outcome.kind === 'approved' && [outcome.result.transactionResult, outcome.result.transactionResultRaw]).toEqual([
      'APPROVED_ONLINE',
      'APPROVED-ONLINE',
    ]);
  });

  describe('Interrupt', () => {
    it('in S02 cancels the operation', async () => {
      const runner = await setup();
      const op = runner.start(purchase(100), {
        onStatus: (e) => {
          if (e.status === 'S02') void op.interrupt();
        },
      });
      expect(kindOf(await op.outcome)).toEqual(['cancelled', 'CANCELLED', 'E12']);
      expect(sim.received).toContain('Interrupt');
    });

    it('in S04 throws INTERRUPT_NOT_ALLOWED without sending, and the operation completes', async () => {
      const runner = await setup();
      let refused: unknown;
      const op = runner.start(purchase(161), {
        onStatus: (e) => {
          if (e.status === 'S04') op.interrupt().catch((error: unknown) => (refused = error));
        },
      });
      expect(kindOf(await op.outcome)).toEqual(['approved', 'APPROVED_ONLINE', '']);
      expect(isSsiEcrError(refused, 'INTERRUPT_NOT_ALLOWED')).toBe(true);
      expect(sim.received).not.toContain('Interrupt');
    });

    it('after the operation finished throws INTERRUPT_NOT_ALLOWED', async () => {
      const runner = await setup();
      const op = runner.start(purchase(100));
      await op.outcome;
      await expect(op.interrupt()).rejects.toMatchObject({ code: 'INTERRUPT_NOT_ALLOWED' });
    });

    it('at the operation timeout in S02 the runner interrupts instead of abandoning', async () => {
      const runner = await setup({}, { operationTimeoutMs: 30 });
      expect(kindOf(await runner.run(purchase(155)))).toEqual(['cancelled', 'CANCELLED', 'E12']);
      expect(sim.received).toContain('Interrupt');
    });
  });

  describe('E06 busy', () => {
    it('is retried until the terminal is free', async () => {
      const runner = await setup();
      sim.setBusy(3);
      expect((await runner.run(purchase(100))).kind).toBe('approved');
      expect(sim.received.filter((m) => m === 'GetLastResult').length).toBeGreaterThanOrEqual(2);
    });

    it('past busyTimeoutMs the request is rejected as TERMINAL_BUSY and nothing started', async () => {
      const runner = await setup({}, { busyTimeoutMs: 30, busyBackoff: () => 5 });
      sim.setBusy(1_000_000);
      const outcome = await runner.run(purchase(100));
      expect(outcome.kind === 'rejected' && outcome.error.code).toBe('TERMINAL_BUSY');
      expect(sim.received).not.toContain('GetStatus');
      expect(sim.status).toBe('S00');
    });
  });

  describe('connection loss and recovery', () => {
    it('drop during S02: reconnects, proves the result by before/after comparison, approved', async () => {
      const runner = await setup({}, { uidSupport: 'unsupported' });
      const first = await runner.run(purchase(100));
      expect(first.kind).toBe('approved');
      const outcome = await runner.run(purchase(157));
      expect(kindOf(outcome)).toEqual(['approved', 'APPROVED_ONLINE', '']);
      expect(outcome.kind === 'approved' && outcome.result.invoiceNum).not.toBe(first.kind === 'approved' && first.result.invoiceNum);
    });

    it('terminal reboots during S02: the outcome is read from GetLastResult (cancelled), not guessed', async () => {
      const runner = await setup({}, { uidSupport: 'unsupported' });
      const op = runner.start(purchase(100), {
        onStatus: (e) => {
          if (e.status === 'S02') sim.reboot();
        },
      });
      expect(kindOf(await op.outcome)).toEqual(['cancelled', 'CANCELLED', 'E12']);
    });

    it('terminal unreachable: unknown (never failed); recover(ticket) later decides from GetLastResult', async () => {
      const runner = await setup({}, { uidSupport: 'unsupported', recoveryTimeoutMs: 50 });
      const state = sim.persistent;
      const port = sim.port;
      const op = runner.start(purchase(161), {
        onStatus: (e) => {
          if (e.status === 'S04') {
            sim.reboot(); // bank already contacted: the operation completes with its outcome
            void sim.stop();
          }
        },
      });
      const lost = await op.outcome;
      expect(lost.kind === 'unknown' && lost.reason).toBe('CONNECTION_LOST');
      client.close();
      // The terminal comes back with its persisted last result.
      sim = new SsiEcrSimulator({ port, state });
      await sim.start();
      const recovered = await runner.recover(lost.kind === 'unknown' ? lost.ticket : (undefined as never));
      expect(kindOf(recovered)).toEqual(['approved', 'APPROVED_ONLINE', '']);
    });

    it('recover() never attributes an older result: idle terminal, unchanged buffer → NOT_EXECUTED, not approved', async () => {
      const runner = await setup({}, { uidSupport: 'unsupported' });
      await runner.run(purchase(100));
      const baseline = await client.getLastResult();
      const outcome = await runner.recover({ request: purchase(100), baseline, startedAt: 0 });
      expect(outcome.kind === 'rejected' && outcome.error.code).toBe('NOT_EXECUTED');
    });

    it('recover() with a buffer changed by another operation → unknown RESULT_NOT_OURS', async () => {
      const runner = await setup({}, { uidSupport: 'unsupported' });
      await runner.run(purchase(100));
      const baseline = await client.getLastResult();
      await runner.run(purchase(200)); // say, done by hand on the terminal
      const outcome = await runner.recover({ request: purchase(100), baseline, startedAt: 0 });
      expect(outcome.kind === 'unknown' && [outcome.reason, outcome.mismatch]).toEqual(['RESULT_NOT_OURS', 'AMOUNT_MISMATCH']);
    });
  });

  describe('later-revision extensions', () => {
    it('transactionUid + GetResultByUid tie the result to the operation', async () => {
      const runner = await setup({ supportsTransactionUid: true });
      const outcome = await runner.run(purchase(100));
      expect(outcome.kind).toBe('approved');
      expect(outcome.kind === 'approved' && outcome.result.transactionUid).toBe(outcome.kind === 'approved' ? outcome.ticket.transactionUid : 'x');
      expect(sim.received).toContain('GetResultByUid');
      expect(await runner.supportsTransactionUid()).toBe(true);
    });

    it('without the extension the probe sees E05 and falls back to GetLastResult', async () => {
      const runner = await setup();
      expect((await runner.run(purchase(100))).kind).toBe('approved');
      expect(await runner.supportsTransactionUid()).toBe(false);
    });

    it('two-step Purchase: S08 → onFirstStep → step 2 with a new amount → approved for that amount', async () => {
      const runner = await setup();
      const firstSteps: string[] = [];
      const outcome = await runner.run(purchase(1056), {
        onFirstStep: (r) => {
          firstSteps.push(r.transactionResult ?? '');
          return { kind: 'continue', transAmount: 956 };
        },
      });
      expect(firstSteps).toEqual(['FIRST_STEP_COMPLETED']);
      expect(outcome.kind === 'approved' && outcome.result.transAmount).toBe(956);
    });

    it('two-step Purchase with transactionUid: step 1 read where the terminal shows it (GetLastResult), the final result by uid', async () => {
      const runner = await setup({ supportsTransactionUid: true });
      const outcome = await runner.run(purchase(1056), { onFirstStep: () => ({ kind: 'continue', transAmount: 956 }) });
      expect(outcome.kind === 'approved' && [outcome.result.transAmount, outcome.result.transactionUid === outcome.ticket.transactionUid]).toEqual([956, true]);
    });

    it('two-step Purchase cancelled at S08 → cancelled', async () => {
      const runner = await setup();
      expect(kindOf(await runner.run(purchase(1056), { onFirstStep: () => ({ kind: 'cancel' }) }))).toEqual(['cancelled', 'CANCELLED', 'E12']);
    });
  });

  describe('reports', () => {
    it('XReport totals the batch; ZReport closes it', async () => {
      const runner = await setup();
      await runner.run(purchase(1000));
      await runner.run({ method: 'Refund', params: { transAmount: 300, transCurrency: '980', rrn: '1' } });
      const x = await runner.runReport({ method: 'XReport', params: { isDetailReport: true } });
      expect(x.kind === 'completed' && [x.report.totals.saleAmount, x.report.totals.refundAmount, x.report.transactions.length]).toEqual([1000, 300, 2]);
      const z = await runner.runReport({ method: 'ZReport', params: {} });
      expect(z.kind === 'completed' && [z.report.totals.saleCount, z.report.batchNumber]).toEqual([1, '1']);
      const after = await runner.runReport({ method: 'XReport', params: {} });
      expect(after.kind === 'completed' && [after.report.isBatchEmpty, after.report.totals.saleCount, after.report.batchNumber]).toEqual([true, 0, '2']);
      expect(await client.getLastReportReceipt()).toContain('XReport #2');
    });
  });
});
