import type { Database } from '@payorch/db';
import type { OperationOutcome, TerminalDriver } from '@payorch/drivers';
import { OperationExecutor, recoverOperation } from '@payorch/operations';

import type { SettlementOperationRef, SettlementRunner } from '../settlement-runner';

/**
 * TEST TOOL (int tests; production code never imports `testing/`): Joinproto terminals that keep their open batch in
 * memory. `pay` adds an approved purchase to a terminal's batch (the test records the same purchase on our side); a
 * close-day closes the batch, answers its totals as receipt lines (`DEBIT n sum`) and a new batch begins. Close-days
 * run through the connector's OperationExecutor, so their states are written by the operation owner with their events,
 * as with FakeSettlementRunner.
 *
 * Scripting: `around` wraps every execute (a test holds a call before or after the terminal answered, or fails it as
 * RunnerUnavailable); `loseNextAnswer` makes a terminal close its batch but lose the answer (the row goes UNKNOWN),
 * which `recover` then reads back, as Joinproto 95 repeats the last result.
 */
export class LedgerSettlementRunner implements SettlementRunner {
  around: (ref: SettlementOperationRef, closeDay: () => Promise<void>) => Promise<void> = (_ref, closeDay) => closeDay();
  private readonly batches = new Map<string, number[]>();
  /** Each close-day's answer by operation id, kept by the terminal for recovery. */
  private readonly answers = new Map<string, OperationOutcome>();
  private readonly losing = new Set<string>();
  private readonly executor: OperationExecutor;

  constructor(private readonly db: Database) {
    this.executor = new OperationExecutor(db);
  }

  pay(terminalId: string, amount: number): void {
    this.batches.set(terminalId, [...(this.batches.get(terminalId) ?? []), amount]);
  }

  loseNextAnswer(terminalId: string): void {
    this.losing.add(terminalId);
  }

  execute(ref: SettlementOperationRef): Promise<void> {
    return this.around(ref, async () => {
      await this.executor.execute(ref, this.driver(ref));
    });
  }

  async recover(ref: SettlementOperationRef): Promise<void> {
    await recoverOperation(this.db, this.executor, this.driver(ref), ref);
  }

  private driver(ref: SettlementOperationRef): TerminalDriver {
    return {
      protocol: 'JOINPROTO',
      execute: async (_command, hooks) => {
        await hooks.beforeSend({ command: 'CloseDay' });
        const answer = this.closeBatch(ref);
        if (!this.losing.delete(ref.terminalId)) return answer;
        return { state: 'unknown', reason: 'the link dropped before the answer' };
      },
      recover: async () => this.answers.get(ref.operationId) ?? { state: 'unknown', reason: 'the terminal never saw this close-day' },
      cancel: async () => 'not_running',
      terminalInfo: async () => ({}),
      close: async () => undefined,
    };
  }

  private closeBatch(ref: SettlementOperationRef): OperationOutcome {
    const batch = this.batches.get(ref.terminalId) ?? [];
    this.batches.set(ref.terminalId, []);
    const sum = batch.reduce((a, b) => a + b, 0);
    const answer: OperationOutcome = {
      state: 'approved',
      responseCode: '000',
      receipt: { text: `CLOSE DAY\nDEBIT ${batch.length} ${sum}\nCREDIT 0 0\nTOTAL ${sum}` },
    };
    this.answers.set(ref.operationId, answer);
    return answer;
  }
}
