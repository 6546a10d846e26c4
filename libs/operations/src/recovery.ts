import type { Database } from '@payorch/db';
import type { TerminalDriver } from '@payorch/drivers';

import { type OperationExecutor, SENT_TO_DEVICE } from './executor';
import { asRefs, commandOfRun, loadRunStatement, type RunStartRow } from './records';
import type { OperationStateName } from './state-machine';
import { transitionOperation } from './transition';

/** Why an operation sent to another device than the terminal's current one is not recovered automatically. */
export const ANOTHER_DEVICE =
  "the terminal's connection changed after this operation was sent (another agent, address, port or dialect): the device it reaches now cannot tell this operation's outcome; check the original device's journal or the bank and resolve it manually";

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
  const sentTo = refs[SENT_TO_DEVICE];
  // Sent to another device than the one this driver reaches (the terminal's connection, agent or dialect changed
  // since): that device's "no such command" would prove nothing, and it cannot repeat the answer. Never decided here.
  const outcome =
    typeof sentTo === 'string' && driver.device !== undefined && sentTo !== driver.device
      ? { state: 'unknown' as const, reason: ANOTHER_DEVICE }
      : await driver.recover(command, refs).catch((error: unknown) => ({
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
