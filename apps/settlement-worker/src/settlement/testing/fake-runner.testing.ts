import type { Database } from '@payorch/db';
import type { OperationOutcome, TerminalDriver } from '@payorch/drivers';
import { OperationExecutor } from '@payorch/operations';

import { CLOSE_DAY } from '../dispatcher-runner';
import type { SettlementOperationRef, SettlementRunner } from '../settlement-runner';

/**
 * TEST TOOL (scale tests and bench/settlement; production code never imports `testing/`): an in-process
 * terminal fleet that closes its day in `latencyMs` with an empty Joinproto receipt. The operation runs
 * through the connector's OperationExecutor with a fake driver, so its states are written by the
 * operation owner with their events, exactly as in production. Records how many close-days ran at once,
 * overall and per tenant.
 */
export class FakeSettlementRunner implements SettlementRunner {
  running = 0;
  maxRunning = 0;
  readonly runningByTenant = new Map<string, number>();
  readonly maxByTenant = new Map<string, number>();
  readonly executed: string[] = [];
  readonly finishedAt = new Map<string, number>();
  private readonly executor: OperationExecutor;

  constructor(
    db: Database,
    private readonly latencyMs = 5,
  ) {
    this.executor = new OperationExecutor(db);
  }

  async execute(ref: SettlementOperationRef): Promise<void> {
    this.running += 1;
    this.maxRunning = Math.max(this.maxRunning, this.running);
    const t = (this.runningByTenant.get(ref.tenantId) ?? 0) + 1;
    this.runningByTenant.set(ref.tenantId, t);
    this.maxByTenant.set(ref.tenantId, Math.max(this.maxByTenant.get(ref.tenantId) ?? 0, t));
    try {
      // As the connector runs it in production: with the copy of its command the dispatch carries (DispatcherSettlementRunner).
      await this.executor.execute(ref, this.closeDayDriver(), CLOSE_DAY);
      this.executed.push(ref.terminalId);
      this.finishedAt.set(ref.terminalId, Date.now());
    } finally {
      this.running -= 1;
      this.runningByTenant.set(ref.tenantId, (this.runningByTenant.get(ref.tenantId) ?? 1) - 1);
    }
  }

  async recover(): Promise<void> {
    // Every fake close-day completes inside execute; nothing is ever left unknown.
  }

  /** A terminal that answers every close-day with an empty day, after `latencyMs`. */
  private closeDayDriver(): TerminalDriver {
    const approved: OperationOutcome = { state: 'approved', responseCode: '000', receipt: { text: 'CLOSE DAY\nDEBIT 0 0\nCREDIT 0 0\nTOTAL 0' } };
    return {
      protocol: 'JOINPROTO',
      execute: async (_command, hooks) => {
        await hooks.beforeSend({ command: 'CloseDay' });
        await new Promise((resolve) => setTimeout(resolve, this.latencyMs));
        return approved;
      },
      cancel: async () => 'not_running',
      recover: async () => approved,
      terminalInfo: async () => ({}),
      close: async () => undefined,
    };
  }
}
