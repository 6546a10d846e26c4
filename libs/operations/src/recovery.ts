import type { Database } from '@payorch/db';
import type { TerminalDriver } from '@payorch/drivers';

import type { OperationExecutor } from './executor';
import { asRefs, commandOfRun, loadRunStatement, type RunStartRow } from './records';
import type { OperationStateName } from './state-machine';
import { transitionOperation } from './transition';

export interface RecoveryReport {
  /** false: the operation was not UNKNOWN (already resolved, or never lost). */
  attempted: boolean;
  state: OperationStateName;
}

/**
 * Asks the terminal for the true outcome of an UNKNOWN operation (Joinproto 95, SSI GetLastResult /
 * GetResultByUid, JPAY report). A conclusive answer moves UNKNOWN → final (`operation.recovered`); an
 * inconclusive one leaves it UNKNOWN, counts the attempt and bumps `updatedAt` so the recovery job backs off.
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
  const outcome = await driver.recover(command, refs).catch((error: unknown) => ({
    state: 'unknown' as const,
    reason: `recovery error: ${error instanceof Error ? error.message : String(error)}`,
  }));
  if (outcome.state !== 'unknown') {
    return { attempted: true, state: await executor.storeOutcome(ref, outcome, 'recovered') };
  }
  await db.withTenant(ref.tenantId, (tx) =>
    transitionOperation(tx, {
      operationId: ref.operationId,
      from: ['UNKNOWN'],
      to: 'UNKNOWN',
      set: { stateReason: outcome.reason ?? null },
      countRecoveryAttempt: true,
      step: { kind: 'recovery_attempt', data: { reason: outcome.reason ?? null } },
    }),
  );
  return { attempted: true, state: 'UNKNOWN' };
}
