import { type Database, Prisma, type PublishedEvent, type SqlClient, type WithTenantSqlOptions } from '@payorch/db';
import type { OperationOutcome, OperationProgress, ProtocolRefs, TerminalDriver } from '@payorch/drivers';

import { loadCommand, outcomeWrite } from './records';
import { type OperationStateName, type OperationTypeName, sourcesOf, stateOfOutcome } from './state-machine';
import { transitionOperation } from './transition';

/** Receives domain events after their transaction committed (e.g. publishes them to Redis pub/sub). */
export type EventSink = (events: readonly PublishedEvent[]) => void;

export interface ExecutorOptions {
  /** Called after each commit with the domain events it wrote. */
  onEvents?: EventSink;
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
 * Types that may run while another operation of the terminal is UNKNOWN: they only read the terminal (no
 * transaction, so no evidence of the unknown one is overwritten), and recovery or the human resolving it
 * may need them. Every other type is failed as never sent (`TERMINAL_RECOVERING`, issue #15).
 */
export const RUNS_WHILE_RECOVERING: readonly OperationTypeName[] = ['TERMINAL_INFO'];

/**
 * Runs an operation on a terminal at most once; every write goes through `transitionOperation`:
 *  1. claim PENDING → SENT (compare-and-set): only one executor wins, every other one returns `ran: false`
 *     without touching the terminal. The claim also refuses while another operation of the terminal is
 *     UNKNOWN; such an operation is failed as never sent (PENDING → FAILED, `TERMINAL_RECOVERING`);
 *  2. `beforeSend` stores the protocol references (DF01, SSI ticket, JPAY criteria) and commits before the
 *     driver writes a byte, so a crash after sending is recoverable; `protocolRefs IS NULL` therefore
 *     proves nothing was sent;
 *  3. progress moves SENT → IN_PROGRESS(subStatus) and is logged, off the critical path: written in the
 *     background (coalesced for PROGRESS_COALESCE_MS), and what is not written yet when the outcome comes
 *     goes into the outcome's transaction, before it. A progress write that fails is dropped, never the outcome;
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
        onProgress: (step) => progress.push(step),
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
   * after the progress steps not written yet (`progress`, in the same transaction).
   */
  async storeOutcome(
    ref: Ref,
    outcome: OperationOutcome,
    kind: 'completed' | 'recovered',
    progress: readonly OperationProgress[] = [],
  ): Promise<OperationStateName> {
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

  /** Progress steps, in order, in the caller's transaction (each its compare-and-set, OperationEvent and DomainEvent). */
  private async writeProgress(tx: SqlClient, ref: Ref, steps: readonly OperationProgress[], events: PublishedEvent[]): Promise<void> {
    for (const progress of steps) {
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
 * The progress steps of one run: written in the background, in order, one transaction per batch, at most one
 * batch at a time; a step waits PROGRESS_COALESCE_MS first so that those close together share a transaction.
 * A batch that fails is dropped (progress is informational; the OperationEvent log then lacks it).
 */
class ProgressWriter {
  private readonly queued: OperationProgress[] = [];
  private timer: NodeJS.Timeout | undefined;
  private writing: Promise<void> | undefined;
  private closed = false;

  constructor(private readonly write: (steps: readonly OperationProgress[]) => Promise<void>) {}

  push(step: OperationProgress): void {
    if (this.closed) return;
    this.queued.push(step);
    this.schedule();
  }

  private schedule(): void {
    if (!this.closed && this.queued.length > 0 && this.timer === undefined && this.writing === undefined) {
      this.timer = setTimeout(() => this.flush(), PROGRESS_COALESCE_MS);
    }
  }

  /** Stops writing: waits for the batch being written, and returns the steps nobody wrote (for the outcome's transaction). */
  async close(): Promise<OperationProgress[]> {
    this.closed = true;
    clearTimeout(this.timer);
    this.timer = undefined;
    await this.writing;
    return this.queued.splice(0);
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
