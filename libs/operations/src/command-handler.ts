import type { Database, TransactionClient } from '@payorch/db';
import type { TerminalCommand, TerminalCommandReply } from '@payorch/domain';
import type { TerminalDriver } from '@payorch/drivers';

import { type EventSink, OperationExecutor } from './executor';
import { recoverOperation } from './recovery';
import { failNeverSent, markStuckUnknown, type SupervisionResult } from './supervision';

export interface CommandHandlerOptions {
  onEvents?: EventSink;
}

/** What `recoverTerminal` did with the terminal's non-final operations. */
export interface TerminalRecoveryReport {
  /** PENDING → FAILED: never claimed by an executor, so never sent. */
  neverSent: number;
  /** SENT / IN_PROGRESS → UNKNOWN: their executor is gone. */
  markedUnknown: number;
  /** UNKNOWN → final, decided by the terminal. */
  recovered: number;
  /** Still UNKNOWN after asking (inconclusive; the recovery job keeps trying). */
  stillUnknown: number;
}

/** Upper bound of operations one `recoverTerminal` looks at (a terminal runs one command at a time). */
const TERMINAL_RECOVERY_BATCH = 50;

/**
 * What the device connector calls for each bus command addressed to a terminal it holds:
 * `reply = await handler.handle(command, driverOfThatTerminal)`.
 *  - `operation.execute` runs the operation at most once and replies when it is over;
 *  - `operation.recover` resolves an UNKNOWN operation;
 *  - `operation.cancel` interrupts the running one (409-worthy `TOO_LATE` when the terminal cannot any more).
 * Execute and recover are serialised per terminal (one command at a time); cancel bypasses the queue.
 */
export class OperationCommandHandler {
  readonly executor: OperationExecutor;
  private readonly queues = new Map<string, Promise<unknown>>();

  constructor(
    private readonly db: Database,
    private readonly options: CommandHandlerOptions = {},
  ) {
    this.executor = new OperationExecutor(db, { onEvents: options.onEvents });
  }

  async handle(command: TerminalCommand, driver: TerminalDriver): Promise<TerminalCommandReply> {
    try {
      switch (command.kind) {
        case 'operation.execute':
          return await this.serial(command.terminalId, async () => {
            const report = await this.executor.execute(command, driver);
            return { ok: true, result: { ran: report.ran, state: report.state.toLowerCase() } };
          });
        case 'operation.recover':
          return await this.serial(command.terminalId, async () => {
            const report = await recoverOperation(this.db, this.executor, driver, command);
            return { ok: true, result: { attempted: report.attempted, state: report.state.toLowerCase() } };
          });
        case 'operation.cancel': {
          const result = await driver.cancel(command.operationId);
          if (result === 'requested') return { ok: true, result: { cancel: 'requested' } };
          return {
            ok: false,
            code: 'TOO_LATE',
            message: result === 'too_late' ? 'the terminal can no longer interrupt this operation' : 'the operation is not running on the terminal',
          };
        }
        case 'terminal.refresh_info':
          return { ok: true, result: await driver.terminalInfo() };
      }
    } catch (error) {
      return { ok: false, code: 'INTERNAL', message: error instanceof Error ? error.message : String(error) };
    }
  }

  /**
   * Recovery of every non-final operation of a terminal that has just come (back) online here, e.g. its
   * agent reconnected after a connector crash. Runs in the terminal's queue, so after the commands queued
   * before it and before any command that arrives later (a new payment cannot destroy the evidence that
   * Joinproto 95 / SSI GetLastResult rely on):
   *  - PENDING written before `notClaimedSince` → FAILED "never sent" (no executor claimed it; the claim
   *    PENDING → SENT is committed before the driver gets the command, so nothing reached the terminal);
   *  - SENT / IN_PROGRESS → UNKNOWN: no executor runs them any more (the commands of this instance queued
   *    before this one have finished, and the terminal's agent is connected here, not elsewhere);
   *  - each UNKNOWN → `recoverOperation`, exactly what the bus command `operation.recover` runs.
   */
  recoverTerminal(ref: { tenantId: string; terminalId: string }, driver: TerminalDriver, notClaimedSince: Date): Promise<TerminalRecoveryReport> {
    return this.serial(ref.terminalId, async () => {
      const report: TerminalRecoveryReport = { neverSent: 0, markedUnknown: 0, recovered: 0, stillUnknown: 0 };
      const startedAt = new Date();
      const open = await this.db.withTenant(ref.tenantId, (tx) =>
        tx.terminalOperation.findMany({
          where: { terminalId: ref.terminalId, state: { in: ['PENDING', 'SENT', 'IN_PROGRESS', 'UNKNOWN'] } },
          select: { id: true, state: true },
          orderBy: { createdAt: 'asc' },
          take: TERMINAL_RECOVERY_BATCH,
        }),
      );
      for (const op of open) {
        if (op.state === 'PENDING') {
          const result = await this.supervise(ref.tenantId, (tx) =>
            failNeverSent(tx, op.id, notClaimedSince, 'never sent: no executor claimed it before the terminal reconnected', 'agent_reconnect'),
          );
          if (result.changed) report.neverSent++;
          continue;
        }
        if (op.state === 'SENT' || op.state === 'IN_PROGRESS') {
          const result = await this.supervise(ref.tenantId, (tx) =>
            markStuckUnknown(tx, op.id, startedAt, 'its executor is gone (the terminal reconnected); recovering', 'agent_reconnect'),
          );
          if (!result.changed) continue;
          report.markedUnknown++;
        }
        const recovery = await recoverOperation(this.db, this.executor, driver, { tenantId: ref.tenantId, operationId: op.id });
        if (!recovery.attempted) continue;
        if (recovery.state === 'UNKNOWN') report.stillUnknown++;
        else report.recovered++;
      }
      return report;
    });
  }

  private async supervise(tenantId: string, fn: (tx: TransactionClient) => Promise<SupervisionResult>): Promise<SupervisionResult> {
    const result = await this.db.withTenant(tenantId, fn);
    if (result.event !== undefined) this.options.onEvents?.([result.event]);
    return result;
  }

  private serial<T>(key: string, fn: () => Promise<T>): Promise<T> {
    const previous = this.queues.get(key) ?? Promise.resolve();
    const run = previous.then(fn, fn);
    const tail = run.catch(() => undefined);
    this.queues.set(key, tail);
    void tail.then(() => {
      if (this.queues.get(key) === tail) this.queues.delete(key);
    });
    return run;
  }
}
