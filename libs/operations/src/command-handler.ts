import { type Database, Prisma, type TransactionClient } from '@payorch/db';
import { KeyedSerialQueue, QueueFullError, type TerminalCommand, type TerminalCommandReply } from '@payorch/domain';
import type { TerminalDriver } from '@payorch/drivers';

import { type EventSink, OperationExecutor, type RecoveringRefusal } from './executor';
import { recoverOperation } from './recovery';
import { failNeverSent, holdPending, markStuckUnknown, type SupervisionResult } from './supervision';
import { OPEN_STATES_SQL } from './records';
import type { OperationStateName } from './state-machine';

export interface CommandHandlerOptions {
  onEvents?: EventSink;
  /**
   * The per-terminal command queue (key: terminal id). The device connector passes the one its TerminalHub
   * also refreshes terminal info in, so that a terminal has exactly one queue and a full one answers
   * TERMINAL_BUSY before anything is claimed. Default: an unbounded queue of this handler's own.
   */
  queue?: KeyedSerialQueue;
  /**
   * While an `operation.execute` waits in the terminal's queue, its PENDING row is touched this often
   * (`holdPending`), so the recovery sweep — which fails a PENDING row unchanged for RECOVERY_PENDING_AFTER_MS
   * as never sent — can tell a queued operation from one whose gateway or connector died. Default 10 s;
   * keep it well under the worker's RECOVERY_PENDING_AFTER_MS (default 30 s).
   */
  pendingHoldIntervalMs?: number;
  /**
   * `recoverTerminal` fails a PENDING operation as never sent only once it is unchanged this long (and since before
   * the terminal came online here), like the recovery sweep (the worker's RECOVERY_PENDING_AFTER_MS, default 30 s):
   * a younger one may still be on its way here on the command bus — its gateway inserted it before the terminal came
   * online and handed it over after — and is left to run when it arrives (the bus drops a queued execute after
   * 15 s, so an older row can no longer be delivered), or to the sweep.
   */
  neverSentAfterMs?: number;
  /**
   * An `operation.execute` answered at `replyWhen: 'queued'` runs on after the reply; an error it throws
   * (PostgreSQL gone mid-run) lands here. The operation itself stays safe: its row is PENDING (the sweep
   * fails it as never sent) or SENT/IN_PROGRESS (marked unknown and recovered).
   */
  onBackgroundError?: (error: Error, command: TerminalCommand) => void;
  /** Journal each run's protocol frames, masked, as `frame` steps (ExecutorOptions.recordFrames; default true). */
  recordFrames?: boolean;
}

/**
 * The driver a command runs on: the terminal's driver, or how to get it when the command's turn in the terminal's queue
 * comes (null: the terminal is no longer held here). The device connector passes the second: a terminal's driver is
 * rebuilt when its row changes (credentials, merchant, connection…), and a command queued behind a running one then
 * runs on the new driver instead of the closed one.
 */
export type DriverSource = TerminalDriver | (() => TerminalDriver | null);

/** The driver of a terminal no longer held here: fails before asking to send, so the operation fails as never sent. */
const UNHELD_DRIVER: TerminalDriver = {
  protocol: 'JOINPROTO',
  execute: async () => ({ state: 'failed', reason: 'not sent: the terminal is no longer held by this connector' }),
  cancel: async () => 'not_running',
  recover: async () => ({ state: 'unknown', reason: 'the terminal is no longer held by this connector' }),
  terminalInfo: async () => ({}),
  close: async () => undefined,
};

const runKey = (command: { tenantId: string; terminalId: string; operationId: string }) => `${command.tenantId}/${command.terminalId}/${command.operationId}`;

function driverOf(source: DriverSource): TerminalDriver {
  return typeof source === 'function' ? (source() ?? UNHELD_DRIVER) : source;
}

/** Hears of every operation this handler's executor failed `TERMINAL_RECOVERING` (`onTerminalRecovering`). */
export type RecoveringRefusalListener = (refusal: RecoveringRefusal) => void;

/** Options of one `recoverTerminal` pass. */
export interface TerminalRecoveryOptions {
  /**
   * Aborted: the pass is no longer wanted (the terminal's session here closed, the terminal moved): it stops before
   * its next step, reading or asking nothing more (a pass queued behind other commands may start after that).
   */
  signal?: AbortSignal;
}

/** Default of CommandHandlerOptions.pendingHoldIntervalMs (and of the connector's PENDING_HOLD_INTERVAL_MS). */
export const PENDING_HOLD_INTERVAL_MS = 10_000;

/** Default of CommandHandlerOptions.neverSentAfterMs (and of RECOVERY_PENDING_AFTER_MS). */
export const NEVER_SENT_AFTER_MS = 30_000;

/** What `recoverTerminal` did with the terminal's non-final operations. */
export interface TerminalRecoveryReport {
  /** PENDING → FAILED: never claimed by an executor, so never sent. */
  neverSent: number;
  /**
   * PENDING and left so: queued here (it runs after this pass), or younger than `neverSentAfterMs` (its command may
   * still arrive on the bus; if it never does, the recovery sweep fails it).
   */
  leftPending: number;
  /** SENT / IN_PROGRESS → UNKNOWN: their executor is gone. */
  markedUnknown: number;
  /** UNKNOWN → final, decided by the terminal. */
  recovered: number;
  /** Still UNKNOWN after asking (inconclusive; the recovery job keeps trying, and the device connector asks again). */
  stillUnknown: number;
}

/** Upper bound of operations one `recoverTerminal` looks at (a terminal runs one command at a time). */
const TERMINAL_RECOVERY_BATCH = 50;

/**
 * What the device connector calls for each bus command addressed to a terminal it holds:
 * `reply = await handler.handle(command, driverOfThatTerminal)`.
 *  - `operation.execute` runs the operation at most once and replies when it is over, or — with
 *    `replyWhen: 'queued'` — as soon as it is in the terminal's queue (then it runs on here; drain() waits for it). While another
 *    operation of the terminal is UNKNOWN it is not run but failed as never sent (PENDING → FAILED, error
 *    code `TERMINAL_RECOVERING`; types in RUNS_WHILE_RECOVERING excepted): the gateway refuses such work when
 *    it is created, but two requests can pass that gate together, and a new command would destroy the
 *    evidence the recovery reads. The check is part of the executor's claim (one compare-and-set);
 *  - `operation.recover` resolves an UNKNOWN operation;
 *  - `operation.cancel` interrupts the running one (409-worthy `TOO_LATE` when the terminal cannot any more).
 * Execute, recover and refresh_info are serialised per terminal (one command at a time, `options.queue`);
 * cancel bypasses the queue. A full queue is TERMINAL_BUSY, and nothing was claimed.
 */
export class OperationCommandHandler {
  readonly executor: OperationExecutor;
  private readonly queue: KeyedSerialQueue;
  /** Operations answered `queued` that have not finished yet (drain() waits for them). */
  private readonly running = new Set<Promise<unknown>>();
  /**
   * The driver each operation accepted here runs on, while it runs (by tenant, terminal and operation): a cancel goes to
   * it. The terminal's driver may have been rebuilt meanwhile (its row changed) or withdrawn (disabled, moved): the
   * device connector closes the old one only after the command running on it, which a cancel must still reach.
   */
  private readonly runningOn = new Map<string, TerminalDriver>();
  /** Operations accepted here (`operation.execute`) and not run yet: `recoverTerminal` leaves their PENDING rows. */
  private readonly queuedHere = new Set<string>();
  private readonly refusalListeners = new Set<RecoveringRefusalListener>();

  constructor(
    private readonly db: Database,
    private readonly options: CommandHandlerOptions = {},
  ) {
    this.executor = new OperationExecutor(db, {
      onEvents: options.onEvents,
      recordFrames: options.recordFrames,
      onRefused: (refusal) => {
        for (const listener of this.refusalListeners) {
          try {
            listener(refusal);
          } catch {
            // One listener's failure is its own; the refusal stands.
          }
        }
      },
    });
    this.queue = options.queue ?? new KeyedSerialQueue();
  }

  /**
   * `listener` hears of every operation the executor failed `TERMINAL_RECOVERING` (never sent) because another
   * operation of its terminal is in doubt, once the refusal committed: the device connector's TerminalHub wakes its
   * recovery of that terminal with it. Called synchronously; a listener must not throw. Returns the unsubscribe.
   */
  onTerminalRecovering(listener: RecoveringRefusalListener): () => void {
    this.refusalListeners.add(listener);
    return () => this.refusalListeners.delete(listener);
  }

  async handle(command: TerminalCommand, source: DriverSource): Promise<TerminalCommandReply> {
    try {
      switch (command.kind) {
        case 'operation.execute': {
          if (this.queue.isFull(command.terminalId)) throw new QueueFullError(`${this.queue.depth(command.terminalId)} tasks already queued`);
          const hold = this.holdWhileQueued(command);
          this.queuedHere.add(command.operationId);
          const run = this.queue
            .run(command.terminalId, async (): Promise<TerminalCommandReply> => {
              // The hold goes on until the claim (it stops itself once the row is not PENDING): the executor
              // claims in beforeSend, after the driver has opened its session, which may take a while.
              this.queuedHere.delete(command.operationId);
              // The terminal's driver now, at the command's turn (a rebuilt one, if the terminal's row changed meanwhile).
              const driver = driverOf(source);
              const key = runKey(command);
              this.runningOn.set(key, driver);
              try {
                const report = await this.executor.execute(command, driver, command.command);
                return { ok: true, result: { ran: report.ran, state: report.state.toLowerCase() } };
              } finally {
                if (this.runningOn.get(key) === driver) this.runningOn.delete(key);
              }
            })
            .finally(() => {
              this.queuedHere.delete(command.operationId);
              hold.stop();
            });
          if (command.replyWhen !== 'queued') return await run;
          // Queued: from here this handler owns the operation; the caller follows its events or its row.
          this.track(run, command);
          return { ok: true, result: { queued: true } };
        }
        case 'operation.recover':
          return await this.queue.run(command.terminalId, async () => {
            const report = await recoverOperation(this.db, this.executor, driverOf(source), command);
            return { ok: true, result: { attempted: report.attempted, state: report.state.toLowerCase() } };
          });
        case 'operation.cancel': {
          // The driver the operation runs on, not the terminal's current one: a rebuilt driver does not know it.
          const result = await (this.runningOn.get(runKey(command)) ?? driverOf(source)).cancel(command.operationId);
          if (result === 'requested') return { ok: true, result: { cancel: 'requested' } };
          return {
            ok: false,
            code: 'TOO_LATE',
            message: result === 'too_late' ? 'the terminal can no longer interrupt this operation' : 'the operation is not running on the terminal',
          };
        }
        case 'terminal.refresh_info':
          return { ok: true, result: await this.queue.run(command.terminalId, () => driverOf(source).terminalInfo()) };
      }
    } catch (error) {
      if (error instanceof QueueFullError) return { ok: false, code: 'TERMINAL_BUSY', message: `the terminal's command queue is full: ${error.message}` };
      return { ok: false, code: 'INTERNAL', message: error instanceof Error ? error.message : String(error) };
    }
  }

  /** Operations accepted with `replyWhen: 'queued'` that are still queued or running here. */
  get backgroundCount(): number {
    return this.running.size;
  }

  /**
   * Waits until every operation accepted with `replyWhen: 'queued'` has finished, or `timeoutMs` passed
   * (graceful shutdown: what does not finish in time is left to recovery — PENDING rows are failed as
   * never sent by the sweep, SENT/IN_PROGRESS ones become unknown and are asked for). Resolves true when
   * nothing is left.
   */
  async drain(timeoutMs = Infinity): Promise<boolean> {
    const all = Promise.allSettled([...this.running]).then(() => true);
    if (!Number.isFinite(timeoutMs)) return all;
    let timer: NodeJS.Timeout | undefined;
    const expired = new Promise<boolean>((resolve) => (timer = setTimeout(() => resolve(false), timeoutMs)));
    return Promise.race([all, expired]).finally(() => clearTimeout(timer));
  }

  private track(run: Promise<unknown>, command: TerminalCommand): void {
    const tracked = run.catch((error: unknown) => this.options.onBackgroundError?.(error instanceof Error ? error : new Error(String(error)), command));
    this.running.add(tracked);
    void tracked.finally(() => this.running.delete(tracked));
  }

  /**
   * Recovery of every non-final operation of a terminal that has (just) come online here, e.g. its agent reconnected
   * after a connector crash; `notClaimedSince` is when it did (the tunnel's set-up began, or the terminal was added to
   * it). Runs in the terminal's queue, so after the commands queued before it and before any command that arrives
   * later (a new payment cannot destroy the evidence that Joinproto 95 / SSI GetLastResult rely on), and never while
   * this process's own executor runs a command of the terminal nor alongside another pass of the terminal:
   *  - PENDING unchanged since before `notClaimedSince` and for `neverSentAfterMs` → FAILED "never sent" (no executor
   *    claimed it; the claim PENDING → SENT is committed before the driver writes a byte of the command, so nothing
   *    reached the terminal). One queued here, or younger, is left (`leftPending`): a gateway may have inserted it
   *    before the terminal came online here and handed it to this instance after, so its command may be queued
   *    behind this pass or still on the bus (which drops it after its deadline; then the sweep fails it);
   *  - SENT / IN_PROGRESS unchanged since before `notClaimedSince` → UNKNOWN: claimed before the terminal came online
   *    here, by an executor that is gone (the commands of this instance queued before this one have finished, and the
   *    terminal's agent is connected here, not elsewhere). One that changed since — an executor elsewhere still
   *    reporting (a terminal moved here while another instance ran a command on it) — is left to the recovery sweep;
   *  - each UNKNOWN → `recoverOperation`, exactly what the bus command `operation.recover` runs.
   * The same pass may run again (the device connector retries a pass that failed or left one undecided, and runs one
   * when the executor refused an operation behind one in doubt): every write is a compare-and-set, so a repeat only
   * does what is still to be done. `options.signal` aborted: the pass stops before its next step.
   */
  recoverTerminal(
    ref: { tenantId: string; terminalId: string },
    driver: TerminalDriver,
    notClaimedSince: Date,
    options: TerminalRecoveryOptions = {},
  ): Promise<TerminalRecoveryReport> {
    return this.queue.run(ref.terminalId, async () => {
      const report: TerminalRecoveryReport = { neverSent: 0, leftPending: 0, markedUnknown: 0, recovered: 0, stillUnknown: 0 };
      const { signal } = options;
      if (signal?.aborted) return report;
      // The terminal's open operations (no completedAt: the partial index TerminalOperation_open_by_terminal_idx), not
      // its history: under row-level security a condition on "state" alone is never an index condition.
      const open = await this.db.querySql<{ id: string; state: OperationStateName }>(
        ref.tenantId,
        Prisma.sql`SELECT o."id", o."state" FROM "TerminalOperation" o
          WHERE o."terminalId" = ${ref.terminalId}::uuid AND o."completedAt" IS NULL AND o."state" IN (${OPEN_STATES_SQL})
          ORDER BY o."createdAt" ASC, o."id" ASC LIMIT ${TERMINAL_RECOVERY_BATCH}`,
      );
      for (const op of open) {
        if (signal?.aborted) break;
        if (op.state === 'PENDING') {
          const unchangedSince = new Date(Math.min(notClaimedSince.getTime(), Date.now() - (this.options.neverSentAfterMs ?? NEVER_SENT_AFTER_MS)));
          const result = this.queuedHere.has(op.id)
            ? undefined
            : await this.supervise(ref.tenantId, (tx) =>
                failNeverSent(tx, op.id, unchangedSince, 'never sent: no executor claimed it before the terminal reconnected', 'agent_reconnect'),
              );
          if (result?.changed) report.neverSent++;
          else if (result === undefined || result.row.state === 'PENDING') report.leftPending++;
          continue;
        }
        if (op.state === 'SENT' || op.state === 'IN_PROGRESS') {
          const result = await this.supervise(ref.tenantId, (tx) =>
            markStuckUnknown(tx, op.id, notClaimedSince, 'its executor is gone (the terminal reconnected); recovering', 'agent_reconnect'),
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

  /**
   * Keeps a queued operation's PENDING row fresh until it is claimed (or it stops being PENDING otherwise:
   * canceled, failed by a sweep). A failed touch is only logged by omission: the worst case is that the sweep fails
   * the operation as never sent, which the claim then respects (it finds no PENDING row and sends nothing).
   */
  private holdWhileQueued(ref: { tenantId: string; operationId: string }): { stop(): void } {
    const intervalMs = this.options.pendingHoldIntervalMs ?? PENDING_HOLD_INTERVAL_MS;
    let stopped = false;
    const timer = setInterval(() => {
      void this.db
        .withTenant(ref.tenantId, (tx) => holdPending(tx, ref.operationId))
        .then((held) => {
          if (!held) stop();
        })
        .catch(() => undefined);
    }, intervalMs);
    timer.unref();
    const stop = () => {
      if (stopped) return;
      stopped = true;
      clearInterval(timer);
    };
    return { stop };
  }

  private async supervise(tenantId: string, fn: (tx: TransactionClient) => Promise<SupervisionResult>): Promise<SupervisionResult> {
    const result = await this.db.withTenant(tenantId, fn);
    if (result.event !== undefined) this.options.onEvents?.([result.event]);
    return result;
  }
}
