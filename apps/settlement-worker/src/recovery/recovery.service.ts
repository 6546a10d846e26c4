import { Inject, Injectable } from '@nestjs/common';
import type { Queue } from 'bullmq';

import type { WorkerConfig } from '@payorch/config';
import type { Database } from '@payorch/db';
import type { JobData } from '@payorch/domain';
import type { Logger } from '@payorch/logging';
import {
  ANOTHER_DEVICE,
  failNeverSent,
  flagForHuman,
  markStuckUnknown,
  TERMINAL_COMMAND_DISPATCHER,
  type TerminalCommandDispatcher,
} from '@payorch/operations';

import { DATABASE, LOGGER, WORKER_CONFIG } from '../tokens';

const BATCH = 200;
/** Lower than every id: a scan from the start. */
const FIRST_ID = '00000000-0000-0000-0000-000000000000';

export type RecoverResult =
  | { kind: 'skipped'; reason: string }
  | { kind: 'resolved'; state: string }
  | { kind: 'still_unknown'; attempts: number; flagged: boolean }
  | { kind: 'not_reached'; code: string };

/**
 * Exactly-once supervision of terminal operations (docs/operations.md, "Recovery"), a backstop for the
 * connector's recovery on agent reconnect; it covers every non-final state:
 *  - PENDING unchanged for RECOVERY_PENDING_AFTER_MS → FAILED "never sent" (no executor claimed it and no connector
 *    holds it in a terminal queue: see holdPending);
 *  - SENT / IN_PROGRESS unchanged for RECOVERY_STUCK_AFTER_MS → UNKNOWN (its executor is gone);
 *  - UNKNOWN → `operation.recover` through the command bus to the connector holding the terminal
 *    (Joinproto 95 / SSI GetLastResult / JPAY report), backing off per inconclusive attempt
 *    (base × 2^(n-1), capped) and leaving it UNKNOWN, flagged for a human, after RECOVERY_MAX_ATTEMPTS;
 *  - UNKNOWN with RECOVERY_MAX_ATTEMPTS spent and never flagged → flagged for a human (the connector's recovery on
 *    reconnect spends the same budget but never flags it, and the recoverable scan no longer returns such an operation).
 * An operation sent to another device than the one its terminal reaches now is flagged for a human by the attempt
 * that finds so (recoverOperation, on the connector: `another_device`), and asked again at the normal pace all the same.
 * A terminal that is offline or busy does not use up an attempt; the next sweep asks again.
 */
@Injectable()
export class RecoveryService {
  /** Operations per scan of a sweep (tests lower it). */
  batchSize = BATCH;
  /** Where the next scan of UNKNOWN operations starts (the id after which; FIRST_ID: from the lowest). */
  private recoverCursor = FIRST_ID;

  constructor(
    @Inject(DATABASE) private readonly db: Database,
    @Inject(WORKER_CONFIG) private readonly config: WorkerConfig,
    @Inject(LOGGER) private readonly logger: Logger,
    @Inject(TERMINAL_COMMAND_DISPATCHER) private readonly dispatcher: TerminalCommandDispatcher,
  ) {}

  async sweep(queue: Queue): Promise<{ markedUnknown: number; neverSent: number; enqueued: number; flagged: number }> {
    const horizonMs = this.config.RECOVERY_STUCK_AFTER_MS;
    const pendingMs = this.config.RECOVERY_PENDING_AFTER_MS;
    const stuck = await this.db.prisma.$queryRaw<{ id: string; tenantId: string; state: string }[]>`
      SELECT * FROM payorch_stuck_operations(make_interval(secs => ${horizonMs / 1000}::float8), make_interval(secs => ${pendingMs / 1000}::float8), ${BATCH}::int)`;
    let markedUnknown = 0;
    let neverSent = 0;
    for (const op of stuck) {
      const result = await this.db.withTenant(op.tenantId, async (tx) => {
        if (op.state === 'PENDING') {
          // No executor claimed it (PENDING → SENT is committed before the driver gets the command) and no connector
          // holds it in a terminal queue (holdPending keeps those fresh): nothing was sent.
          const horizon = new Date(Date.now() - pendingMs);
          return failNeverSent(tx, op.id, horizon, `never sent: no executor claimed or queued it within ${Math.round(pendingMs / 1000)} s`);
        }
        const horizon = new Date(Date.now() - horizonMs);
        return markStuckUnknown(tx, op.id, horizon, `no outcome ${Math.round(horizonMs / 1000)} s after it was sent; recovering`);
      });
      if (!result.changed) continue;
      if (result.row.state === 'FAILED') neverSent++;
      else markedUnknown++;
    }
    // Due operations only (their backoff, retryDelayMs, is part of the scan), walked by id from where the last sweep
    // stopped: one whose terminal cannot be reached writes nothing, so by age it would stay first forever and, with a
    // page of them, keep every other operation from being asked (payorch_recoverable_operations, fair_recovery_scan).
    const unknown = await this.db.prisma.$queryRaw<{ id: string; tenantId: string }[]>`
      SELECT * FROM payorch_recoverable_operations(make_interval(secs => ${this.config.RECOVERY_BACKOFF_BASE_MS / 1000}::float8),
        make_interval(secs => ${this.config.RECOVERY_BACKOFF_MAX_MS / 1000}::float8), ${this.config.RECOVERY_MAX_ATTEMPTS}::int,
        ${this.recoverCursor}::uuid, ${this.batchSize}::int)`;
    this.recoverCursor = unknown.length < this.batchSize ? FIRST_ID : unknown.at(-1)!.id;
    let enqueued = 0;
    for (const op of unknown) {
      const row = await this.db.withTenant(op.tenantId, (tx) =>
        tx.terminalOperation.findUnique({ where: { id: op.id }, select: { recoveryAttempts: true, state: true } }),
      );
      if (!row || row.state !== 'UNKNOWN') continue;
      // One job per operation and attempt number while it is queued or running (removed when done).
      await queue.add(
        'operation.recover',
        { tenantId: op.tenantId, operationId: op.id },
        { jobId: `recover-${op.id}-${row.recoveryAttempts}`, removeOnComplete: true, removeOnFail: true },
      );
      enqueued++;
    }
    // Budget spent without the recover job noticing (the connector's attempts on reconnect, or a recover job that died
    // between its attempt and the flag): no `recovery_exhausted` step yet, so nobody was told. Flagged here, once.
    const exhausted = await this.db.prisma.$queryRaw<{ id: string; tenantId: string }[]>`
      SELECT * FROM payorch_exhausted_operations(${this.config.RECOVERY_MAX_ATTEMPTS}::int, ${BATCH}::int)`;
    let flagged = 0;
    for (const op of exhausted) {
      const row = await this.db.withTenant(op.tenantId, (tx) =>
        tx.terminalOperation.findUnique({ where: { id: op.id }, select: { recoveryAttempts: true, state: true } }),
      );
      if (!row || row.state !== 'UNKNOWN' || row.recoveryAttempts < this.config.RECOVERY_MAX_ATTEMPTS) continue;
      if (await this.flag({ tenantId: op.tenantId, operationId: op.id }, row.recoveryAttempts)) flagged++;
    }
    return { markedUnknown, neverSent, enqueued, flagged };
  }

  async recover(data: JobData['operation.recover']): Promise<RecoverResult> {
    const row = await this.db.withTenant(data.tenantId, (tx) =>
      tx.terminalOperation.findUnique({ where: { id: data.operationId }, select: { state: true, terminalId: true, recoveryAttempts: true } }),
    );
    if (!row) return { kind: 'skipped', reason: 'operation not found' };
    if (row.state !== 'UNKNOWN') return { kind: 'skipped', reason: `operation is ${row.state.toLowerCase()}` };
    if (row.recoveryAttempts >= this.config.RECOVERY_MAX_ATTEMPTS) {
      await this.flag(data, row.recoveryAttempts);
      return { kind: 'still_unknown', attempts: row.recoveryAttempts, flagged: true };
    }
    const reply = await this.dispatcher
      .dispatch({ kind: 'operation.recover', tenantId: data.tenantId, terminalId: row.terminalId, operationId: data.operationId })
      .catch((error: unknown) => ({ ok: false as const, code: 'INTERNAL' as const, message: (error as Error).message }));
    if (!reply.ok) {
      this.logger.info({ operationId: data.operationId, code: reply.code }, 'recovery could not reach the terminal; will retry');
      return { kind: 'not_reached', code: reply.code };
    }
    const after = await this.db.withTenant(data.tenantId, (tx) =>
      tx.terminalOperation.findUniqueOrThrow({ where: { id: data.operationId }, select: { state: true, recoveryAttempts: true, stateReason: true } }),
    );
    if (after.state !== 'UNKNOWN') return { kind: 'resolved', state: after.state.toLowerCase() };
    const spent = after.recoveryAttempts >= this.config.RECOVERY_MAX_ATTEMPTS;
    if (spent) await this.flag(data, after.recoveryAttempts);
    // Another device: the attempt flagged it already (and the next ones are still due at the normal backoff).
    return { kind: 'still_unknown', attempts: after.recoveryAttempts, flagged: spent || after.stateReason === ANOTHER_DEVICE };
  }

  /** Flags the operation for a human (flagForHuman writes nothing when it is flagged already); true when written now. */
  private async flag(data: JobData['operation.recover'], attempts: number): Promise<boolean> {
    const result = await this.db.withTenant(data.tenantId, (tx) => flagForHuman(tx, data.operationId, attempts));
    if (result.changed) {
      this.logger.warn({ operationId: data.operationId, tenantId: data.tenantId, attempts }, 'operation left UNKNOWN for a human');
    }
    return result.changed;
  }
}
