import type { Database } from '@payorch/db';

import type { SettlementOperationRef, SettlementRunner } from '../settlement-runner';

/**
 * TEST TOOL (scale tests and bench/settlement): an in-process terminal fleet that closes its day in
 * `latencyMs` with an empty Joinproto receipt, writing the operation row as the connector's executor
 * would. Records how many close-days ran at once, overall and per tenant.
 */
export class FakeSettlementRunner implements SettlementRunner {
  running = 0;
  maxRunning = 0;
  readonly runningByTenant = new Map<string, number>();
  readonly maxByTenant = new Map<string, number>();
  readonly executed: string[] = [];
  readonly finishedAt = new Map<string, number>();

  constructor(
    private readonly db: Database,
    private readonly latencyMs = 5,
  ) {}

  async execute(ref: SettlementOperationRef): Promise<void> {
    this.running += 1;
    this.maxRunning = Math.max(this.maxRunning, this.running);
    const t = (this.runningByTenant.get(ref.tenantId) ?? 0) + 1;
    this.runningByTenant.set(ref.tenantId, t);
    this.maxByTenant.set(ref.tenantId, Math.max(this.maxByTenant.get(ref.tenantId) ?? 0, t));
    try {
      await this.db.withTenant(ref.tenantId, (tx) => tx.terminalOperation.update({ where: { id: ref.operationId }, data: { state: 'SENT' } }));
      await new Promise((resolve) => setTimeout(resolve, this.latencyMs));
      await this.db.withTenant(ref.tenantId, (tx) =>
        tx.terminalOperation.update({
          where: { id: ref.operationId },
          data: { state: 'APPROVED', responseCode: '000', receipt: { text: 'CLOSE DAY\nDEBIT 0 0\nCREDIT 0 0\nTOTAL 0' }, completedAt: new Date() },
        }),
      );
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
}
