import type { Database, PublishedEvent, TransactionClient } from '@payorch/db';
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
 *  3. progress moves SENT → IN_PROGRESS(subStatus) and is logged;
 *  4. the outcome is stored with a compare-and-set from SENT / IN_PROGRESS.
 * Each step is one transaction with its OperationEvent and DomainEvent.
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
    let progressChain: Promise<unknown> = Promise.resolve();
    const outcome = await driver
      .execute(claimed.command, {
        beforeSend: async (refs) => {
          await this.storeRefs(ref, refs);
          refsStored = true;
        },
        onProgress: (progress) => {
          progressChain = progressChain.then(() => this.storeProgress(ref, progress)).catch(() => undefined);
        },
      })
      .catch((error: unknown): OperationOutcome => ({
        // A driver must not reject; if one does, the refs tell whether anything may have been sent.
        state: refsStored ? 'unknown' : 'failed',
        reason: `driver error: ${error instanceof Error ? error.message : String(error)}`,
      }));
    await progressChain;
    return { ran: true, state: await this.storeOutcome(ref, outcome, 'completed') };
  }

  /** Stores the final (or unknown) outcome of a running operation (`completed`) or of a recovery (`recovered`). */
  async storeOutcome(ref: Ref, outcome: OperationOutcome, kind: 'completed' | 'recovered'): Promise<OperationStateName> {
    const to = stateOfOutcome(outcome.state);
    const allowed: readonly OperationStateName[] = kind === 'recovered' ? ['UNKNOWN'] : ['SENT', 'IN_PROGRESS'];
    const from = sourcesOf(to).filter((s) => allowed.includes(s));
    const final = to !== 'UNKNOWN';
    const event = kind === 'recovered' ? 'operation.recovered' : final ? 'operation.completed' : 'operation.unknown';
    return this.tx(ref, async (tx, events) => {
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
      return (await tx.terminalOperation.findUnique({ where: { id: ref.operationId }, select: { state: true } }))?.state ?? to;
    });
  }

  /**
   * The claim found no PENDING row free to run. If it is still PENDING, another operation of the terminal
   * is UNKNOWN: fail this one as never sent (nothing was sent: it never left PENDING).
   */
  private async refuseWhileRecovering(tx: TransactionClient, ref: Ref, events: PublishedEvent[]): Promise<OperationStateName> {
    const row = await tx.terminalOperation.findUnique({ where: { id: ref.operationId }, select: { state: true, terminalId: true } });
    if (row === null || row.state !== 'PENDING') return row?.state ?? 'PENDING';
    const blocking = await tx.terminalOperation.findFirst({
      where: { terminalId: row.terminalId, state: 'UNKNOWN', id: { not: ref.operationId } },
      select: { id: true },
      orderBy: { createdAt: 'asc' },
    });
    if (blocking === null) return 'PENDING';
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
    await this.tx(ref, async (tx) => {
      const written = await transitionOperation(tx, {
        operationId: ref.operationId,
        from: ['SENT', 'IN_PROGRESS'],
        to: null,
        set: { protocolRefs: refs as never },
        step: { kind: 'refs', data: { keys: Object.keys(refs) } },
      });
      // Refuse to send if the operation is no longer ours to send (it was failed or canceled meanwhile).
      if (written === null) throw new Error('operation is no longer in SENT state; not sending');
    });
  }

  private async storeProgress(ref: Ref, progress: OperationProgress): Promise<void> {
    await this.tx(ref, async (tx, events) => {
      const status = progress.kind === 'status';
      const written = await transitionOperation(tx, {
        operationId: ref.operationId,
        from: ['SENT', 'IN_PROGRESS'],
        to: status ? 'IN_PROGRESS' : null,
        set: status ? { subStatus: progress.subStatus } : undefined,
        step: { kind: 'progress', data: progressData(progress), event: 'operation.progress' },
      });
      push(events, written?.event);
    });
  }

  private async tx<T>(ref: Ref, fn: (tx: TransactionClient, events: PublishedEvent[]) => Promise<T>): Promise<T> {
    const events: PublishedEvent[] = [];
    const result = await this.db.withTenant(ref.tenantId, (tx) => fn(tx, events));
    if (events.length > 0) this.options.onEvents?.(events);
    return result;
  }
}

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
