import { type Database, isDatabaseUnavailable, type PublishedEvent, type SqlClient, type WithTenantSqlOptions } from '@payorch/db';
import type { OperationCommandCopy } from '@payorch/domain';
import type { OperationCommand, OperationFrame, OperationOutcome, OperationProgress, ProtocolRefs, TerminalDriver } from '@payorch/drivers';

import {
  blockingOperation,
  commandOfCopy,
  commandOfRun,
  describeInDoubt,
  type FrameStep,
  insertFrameSteps,
  isCommandOf,
  loadRunStatement,
  type OperationInDoubt,
  type OperationRow,
  outcomeWrite,
  type RunStartRow,
} from './records';
import { type OperationStateName, sourcesOf, stateOfOutcome, toApiState } from './state-machine';
import { transitionOperation } from './transition';

/** Receives domain events after their transaction committed (e.g. publishes them to Redis pub/sub). */
export type EventSink = (events: readonly PublishedEvent[]) => void;

export interface ExecutorOptions {
  /** Called after each commit with the domain events it wrote. */
  onEvents?: EventSink;
  /**
   * Journal each protocol frame of a run, masked, as a `frame` step of the operation's timeline (default true;
   * `OPERATION_FRAME_JOURNAL=off` in the connector). Off: drivers do not even decode a copy of the bytes.
   */
  recordFrames?: boolean;
  /** Pause before the n-th attempt to store a sent command's outcome while PostgreSQL is unavailable (default OUTCOME_RETRY_MS). */
  outcomeRetryMs?: (attempt: number) => number;
  /**
   * Called after a refusal committed: the operation was failed as never sent (`TERMINAL_RECOVERING`) because another
   * operation of its terminal is in doubt (`blocking`). The device connector wakes its recovery of the terminal with
   * it (an orphan it is responsible for is decided now, not at the next retry or sweep). Must not throw.
   */
  onRefused?: (refusal: RecoveringRefusal) => void;
}

/** An operation the executor failed `TERMINAL_RECOVERING` (never sent): what was refused, and what blocked it. */
export interface RecoveringRefusal {
  tenantId: string;
  terminalId: string;
  /** The refused operation (now FAILED). */
  operationId: string;
  /** The other operation of the terminal in doubt that kept it from being sent (`blockingOperation`). */
  blocking: OperationInDoubt;
}

/** Why a claimed operation was failed unsent: its claim's answer was lost, and the driver sent nothing. */
const CLAIM_ANSWER_LOST = "not sent: the claim's answer was lost";
/** Why a claimed operation was failed unsent: the dispatch's copy of its command is not what PostgreSQL stores. */
const DIFFERS = 'not sent: the dispatched command is not the stored operation';

/** 100 ms, doubling, at most 5 s: a sent command's outcome waits for PostgreSQL as long as it is away. */
export const OUTCOME_RETRY_MS = (attempt: number): number => Math.min(5_000, 100 * 2 ** (attempt - 1));

export interface ExecutionReport {
  /** false: another executor had already claimed the operation (or it was not PENDING); nothing was sent. */
  ran: boolean;
  state: OperationStateName;
}

interface Ref {
  tenantId: string;
  operationId: string;
}

/**
 * How long a progress step (e.g. Joinproto's "processing" right after the frame is written) waits before it
 * is written on its own: an outcome that arrives meanwhile takes it along in its own transaction (one
 * transaction instead of two, in order). Short enough that a display or QR step is on the live stream
 * within a blink.
 */
export const PROGRESS_COALESCE_MS = 20;

/**
 * Frames journaled per run at most: a long SSI purchase polls GetStatus every second or so, and the timeline is
 * for people. Frames beyond it are counted, and one last frame step (no direction) says how many.
 */
export const MAX_FRAMES_PER_RUN = 400;

/**
 * Progress steps (status, display, QR) written per run at most: each is an OperationEvent and an `operation.progress`
 * event, and a terminal decides how many it pushes (a JPAY terminal's events, a hostile one's without end). Steps beyond
 * it are counted, and one last frame step (no direction) says how many; the outcome is written as always.
 */
export const MAX_PROGRESS_PER_RUN = 200;

/** What a run writes besides its transitions, in the order it happened: progress steps and protocol frames. */
export type RunStep = { kind: 'progress'; progress: OperationProgress } | { kind: 'frame'; frame: FrameStep };

/**
 * Runs an operation on a terminal at most once; every write of its row goes through `transitionOperation`:
 *  1. one read (a pipelined round trip, no lock, nothing written): the row, its command, and whether another
 *     operation of the terminal is in doubt (`blockingOperation`: SENT / IN_PROGRESS / UNKNOWN). Not PENDING →
 *     `ran: false`, the terminal untouched. Blocked → failed as never sent (PENDING → FAILED, `TERMINAL_RECOVERING`),
 *     the terminal untouched. Skipped when the dispatch carried the command its creator had just inserted
 *     (`execute`'s `dispatched`, issue 19: one transaction fewer on a payment's critical path): the claim then decides
 *     all of it (its guard refuses a row that is not PENDING or is blocked, as below), and the claimed row is checked
 *     against that command before anything is sent (`isCommandOf`): one that differs is not sent, and the operation is
 *     failed as never sent (SENT → FAILED, guarded by this run's references). PostgreSQL stays the truth of what a
 *     terminal is asked to do; a duplicate or blocked dispatch costs a session opened for nothing, never a command;
 *  2. the driver opens its session and assigns the protocol references (DF01, SSI ticket, JPAY criteria);
 *     `beforeSend` CLAIMS the operation with them in one transaction, committed before the driver writes a
 *     byte of the command: PENDING → SENT with `protocolRefs` (compare-and-set, with the same guard again, the
 *     terminal's claims serialised: `unlessTerminalInDoubt`). One process runs a terminal's commands one at a time
 *     and stores each outcome before the next, so another operation of the terminal SENT at claim time means another
 *     executor (alive or gone): this one is not sent.
 *     Only one executor wins; a loser's `beforeSend` throws, its driver sends nothing, and it returns
 *     `ran: false`. `protocolRefs IS NULL` therefore still proves nothing was sent. A driver that fails before
 *     `beforeSend` (unreachable terminal, unsupported type) fails the operation from PENDING;
 *  3. progress moves SENT → IN_PROGRESS(subStatus) and is logged, off the critical path: written in the
 *     background (coalesced for PROGRESS_COALESCE_MS), and what is not written yet when the outcome comes
 *     goes into the outcome's transaction, before it. A progress write that fails is dropped, never the outcome.
 *     Protocol frames (masked by the driver) travel in the same queue, in wire order with the progress, as
 *     `frame` steps: one INSERT per run of consecutive frames, no transaction of their own on the critical path.
 *     Steps that come before the claim (the session's link check) wait for it, and are dropped if it is lost;
 *  4. the outcome is stored with a compare-and-set from SENT / IN_PROGRESS.
 * Each write is one transaction with its OperationEvent and DomainEvent, on the bare-driver path
 * (`Database.withTenantSql`, pipelined): claim-with-refs and outcome are the two transactions a run waits for,
 * after the read. (Until issue #19's last round the claim came before the session and the refs after it: two
 * commits before the first byte.) The read before the session keeps a loser from opening the terminal's link in
 * all but a race of two executors within one round trip; the claim after it keeps that race safe.
 */
export class OperationExecutor {
  constructor(
    private readonly db: Database,
    private readonly options: ExecutorOptions = {},
  ) {}

  /**
   * `dispatched`: the command as the operation's creator inserted it (`TerminalCommand.command`), checked against the
   * claimed row before it is sent; without it the row is read first.
   */
  async execute(ref: Ref, driver: TerminalDriver, dispatched?: OperationCommandCopy): Promise<ExecutionReport> {
    let command: OperationCommand;
    if (dispatched === undefined) {
      const [found] = await this.db.querySql<RunStartRow>(ref.tenantId, loadRunStatement(ref.operationId));
      if (found === undefined) return { ran: false, state: 'PENDING' };
      if (found.state !== 'PENDING') return { ran: false, state: found.state };
      if (found.blocking !== null) {
        const refused = await this.refuse(ref);
        // Still PENDING: the one in doubt was decided meanwhile, so this one may run after all.
        if (refused !== 'PENDING') return { ran: false, state: refused };
      }
      command = commandOfRun(found);
    } else {
      command = commandOfCopy(ref.operationId, dispatched);
    }

    // 'open': not claimed yet; 'claimed': ours to send; `lost`: the state that made the claim fail; `differs`: claimed
    // with these references, but the stored operation is not the dispatched command (nothing sent).
    const run: { claim: 'open' | 'claimed' | { lost: OperationStateName } | { differs: ProtocolRefs }; inDoubt?: ProtocolRefs } = { claim: 'open' };
    // A batch of steps: its statements and COMMIT in one write (writeProgress issues them all before waiting).
    const progress = new ProgressWriter((steps) => this.tx(ref, (tx, events) => this.writeProgress(tx, ref, steps, events), { pipelineCommit: true }));
    const outcome = await driver
      .execute(command, {
        beforeSend: async (sent) => {
          // Which device the command goes to travels with its references: recovery asks only that device (recovery.ts).
          const refs = withDevice(sent, driver.device);
          if (run.claim === 'claimed') return this.storeRefs(ref, refs);
          if (run.claim !== 'open') throw new Error('lost' in run.claim ? `operation is ${run.claim.lost}; not sending` : DIFFERS);
          const claimed = await this.claim(ref, refs).catch((error: unknown) => {
            // The claim's answer was lost (its connection dropped): it may have committed. The driver sends nothing.
            run.inDoubt = refs;
            throw error;
          });
          if (!claimed.ours) {
            run.claim = { lost: claimed.state };
            throw new Error(`operation is ${claimed.state}, no longer PENDING; not sending`);
          }
          if (dispatched !== undefined && !isCommandOf(claimed.row, command)) {
            run.claim = { differs: refs };
            throw new Error('the dispatched command is not the stored operation; not sending');
          }
          run.claim = 'claimed';
          progress.release();
        },
        onProgress: (step) => progress.pushProgress(step),
        ...(this.options.recordFrames === false ? {} : { onFrame: (frame: OperationFrame) => progress.pushFrame(frameStep(frame)) }),
      })
      .catch((error: unknown): OperationOutcome => ({
        // A driver must not reject; if one does, the claim tells whether anything may have been sent.
        state: run.claim === 'claimed' ? 'unknown' : 'failed',
        reason: `driver error: ${error instanceof Error ? error.message : String(error)}`,
      }));
    const unwritten = await progress.close();
    const { claim } = run;
    if (claim !== 'open' && claim !== 'claimed') {
      if ('lost' in claim) return { ran: false, state: claim.lost };
      return this.failUnsentClaim(ref, claim.differs, { ran: false, state: 'SENT' }, DIFFERS);
    }
    const kind = claim === 'claimed' ? 'completed' : 'unclaimed';
    // Nothing was sent: a failure leaves the row PENDING, which the recovery sweep fails as never sent; a claim whose
    // answer was lost may have left it SENT, which is failed at once. Both paths (with progress steps to store or
    // without) end here: until 2026-12-07 the first returned before this check, and a run that had journaled frames
    // before its claim (SSI's baseline read, JPAY's anchors) left its row SENT until the sweep.
    const unclaimed = (report: ExecutionReport) =>
      run.inDoubt !== undefined && report.state === 'SENT' ? this.failUnsentClaim(ref, run.inDoubt, report, CLAIM_ANSWER_LOST) : report;
    if (unwritten.length > 0) {
      try {
        const report = await this.storeRun(ref, outcome, kind, unwritten);
        return kind === 'unclaimed' ? await unclaimed(report) : report;
      } catch {
        // The progress steps broke the transaction (they are informational): the outcome alone, as below.
      }
    }
    if (kind === 'unclaimed') return unclaimed(await this.storeRun(ref, outcome, kind));
    return this.storeSentOutcome(ref, outcome);
  }

  /**
   * A claim whose answer was lost but which committed (the row is SENT with this run's references) while the driver,
   * refused by `beforeSend`, sent nothing: SENT → FAILED at once, guarded by those references (no other run's claim).
   * Before, the row stayed SENT, counted as in flight (a settlement waited for it), until the recovery sweep made it
   * UNKNOWN ten minutes later and recovery found it not performed.
   */
  private async failUnsentClaim(ref: Ref, refs: ProtocolRefs, stored: ExecutionReport, reason: string): Promise<ExecutionReport> {
    try {
      const failed = await this.tx(
        ref,
        async (tx, events) => {
          const written = await transitionOperation(tx, {
            operationId: ref.operationId,
            from: ['SENT'],
            to: 'FAILED',
            refsAre: refs as Record<string, unknown>,
            set: { stateReason: reason, error: { reason, code: null } as never },
            step: { kind: 'transition', data: { reason }, event: 'operation.completed' },
          });
          push(events, written?.event);
          return written;
        },
        { pipelineCommit: true },
      );
      return failed === null ? stored : { ran: false, state: 'FAILED' };
    } catch {
      // PostgreSQL is still away: the recovery sweep makes the row UNKNOWN, and recovery finds it not performed.
      return stored;
    }
  }

  /**
   * The outcome of a command that was sent is stored before the run ends, whatever it takes: the caller holds the
   * terminal's command queue until then, so no other command reaches the terminal while this one's outcome is not in
   * PostgreSQL. Before, one failed write left the row SENT and the queue moved on: the next payment was sent, and the
   * recovery of the first one (Joinproto 95 and SSI GetLastResult know only the terminal's last transaction) later
   * found nothing and stored FAILED for a payment the terminal had approved. While PostgreSQL is unavailable the write
   * is retried (outcomeRetryMs); an outcome PostgreSQL refuses (a value it cannot store) is stored as UNKNOWN instead,
   * whose gate keeps new work off the terminal until recovery or a human decides it. The compare-and-set makes a
   * repeated write harmless (an outcome whose COMMIT answer was lost is found stored).
   */
  private async storeSentOutcome(ref: Ref, sent: OperationOutcome): Promise<ExecutionReport> {
    let outcome = sent;
    for (let attempt = 1; ; attempt++) {
      try {
        return await this.storeRun(ref, outcome, 'completed');
      } catch (error) {
        if (isDatabaseUnavailable(error)) {
          await new Promise((resolve) => setTimeout(resolve, (this.options.outcomeRetryMs ?? OUTCOME_RETRY_MS)(attempt)));
          continue;
        }
        if (outcome.state === 'unknown' && outcome !== sent) throw error;
        outcome = { state: 'unknown', reason: `the outcome could not be stored (${(error as Error).message.slice(0, 200)}); recovery asks the terminal again` };
      }
    }
  }

  /**
   * The outcome of a run: claimed (`completed`); or not claimed because the driver never called `beforeSend`
   * (`unclaimed`): a failure before sending moves PENDING → FAILED, and an outcome a driver reports without
   * having asked to send (it should not) is claimed and stored in one transaction, PENDING → SENT → outcome.
   */
  private async storeRun(ref: Ref, outcome: OperationOutcome, kind: 'completed' | 'unclaimed', progress: readonly RunStep[] = []): Promise<ExecutionReport> {
    if (kind === 'completed') return { ran: true, state: await this.storeOutcome(ref, outcome, 'completed', progress) };
    const failed = outcome.state === 'failed';
    return this.tx(ref, async (tx, events) => {
      const claimed = failed
        ? null
        : await transitionOperation(tx, {
            operationId: ref.operationId,
            from: ['PENDING'],
            to: 'SENT',
            step: { kind: 'transition', data: { reason: 'the driver reported an outcome without a claim' }, event: 'operation.progress' },
          });
      if (!failed && claimed === null) return { ran: false, state: await this.storedState(tx, ref) };
      push(events, claimed?.event);
      const state = await this.writeOutcome(tx, events, ref, outcome, failed ? ['PENDING'] : ['SENT'], 'completed', progress);
      return state === null ? { ran: false, state: await this.storedState(tx, ref) } : { ran: true, state };
    });
  }

  /**
   * The claim: PENDING → SENT with the protocol references, unless another operation of the terminal is in doubt
   * (then this one is failed as never sent, in a transaction of its own). `ours`: this run may send; else `state` is
   * the state someone else left the row in (SENT too, when another executor won).
   */
  private async claim(
    ref: Ref,
    refs: ProtocolRefs,
  ): Promise<{ ours: true; state: OperationStateName; row: OperationRow } | { ours: false; state: OperationStateName }> {
    // Twice at most: a PENDING row the guard refused because of one in doubt that was decided in between.
    for (let attempt = 0; ; attempt++) {
      // One statement (the row, its step and its event) with COMMIT right behind it: one round trip before the first byte.
      const claimed = await this.tx(
        ref,
        async (tx, events) => {
          const written = await transitionOperation(tx, {
            operationId: ref.operationId,
            from: ['PENDING'],
            to: 'SENT',
            set: { protocolRefs: refs as never },
            unlessTerminalInDoubt: true,
            step: { kind: 'transition', event: 'operation.progress' },
          });
          push(events, written?.event);
          return written;
        },
        { pipelineCommit: true },
      );
      if (claimed !== null) return { ours: true, state: claimed.row.state, row: claimed.row };
      // Not claimed (rare): why, in a transaction of its own; the row is left as it is unless it is still PENDING
      // behind an operation in doubt (then failed as never sent, a compare-and-set from PENDING).
      const refused = await this.refuse(ref);
      if (refused !== 'PENDING' || attempt > 0) return { ours: false, state: refused };
    }
  }

  /**
   * Stores the final (or unknown) outcome of a running operation (`completed`) or of a recovery (`recovered`),
   * after the progress and frame steps not written yet (`progress`, in the same transaction).
   */
  async storeOutcome(ref: Ref, outcome: OperationOutcome, kind: 'completed' | 'recovered', progress: readonly RunStep[] = []): Promise<OperationStateName> {
    const allowed: readonly OperationStateName[] = kind === 'recovered' ? ['UNKNOWN'] : ['SENT', 'IN_PROGRESS'];
    // The steps and the outcome are issued together and COMMIT right behind them: one round trip.
    const stored = await this.tx(ref, (tx, events) => this.writeOutcome(tx, events, ref, outcome, allowed, kind, progress), { pipelineCommit: true });
    // Someone else decided first (a supervisor, a human): report what is stored.
    return stored ?? this.tx(ref, (tx) => this.storedState(tx, ref), { pipelineCommit: true });
  }

  /** The progress steps, then the outcome's compare-and-set from `allowed`; null when the row was in none of them. */
  private async writeOutcome(
    tx: SqlClient,
    events: PublishedEvent[],
    ref: Ref,
    outcome: OperationOutcome,
    allowed: readonly OperationStateName[],
    kind: 'completed' | 'recovered',
    progress: readonly RunStep[],
  ): Promise<OperationStateName | null> {
    const to = stateOfOutcome(outcome.state);
    const from = sourcesOf(to).filter((s) => allowed.includes(s));
    const final = to !== 'UNKNOWN';
    const event = kind === 'recovered' ? 'operation.recovered' : final ? 'operation.completed' : 'operation.unknown';
    // Issued one behind the other without waiting for answers (each step is one statement, nothing decided on them).
    const steps = this.issueProgress(tx, ref, progress);
    const { set, mergeRefs } = outcomeWrite(outcome);
    const writing = transitionOperation(tx, {
      operationId: ref.operationId,
      from,
      to,
      set: { ...set, ...(final ? { completedAt: new Date() } : {}) },
      mergeRefs,
      step: { kind: kind === 'recovered' ? 'recovered' : 'transition', data: { reason: outcome.reason ?? null }, event },
    });
    const [stepEvents, written] = await settledInOrder(steps, writing);
    for (const stepEvent of stepEvents) push(events, stepEvent);
    if (written === null) return null;
    push(events, written.event);
    return to;
  }

  private async storedState(tx: SqlClient, ref: Ref): Promise<OperationStateName> {
    const [stored] = await tx.$queryRaw<{ state: OperationStateName }[]>`SELECT "state" FROM "TerminalOperation" WHERE "id" = ${ref.operationId}::uuid`;
    return stored?.state ?? 'PENDING';
  }

  /** `refuseWhileRecovering` in a transaction of its own; once it committed a refusal, `onRefused` hears of it. */
  private async refuse(ref: Ref): Promise<OperationStateName> {
    const decided: { refusal?: RecoveringRefusal } = {};
    const state = await this.tx(ref, (tx, events) => {
      decided.refusal = undefined; // a transaction run again decides again
      return this.refuseWhileRecovering(tx, ref, events, (refusal) => (decided.refusal = refusal));
    });
    if (decided.refusal !== undefined) {
      try {
        this.options.onRefused?.(decided.refusal);
      } catch {
        // A listener's failure is its own: the refusal stands, and the recovery sweep remains the backstop.
      }
    }
    return state;
  }

  /**
   * The read or the claim found the row blocked. If it is still PENDING behind another operation of the terminal in
   * doubt (`blockingOperation`), fail it as never sent (nothing was sent: it never left PENDING); the client sees
   * `error.code` TERMINAL_RECOVERING with the blocking operation's id and state, and sends it again later with a new key.
   * `refused` is told what was refused and why (called inside the transaction; `refuse` reports it after the commit).
   */
  private async refuseWhileRecovering(
    tx: SqlClient,
    ref: Ref,
    events: PublishedEvent[],
    refused: (refusal: RecoveringRefusal) => void,
  ): Promise<OperationStateName> {
    const [row] = await tx.$queryRaw<{ state: OperationStateName; terminalId: string; blocking: OperationInDoubt | null }[]>`
      SELECT o."state", o."terminalId", ${blockingOperation} AS "blocking" FROM "TerminalOperation" o WHERE o."id" = ${ref.operationId}::uuid`;
    if (row === undefined || row.state !== 'PENDING') return row?.state ?? 'PENDING';
    const { blocking } = row;
    if (blocking === null) return 'PENDING';
    const reason = `not sent: ${describeInDoubt(blocking)}`;
    const state = toApiState(blocking.state);
    const failed = await transitionOperation(tx, {
      operationId: ref.operationId,
      from: ['PENDING'],
      to: 'FAILED',
      set: { stateReason: reason, error: { code: 'TERMINAL_RECOVERING', operationId: blocking.id, state }, completedAt: new Date() },
      step: {
        kind: 'transition',
        data: { reason, code: 'TERMINAL_RECOVERING', recoveringOperationId: blocking.id, recoveringOperationState: state },
        event: 'operation.completed',
      },
    });
    push(events, failed?.event);
    if (failed !== null) refused({ tenantId: ref.tenantId, terminalId: row.terminalId, operationId: ref.operationId, blocking });
    return failed?.row.state ?? 'PENDING';
  }

  /** Protocol references of a claimed run's later `beforeSend` (a driver that sends more than one command). */
  private async storeRefs(ref: Ref, refs: ProtocolRefs): Promise<void> {
    // One statement and nothing to publish: COMMIT travels with it (one round trip before the first byte).
    const written = await this.tx(
      ref,
      (tx) =>
        transitionOperation(tx, {
          operationId: ref.operationId,
          from: ['SENT', 'IN_PROGRESS'],
          to: null,
          set: { protocolRefs: refs as never },
          step: { kind: 'refs', data: { keys: Object.keys(refs) } },
        }),
      { pipelineCommit: true },
    );
    // Refuse to send if the operation is no longer ours to send (it was failed or canceled meanwhile).
    if (written === null) throw new Error('operation is no longer in SENT state; not sending');
  }

  /**
   * Progress and frame steps, in order, in the caller's transaction: each progress step its compare-and-set,
   * OperationEvent and DomainEvent; each run of consecutive frames one INSERT of OperationEvent rows (no
   * DomainEvent: frames are read from the timeline, not pushed on the bus).
   */
  private async writeProgress(tx: SqlClient, ref: Ref, steps: readonly RunStep[], events: PublishedEvent[]): Promise<void> {
    const [stepEvents] = await settledInOrder(this.issueProgress(tx, ref, steps), Promise.resolve(null));
    for (const stepEvent of stepEvents) push(events, stepEvent);
  }

  /**
   * Sends the statements of the steps, in order, without waiting for their answers (one statement per step, or per
   * run of frames, nothing decided on them); resolves each to the DomainEvent it wrote, if any.
   */
  private issueProgress(tx: SqlClient, ref: Ref, steps: readonly RunStep[]): Promise<PublishedEvent | undefined>[] {
    const issued: Promise<PublishedEvent | undefined>[] = [];
    for (let i = 0; i < steps.length; i++) {
      const step = steps[i]!;
      if (step.kind === 'frame') {
        const frames = [step.frame];
        while (steps[i + 1]?.kind === 'frame') frames.push((steps[++i] as Extract<RunStep, { kind: 'frame' }>).frame);
        issued.push(insertFrameSteps(tx, ref.operationId, frames).then(() => undefined));
        continue;
      }
      const progress = step.progress;
      const status = progress.kind === 'status';
      issued.push(
        transitionOperation(tx, {
          operationId: ref.operationId,
          from: ['SENT', 'IN_PROGRESS'],
          to: status ? 'IN_PROGRESS' : null,
          set: status ? { subStatus: progress.subStatus } : undefined,
          step: { kind: 'progress', data: progressData(progress), event: 'operation.progress' },
        }).then((written) => written?.event),
      );
    }
    return issued;
  }

  private async tx<T>(ref: Ref, fn: (tx: SqlClient, events: PublishedEvent[]) => Promise<T>, options?: WithTenantSqlOptions): Promise<T> {
    const events: PublishedEvent[] = [];
    const result = await this.db.withTenantSql(ref.tenantId, (tx) => fn(tx, events), options);
    if (events.length > 0) this.options.onEvents?.(events);
    return result;
  }
}

/**
 * Waits for statements issued together: the steps' events in their order and the last statement's result, or the first
 * failure in issue order (once every statement has answered: none is left running unobserved).
 */
async function settledInOrder<T>(steps: Promise<PublishedEvent | undefined>[], last: Promise<T>): Promise<[(PublishedEvent | undefined)[], T]> {
  const settled = await Promise.allSettled([...steps, last]);
  const failed = settled.find((s): s is PromiseRejectedResult => s.status === 'rejected');
  if (failed !== undefined) throw failed.reason;
  const values = settled.map((s) => (s as PromiseFulfilledResult<unknown>).value);
  return [values.slice(0, -1) as (PublishedEvent | undefined)[], values.at(-1) as T];
}

/**
 * The progress and frame steps of one run: held until the run is claimed (`release`), then written in the
 * background, in order, one transaction per batch, at most one batch at a time; a step waits
 * PROGRESS_COALESCE_MS first so that those close together share a transaction. A batch that fails is dropped
 * (steps are informational; the OperationEvent log then lacks them). Frames beyond MAX_FRAMES_PER_RUN and progress
 * steps beyond MAX_PROGRESS_PER_RUN are counted instead, and reported by one frame step without direction at close.
 */
class ProgressWriter {
  private readonly queued: RunStep[] = [];
  private timer: NodeJS.Timeout | undefined;
  private writing: Promise<void> | undefined;
  private held = true;
  private closed = false;
  private frames = 0;
  private droppedFrames = 0;
  private progressSteps = 0;
  private droppedProgress = 0;

  constructor(private readonly write: (steps: readonly RunStep[]) => Promise<void>) {}

  pushProgress(progress: OperationProgress): void {
    if (this.closed) return;
    if (this.progressSteps >= MAX_PROGRESS_PER_RUN) {
      this.droppedProgress++;
      return;
    }
    this.progressSteps++;
    this.push({ kind: 'progress', progress });
  }

  push(step: RunStep): void {
    if (this.closed) return;
    this.queued.push(step);
    this.schedule();
  }

  pushFrame(frame: FrameStep): void {
    if (this.closed) return;
    if (this.frames >= MAX_FRAMES_PER_RUN) {
      this.droppedFrames++;
      return;
    }
    this.frames++;
    this.push({ kind: 'frame', frame });
  }

  /** The run is claimed: what came before (the session's link check) and what comes next may be written. */
  release(): void {
    this.held = false;
    this.schedule();
  }

  private schedule(): void {
    if (!this.closed && !this.held && this.queued.length > 0 && this.timer === undefined && this.writing === undefined) {
      this.timer = setTimeout(() => this.flush(), PROGRESS_COALESCE_MS);
    }
  }

  /** Stops writing: waits for the batch being written, and returns the steps nobody wrote (for the outcome's transaction). */
  async close(): Promise<RunStep[]> {
    this.closed = true;
    clearTimeout(this.timer);
    this.timer = undefined;
    await this.writing;
    const unwritten = this.queued.splice(0);
    if (this.droppedFrames > 0) {
      const note = `${this.droppedFrames} more frames were exchanged; the journal keeps the first ${MAX_FRAMES_PER_RUN} of a run`;
      unwritten.push({ kind: 'frame', frame: { direction: null, summary: 'frames not recorded', masked: note, at: new Date().toISOString() } });
    }
    if (this.droppedProgress > 0) {
      const note = `${this.droppedProgress} more progress steps came from the terminal; the timeline keeps the first ${MAX_PROGRESS_PER_RUN} of a run`;
      unwritten.push({ kind: 'frame', frame: { direction: null, summary: 'progress not recorded', masked: note, at: new Date().toISOString() } });
    }
    return unwritten;
  }

  private flush(): void {
    this.timer = undefined;
    this.writing = (async () => {
      while (!this.closed && this.queued.length > 0) await this.write(this.queued.splice(0)).catch(() => undefined);
      this.writing = undefined;
    })();
  }
}

function push(events: PublishedEvent[], event: PublishedEvent | undefined): void {
  if (event !== undefined) events.push(event);
}

/** The `data` of a frame step: the driver's masked frame and when the connector saw it. */
function frameStep(frame: OperationFrame): FrameStep {
  return { direction: frame.direction, summary: frame.summary, masked: frame.masked, at: new Date().toISOString() };
}

function progressData(progress: OperationProgress): Record<string, unknown> {
  switch (progress.kind) {
    case 'status':
      return { progress: 'status', subStatus: progress.subStatus, text: progress.text ?? null };
    case 'display':
      return { progress: 'display', text: progress.text };
    case 'qr':
      return { progress: 'qr', action: progress.action, url: progress.url ?? null };
  }
}

/** The key of `ProtocolRefs` naming the device a command was sent to (TerminalDriver.device). */
export const SENT_TO_DEVICE = 'sentToDevice';

function withDevice(refs: ProtocolRefs, device: string | undefined): ProtocolRefs {
  return device === undefined ? refs : { ...refs, [SENT_TO_DEVICE]: device };
}
