import type { Database } from '@payorch/db';
import type { TerminalDriver } from '@payorch/drivers';

import { type OperationExecutor, SENT_TO_DEVICE } from './executor';
import { asRefs, commandOfRun, loadRunStatement, type RunStartRow } from './records';
import type { OperationStateName } from './state-machine';
import { ANOTHER_DEVICE, flagForHuman } from './supervision';
import { transitionOperation } from './transition';

export { ANOTHER_DEVICE } from './supervision';

export interface RecoveryReport {
  /** false: the operation was not UNKNOWN (already resolved, or never lost). */
  attempted: boolean;
  state: OperationStateName;
}

/**
 * Asks the terminal for the true outcome of an UNKNOWN operation (Joinproto 95, SSI GetLastResult /
 * GetResultByUid, JPAY report). A conclusive answer moves UNKNOWN → final (`operation.recovered`); an
 * inconclusive one leaves it UNKNOWN, counts the attempt and bumps `updatedAt` so the recovery job backs off.
 * Sent to another device than the one the driver reaches: nothing is asked, the attempt counts, and the operation is
 * flagged for a person at once (flagForHuman `another_device`, in the same transaction; once per operation). Retries
 * go on at their normal pace, so a terminal pointed back at its device is recovered as usual.
 */
export async function recoverOperation(
  db: Database,
  executor: OperationExecutor,
  driver: TerminalDriver,
  ref: { tenantId: string; operationId: string },
): Promise<RecoveryReport> {
  const [found] = await db.querySql<RunStartRow>(ref.tenantId, loadRunStatement(ref.operationId));
  if (found === undefined) return { attempted: false, state: 'PENDING' };
  if (found.state !== 'UNKNOWN') return { attempted: false, state: found.state };
  const command = commandOfRun(found);
  const refs = asRefs(found.protocolRefs) ?? {};
  const sentTo = refs[SENT_TO_DEVICE];
  // Sent to another device than the one this driver reaches (the terminal's connection, agent or dialect changed
  // since): that device's "no such command" would prove nothing, and it cannot repeat the answer. Never decided here.
  const elsewhere = typeof sentTo === 'string' && driver.device !== undefined && sentTo !== driver.device;
  const outcome = elsewhere
    ? { state: 'unknown' as const, reason: ANOTHER_DEVICE }
    : await driver.recover(command, refs).catch((error: unknown) => ({
        state: 'unknown' as const,
        reason: `recovery error: ${error instanceof Error ? error.message : String(error)}`,
      }));
  if (outcome.state !== 'unknown') {
    return { attempted: true, state: await executor.storeOutcome(ref, outcome, 'recovered') };
  }
  await db.withTenant(ref.tenantId, async (tx) => {
    const counted = await transitionOperation(tx, {
      operationId: ref.operationId,
      from: ['UNKNOWN'],
      to: 'UNKNOWN',
      set: { stateReason: outcome.reason ?? null },
      countRecoveryAttempt: true,
      step: { kind: 'recovery_attempt', data: { reason: outcome.reason ?? null } },
    });
    // No attempt can decide it until the terminal is pointed back: a person is told now, not once the budget is spent.
    // In the attempt's transaction, so whoever reads the spent budget afterwards also finds the flag (it writes nothing).
    if (counted !== null && elsewhere) await flagForHuman(tx, ref.operationId, counted.row.recoveryAttempts, 'another_device');
  });
  return { attempted: true, state: 'UNKNOWN' };
}
