import { type Database, Prisma, type PublishedEvent, type SqlClient, type WithTenantSqlOptions } from '@payorch/db';
import type { OperationFrame, OperationOutcome, OperationProgress, ProtocolRefs, TerminalDriver } from '@payorch/drivers';

import { type FrameStep, insertFrameSteps, loadCommand, outcomeWrite } from './records';
import { type OperationStateName, type OperationTypeName, sourcesOf, stateOfOutcome } from './state-machine';
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
}

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

/** What a run writes besides its transitions, in the order it happened: progress steps and protocol frames. */
export type RunStep = { kind: 'progress'; progress: OperationProgress } | { kind: 'frame'; frame: FrameStep };

/**
 * Types that may run while another operation of the terminal is UNKNOWN: they only read the terminal (no
 * transaction, so no evidence of the unknown one is overwritten), and recovery or the human resolving it
 * may need them. Every other type is failed as never sent (`TERMINAL_RECOVERING`, issue #15).
 */
export const RUNS_WHILE_RECOVERING: readonly OperationTypeName[] = ['TERMINAL_INFO'];

/**
 * Runs an operation on a terminal at most once; every write of its row goes through `transitionOperation`:
 *  1. claim PENDING → SENT (compare-and-set): only one executor wins, every other one returns `ran: false`
 *     without touching the terminal. The claim also refuses while another operation of the terminal is
 *     UNKNOWN; such an operation is failed as never sent (PENDING → FAILED, `TERMINAL_RECOVERING`);
 *  2. `beforeSend` stores the protocol references (DF01, SSI ticket, JPAY criteria) and commits before the
 *     driver writes a byte, so a crash after sending is recoverable; `protocolRefs IS NULL` therefore
 *     proves nothing was sent;
 *  3. progress moves SENT → IN_PROGRESS(subStatus) and is logged, off the critical path: written in the
 *     background (coalesced for PROGRESS_COALESCE_MS), and what is not written yet when the outcome comes
 *     goes into the outcome's transaction, before it. A progress write that fails is dropped, never the outcome.
 *     Protocol frames (masked by the driver) travel in the same queue, in wire order with the progress, as
 *     `frame` steps: one INSERT per run of consecutive frames, no transaction of their own on the critical path;
 *  4. the outcome is stored with a compare-and-set from SENT / IN_PROGRESS.
 * Each write is one transaction with its OperationEvent and DomainEvent, on the bare-driver path
 * (`Database.withTenantSql`, pipelined): claim, refs and outcome are the three transactions a run waits for.
 * Claim and refs stay two: the refs exist only once the driver has its session (Joinproto's DF01 comes from
 * the session's allocator), and a claim made later would let a losing executor open the terminal's link.
 */
export class OperationExecutor {
  constructor(
    private readonly db: Database,
    private readonly options: ExecutorOptions = {},
  ) {}

  async execute(ref: Ref, driver: TerminalDriver): Promise<ExecutionReport> {
    const claimed = await this.tx(ref, async (tx, events) => {
      // Twice at most: a PENDING row the claim refused because of an UNKNOWN one that was resolved in between.
      for (let attempt = 0; ; attempt++) {
        const claim = await transitionOperation(tx, {
          operationId: ref.operationId,
          from: ['PENDING'],
          to: 'SENT',
          unlessTerminalRecovering: { exceptTypes: RUNS_WHILE_RECOVERING },
          step: { kind: 'transition', event: 'operation.progress' },
        });
        if (claim !== null) {
          push(events, claim.event);
          return { command: await loadCommand(tx, claim.row), state: claim.row.state };
        }
        const refused = await this.refuseWhileRecovering(tx, ref, events);
        if (refused !== 'PENDING' || attempt > 0) return { command: undefined, state: refused };
      }
    });
    if (claimed.command === undefined) return { ran: false, state: claimed.state };

    let refsStored = false;
    const progress = new ProgressWriter((steps) => this.tx(ref, (tx, events) => this.writeProgress(tx, ref, steps, events)));
    const outcome = await driver
      .execute(claimed.command, {
        beforeSend: async (refs) => {
          await this.storeRefs(ref, refs);
          refsStored = true;
        },
        onProgress: (step) => progress.push({ kind: 'progress', progress: step }),
        ...(this.options.recordFrames === false ? {} : { onFrame: (frame: OperationFrame) => progress.pushFrame(frameStep(frame)) }),
      })
      .catch((error: unknown): OperationOutcome => ({
        // A driver must not reject; if one does, the refs tell whether anything may have been sent.
        state: refsStored ? 'unknown' : 'failed',
        reason: `driver error: ${error instanceof Error ? error.message : String(error)}`,
      }));
    const unwritten = await progress.close();
    if (unwritten.length > 0) {
      try {
        return { ran: true, state: await this.storeOutcome(ref, outcome, 'completed', unwritten) };
      } catch {
        // The progress steps broke the transaction (they are informational): the outcome alone, as below.
      }
    }
    return { ran: true, state: await this.storeOutcome(ref, outcome, 'completed') };
  }

  /**
   * Stores the final (or unknown) outcome of a running operation (`completed`) or of a recovery (`recovered`),
   * after the progress and frame steps not written yet (`progress`, in the same transaction).
   */
  async storeOutcome(ref: Ref, outcome: OperationOutcome, kind: 'completed' | 'recovered', progress: readonly RunStep[] = []): Promise<OperationStateName> {
    const to = stateOfOutcome(outcome.state);
    const allowed: readonly OperationStateName[] = kind === 'recovered' ? ['UNKNOWN'] : ['SENT', 'IN_PROGRESS'];
    const from = sourcesOf(to).filter((s) => allowed.includes(s));
    const final = to !== 'UNKNOWN';
    const event = kind === 'recovered' ? 'operation.recovered' : final ? 'operation.completed' : 'operation.unknown';
    return this.tx(ref, async (tx, events) => {
      await this.writeProgress(tx, ref, progress, events);
      const { set, mergeRefs } = outcomeWrite(outcome);
      const written = await transitionOperation(tx, {
        operationId: ref.operationId,
        from,
        to,
        set: { ...set, ...(final ? { completedAt: new Date() } : {}) },
        mergeRefs,
        step: { kind: kind === 'recovered' ? 'recovered' : 'transition', data: { reason: outcome.reason ?? null }, event },
      });
      if (written !== null) {
        push(events, written.event);
        return to;
      }
      // Someone else decided first (a supervisor, a human): report what is stored.
      const [stored] = await tx.$queryRaw<{ state: OperationStateName }[]>`SELECT "state" FROM "TerminalOperation" WHERE "id" = ${ref.operationId}::uuid`;
      return stored?.state ?? to;
    });
  }

  /**
   * The claim found no PENDING row free to run. If it is still PENDING, another operation of the terminal
   * is UNKNOWN: fail this one as never sent (nothing was sent: it never left PENDING).
   */
  private async refuseWhileRecovering(tx: SqlClient, ref: Ref, events: PublishedEvent[]): Promise<OperationStateName> {
    const [row] = await tx.$queryRaw<{ state: OperationStateName; blockingId: string | null }[]>`
      SELECT o."state", ${blockingOperation} AS "blockingId" FROM "TerminalOperation" o WHERE o."id" = ${ref.operationId}::uuid`;
    if (row === undefined || row.state !== 'PENDING') return row?.state ?? 'PENDING';
    if (row.blockingId === null) return 'PENDING';
    const blocking = { id: row.blockingId };
    const reason = `not sent: the terminal is recovering operation ${blocking.id}, whose outcome is unknown`;
    const failed = await transitionOperation(tx, {
      operationId: ref.operationId,
      from: ['PENDING'],
      to: 'FAILED',
      set: { stateReason: reason, error: { code: 'TERMINAL_RECOVERING', operationId: blocking.id }, completedAt: new Date() },
      step: { kind: 'transition', data: { reason, code: 'TERMINAL_RECOVERING', recoveringOperationId: blocking.id }, event: 'operation.completed' },
    });
    push(events, failed?.event);
    return failed?.row.state ?? 'PENDING';
  }

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
    for (let i = 0; i < steps.length; i++) {
      const step = steps[i]!;
      if (step.kind === 'frame') {
        const frames = [step.frame];
        while (steps[i + 1]?.kind === 'frame') frames.push((steps[++i] as Extract<RunStep, { kind: 'frame' }>).frame);
        await insertFrameSteps(tx, ref.operationId, frames);
        continue;
      }
      const progress = step.progress;
      const status = progress.kind === 'status';
      const written = await transitionOperation(tx, {
        operationId: ref.operationId,
        from: ['SENT', 'IN_PROGRESS'],
        to: status ? 'IN_PROGRESS' : null,
        set: status ? { subStatus: progress.subStatus } : undefined,
        step: { kind: 'progress', data: progressData(progress), event: 'operation.progress' },
      });
      push(events, written?.event);
    }
  }

  private async tx<T>(ref: Ref, fn: (tx: SqlClient, events: PublishedEvent[]) => Promise<T>, options?: WithTenantSqlOptions): Promise<T> {
    const events: PublishedEvent[] = [];
    const result = await this.db.withTenantSql(ref.tenantId, (tx) => fn(tx, events), options);
    if (events.length > 0) this.options.onEvents?.(events);
    return result;
  }
}

/**
 * The progress and frame steps of one run: written in the background, in order, one transaction per batch, at
 * most one batch at a time; a step waits PROGRESS_COALESCE_MS first so that those close together share a
 * transaction. A batch that fails is dropped (steps are informational; the OperationEvent log then lacks them).
 * Frames beyond MAX_FRAMES_PER_RUN are counted instead, and reported by one frame step without direction at close.
 */
class ProgressWriter {
  private readonly queued: RunStep[] = [];
  private timer: NodeJS.Timeout | undefined;
  private writing: Promise<void> | undefined;
  private closed = false;
  private frames = 0;
  private droppedFrames = 0;

  constructor(private readonly write: (steps: readonly RunStep[]) => Promise<void>) {}

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

  private schedule(): void {
    if (!this.closed && this.queued.length > 0 && this.timer === undefined && this.writing === undefined) {
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

/** The oldest other operation of the row `o`'s terminal that is UNKNOWN (its id), if any. */
const blockingOperation = Prisma.sql`(SELECT u."id" FROM "TerminalOperation" u WHERE u."terminalId" = o."terminalId" AND u."state" = 'UNKNOWN'
  AND u."id" <> o."id" ORDER BY u."createdAt" ASC LIMIT 1)`;

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
