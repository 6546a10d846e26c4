import type { Database, PublishedEvent, TransactionClient } from '@payorch/db';
import type { OperationOutcome, OperationProgress, ProtocolRefs, TerminalDriver } from '@payorch/drivers';

import { loadCommand, type OperationRow, outcomeColumns, recordStep } from './records';
import { type OperationStateName, sourcesOf, stateOfOutcome } from './state-machine';

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
 * Runs an operation on a terminal at most once:
 *  1. claim: `UPDATE … SET state = SENT WHERE id = ? AND state = PENDING` — only one executor wins, every
 *     other one returns `ran: false` without touching the terminal;
 *  2. `beforeSend` stores the protocol references (DF01, SSI ticket, JPAY criteria) and commits before the
 *     driver writes a byte, so a crash after sending is recoverable; `protocolRefs IS NULL` therefore
 *     proves nothing was sent;
 *  3. progress moves SENT → IN_PROGRESS(subStatus) and is logged;
 *  4. the outcome is stored with a conditional update from SENT / IN_PROGRESS.
 * Every step writes an OperationEvent and a DomainEvent in the same transaction.
 */
export class OperationExecutor {
  constructor(
    private readonly db: Database,
    private readonly options: ExecutorOptions = {},
  ) {}

  async execute(ref: Ref, driver: TerminalDriver): Promise<ExecutionReport> {
    const claimed = await this.tx(ref, async (tx, events) => {
      const { count } = await tx.terminalOperation.updateMany({ where: { id: ref.operationId, state: 'PENDING' }, data: { state: 'SENT' } });
      const row = (await tx.terminalOperation.findUnique({ where: { id: ref.operationId } })) as OperationRow | null;
      if (count === 0 || row === null) return { row, command: undefined };
      push(events, await recordStep(tx, row, { kind: 'transition', from: 'PENDING', to: 'SENT', event: 'operation.progress' }));
      return { row, command: await loadCommand(tx, row) };
    });
    if (claimed.command === undefined || claimed.row === null) return { ran: false, state: claimed.row?.state ?? 'PENDING' };

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

  /** Stores the final (or unknown) outcome of a running operation. */
  async storeOutcome(ref: Ref, outcome: OperationOutcome, kind: 'completed' | 'recovered'): Promise<OperationStateName> {
    const to = stateOfOutcome(outcome.state);
    return this.tx(ref, async (tx, events) => {
      const current = (await tx.terminalOperation.findUniqueOrThrow({ where: { id: ref.operationId } })) as OperationRow;
      const from = current.state;
      const allowed = kind === 'recovered' ? ['UNKNOWN' as const] : (['SENT', 'IN_PROGRESS'] as const);
      const sources = sourcesOf(to).filter((s) => (allowed as readonly string[]).includes(s));
      const final = to !== 'UNKNOWN';
      const { count } = await tx.terminalOperation.updateMany({
        where: { id: ref.operationId, state: { in: sources } },
        data: { state: to, ...outcomeColumns(outcome, current.protocolRefs), ...(final ? { completedAt: new Date() } : {}) },
      });
      if (count === 0) return from;
      const row = (await tx.terminalOperation.findUniqueOrThrow({ where: { id: ref.operationId } })) as OperationRow;
      const event = kind === 'recovered' ? 'operation.recovered' : final ? 'operation.completed' : 'operation.unknown';
      push(events, await recordStep(tx, row, { kind: kind === 'recovered' ? 'recovered' : 'transition', from, to, data: { reason: outcome.reason ?? null }, event }));
      return to;
    });
  }

  private async storeRefs(ref: Ref, refs: ProtocolRefs): Promise<void> {
    await this.tx(ref, async (tx) => {
      const { count } = await tx.terminalOperation.updateMany({
        where: { id: ref.operationId, state: { in: ['SENT', 'IN_PROGRESS'] } },
        data: { protocolRefs: refs as never },
      });
      // Refuse to send if the operation is no longer ours to send (it was failed or canceled meanwhile).
      if (count === 0) throw new Error('operation is no longer in SENT state; not sending');
      const row = (await tx.terminalOperation.findUniqueOrThrow({ where: { id: ref.operationId } })) as OperationRow;
      await recordStep(tx, row, { kind: 'refs', from: null, to: null, data: { keys: Object.keys(refs) } });
    });
  }

  private async storeProgress(ref: Ref, progress: OperationProgress): Promise<void> {
    await this.tx(ref, async (tx, events) => {
      const current = (await tx.terminalOperation.findUniqueOrThrow({ where: { id: ref.operationId } })) as OperationRow;
      if (current.state !== 'SENT' && current.state !== 'IN_PROGRESS') return;
      let row = current;
      if (progress.kind === 'status') {
        await tx.terminalOperation.updateMany({
          where: { id: ref.operationId, state: { in: ['SENT', 'IN_PROGRESS'] } },
          data: { state: 'IN_PROGRESS', subStatus: progress.subStatus },
        });
        row = (await tx.terminalOperation.findUniqueOrThrow({ where: { id: ref.operationId } })) as OperationRow;
      }
      const data = progressData(progress);
      push(
        events,
        await recordStep(tx, row, {
          kind: 'progress',
          from: progress.kind === 'status' ? current.state : null,
          to: progress.kind === 'status' ? 'IN_PROGRESS' : null,
          data,
          event: 'operation.progress',
        }),
      );
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
