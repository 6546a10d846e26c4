import {
  eventIdentity,
  expectEvents,
  isSqlTransaction,
  Prisma,
  publishEvent,
  recordEvent,
  type DomainEventType,
  type PublishedEvent,
  type SqlClient,
} from '@payorch/db';
import { PayorchError } from '@payorch/domain';

import type { OperationColumns } from './columns';
import { blockingOperation, eventData, eventDataSql, type OperationRow, operationRowColumns, terminalClaimLock, toOperationView } from './records';
import { canTransition, isFinal, type OperationStateName, toApiState } from './state-machine';

/**
 * THE writer of `TerminalOperation.state` (with `create.ts`, which inserts the PENDING row). Every state
 * change — the executor's claim, progress and outcome, recovery, the supervisors, the gateway's cancel and
 * fail-before-send, the settlement worker's test runners — goes through {@link transitionOperation}:
 *   1. the pair `from → to` is checked against TRANSITIONS before the database is touched;
 *   2. ONE statement compares and sets the row (`… WHERE id = $1 AND state IN (from) [AND "updatedAt" < $since]`),
 *      locks it, and appends its OperationEvent (with the state it really came from) and its DomainEvent (its data
 *      made from the written row: `eventDataSql`) in data-modifying CTEs. The claim (`unlessTerminalInDoubt`) is
 *      preceded by its terminal's claim lock, in the same write.
 * The RETURNING row is the row: no read before or after, and nothing written after it (issue 19: the event was a
 * second statement, sent once the row was back, so a transition cost two round trips; now a caller can write COMMIT
 * right behind it, `WithTenantSqlOptions.pipelineCommit`). `tests: transition.spec.ts` (no SQL), the
 * property test `transition.property.int-spec.ts`, and `architecture.spec.ts`, which fails on any other writer.
 */

export type OperationTransitionErrorCode = 'ILLEGAL_TRANSITION' | 'INVALID_WRITE';

/** A programmer error: the write was refused before anything was sent to the database. */
export class OperationTransitionError extends PayorchError<OperationTransitionErrorCode> {}

const COLUMN_TYPES: Readonly<Record<keyof OperationColumns, 'text' | 'timestamptz' | 'jsonb'>> = {
  approvalCode: 'text',
  completedAt: 'timestamptz',
  error: 'jsonb',
  maskedPan: 'text',
  protocolRefs: 'jsonb',
  receipt: 'jsonb',
  responseCode: 'text',
  responseMessage: 'text',
  result: 'jsonb',
  rrn: 'text',
  stateReason: 'text',
  subStatus: 'text',
};

/** What the OperationEvent (and the DomainEvent, if `event` is set) of this write records. */
export interface OperationStep {
  kind: string;
  data?: Record<string, unknown>;
  /** The domain event published with it (none for internal bookkeeping such as protocol refs). */
  event?: DomainEventType;
}

export interface OperationTransition {
  operationId: string;
  /** The states the row must be in for the write to apply (compare-and-set). */
  from: readonly OperationStateName[];
  /**
   * The new state, which TRANSITIONS must allow from every state of `from`. `null`: the state stays as
   * it is (protocol refs, a display text) and the OperationEvent records no transition.
   */
  to: OperationStateName | null;
  set?: OperationColumns;
  /** Merged into the stored `protocolRefs` (`stored || refs`) instead of replacing them; empty = left as stored (NULL stays NULL). */
  mergeRefs?: Record<string, unknown>;
  /** `recoveryAttempts + 1`. */
  countRecoveryAttempt?: boolean;
  /** Applies only while `updatedAt < unchangedSince`: a supervisor yields to a writer that is still alive. */
  unchangedSince?: Date;
  /** Applies only while the stored `protocolRefs` equal these: the row was claimed by the run that holds them. */
  refsAre?: Record<string, unknown>;
  /**
   * A flag written once: applies only while `stateReason` does not start with `reasonPrefix` (a guard on the row itself,
   * so a second writer blocked on the first's row lock re-checks it against the row the first one wrote) and no step of
   * kind `step` was recorded (which also holds once a later write replaced the reason).
   */
  unlessFlagged?: { reasonPrefix: string; step: string };
  /**
   * The claim's guard: applies only while no other operation of the terminal is in doubt (`blockingOperation`: SENT /
   * IN_PROGRESS, or UNKNOWN unless this one's type is in RUNS_WHILE_RECOVERING): a new command would destroy the
   * evidence the recovery of that one reads (Joinproto 95, SSI GetLastResult, the JPAY card log). The terminal's claims
   * are serialised (`terminalClaimLock`, a statement before this one, in the same write), so two claims of one
   * terminal at once cannot both pass it.
   */
  unlessTerminalInDoubt?: boolean;
  step: OperationStep;
}

export interface TransitionResult {
  /** The row as written (RETURNING). */
  row: OperationRow;
  /** The state the row was in just before this write. */
  from: OperationStateName;
  /** The DomainEvent written (publish it after commit), if `step.event` was set. */
  event: PublishedEvent | undefined;
}

/** Refuses an illegal or malformed write before anything reaches the database. */
export function assertTransition(t: Pick<OperationTransition, 'from' | 'to' | 'set' | 'mergeRefs'>): void {
  if (t.from.length === 0) throw new OperationTransitionError('INVALID_WRITE', 'a transition needs at least one source state');
  if (t.to !== null) {
    const illegal = t.from.filter((from) => !canTransition(from, t.to!));
    if (illegal.length > 0) {
      throw new OperationTransitionError('ILLEGAL_TRANSITION', `${illegal.join(', ')} → ${t.to} is not a transition`, { from: illegal, to: t.to });
    }
  }
  const unknown = Object.keys(t.set ?? {}).filter((column) => !(column in COLUMN_TYPES));
  if (unknown.length > 0) throw new OperationTransitionError('INVALID_WRITE', `not a writable column: ${unknown.join(', ')}`);
  if (t.set?.protocolRefs !== undefined && t.mergeRefs !== undefined && Object.keys(t.mergeRefs).length > 0) {
    throw new OperationTransitionError('INVALID_WRITE', 'protocolRefs is either set or merged, not both');
  }
  // "completedAt" IS NULL exactly while an operation is not final: the partial index of open operations relies on it.
  if (t.to !== null && !isFinal(t.to) && t.set?.completedAt != null) {
    throw new OperationTransitionError('INVALID_WRITE', `completedAt is written by a move to a final state, not to ${t.to}`);
  }
}

/**
 * Moves an operation `from → to` (or rewrites it in place when `to` is null) with its OperationEvent and
 * DomainEvent, in the caller's tenant transaction (Prisma's or a SqlTransaction). Returns null — and writes nothing — when the row is not
 * in one of `from` (or a guard refused it): someone else got there first.
 */
export async function transitionOperation(tx: SqlClient, t: OperationTransition): Promise<TransitionResult | null> {
  assertTransition(t);
  const guards: Prisma.Sql[] = [];
  if (t.unchangedSince !== undefined) guards.push(Prisma.sql`AND o."updatedAt" < ${t.unchangedSince}::timestamptz`);
  if (t.refsAre !== undefined) guards.push(Prisma.sql`AND o."protocolRefs" = ${JSON.stringify(t.refsAre)}::jsonb`);
  if (t.unlessFlagged !== undefined) {
    const { reasonPrefix, step } = t.unlessFlagged;
    guards.push(Prisma.sql`AND (o."stateReason" IS NULL OR left(o."stateReason", ${reasonPrefix.length}::int) <> ${reasonPrefix})`);
    guards.push(
      Prisma.sql`AND NOT EXISTS (SELECT 1 FROM "OperationEvent" f WHERE f."tenantId" = o."tenantId" AND f."operationId" = o."id" AND f."kind" = ${step})`,
    );
  }
  if (t.unlessTerminalInDoubt === true) {
    guards.push(Prisma.sql`AND ${blockingOperation} IS NULL`);
    // Before the compare-and-set, whose snapshot is taken once the lock is held. On the bare-driver path nobody waits
    // for its answer (it leaves in the write of the statement below; its failure fails that statement and the COMMIT).
    const lock = terminalClaimLock(t.operationId);
    if (isSqlTransaction(tx)) tx.defer(lock);
    else await tx.$executeRaw(lock);
  }
  const sets: Prisma.Sql[] = [];
  if (t.to !== null) sets.push(Prisma.sql`"state" = ${t.to}::"OperationState"`);
  for (const [column, value] of Object.entries(t.set ?? {}) as [keyof OperationColumns, unknown][]) {
    if (value === undefined) continue;
    sets.push(Prisma.sql`${Prisma.raw(`"${column}"`)} = ${sqlValue(value, COLUMN_TYPES[column])}`);
  }
  if (t.mergeRefs !== undefined && Object.keys(t.mergeRefs).length > 0) {
    sets.push(
      Prisma.sql`"protocolRefs" = CASE WHEN jsonb_typeof(o."protocolRefs") = 'object' THEN o."protocolRefs" ELSE '{}'::jsonb END || ${JSON.stringify(t.mergeRefs)}::jsonb`,
    );
  }
  if (t.countRecoveryAttempt) sets.push(Prisma.sql`"recoveryAttempts" = o."recoveryAttempts" + 1`);
  // A final state always has its completion time (the caller's, or now): open operations are the ones without one.
  if (t.to !== null && isFinal(t.to) && t.set?.completedAt === undefined) {
    sets.push(Prisma.sql`"completedAt" = COALESCE(o."completedAt", clock_timestamp())`);
  }
  // The claim (PENDING → SENT, the only way to SENT): when the terminal's command went out, in claim order.
  if (t.to === 'SENT') {
    sets.push(Prisma.sql`"sentAt" = clock_timestamp()`);
  }
  sets.push(Prisma.sql`"updatedAt" = clock_timestamp()`);
  const to = t.to === null ? Prisma.sql`NULL::"OperationState"` : Prisma.sql`${t.to}::"OperationState"`;
  const fromLogged = t.to === null ? Prisma.sql`NULL::"OperationState"` : Prisma.sql`"previousState"`;
  // The DomainEvent: eventData(row, { ...step.data, previousState }) made by PostgreSQL from the written row.
  const identity = t.step.event === undefined ? undefined : eventIdentity();
  const extra =
    t.to === null
      ? Prisma.sql`${jsonOrNull(t.step.data ?? {})}::jsonb`
      : Prisma.sql`${jsonOrNull(t.step.data ?? {})}::jsonb || jsonb_build_object('previousState', lower(w."previousState"::text))`;
  const published =
    identity === undefined
      ? Prisma.empty
      : Prisma.sql`, published AS (
      INSERT INTO "DomainEvent" ("id", "tenantId", "type", "subjectType", "subjectId", "data", "createdAt")
      SELECT ${identity.id}::uuid, w."tenantId", ${t.step.event!}, 'operation', w."id"::text, ${eventDataSql('w')} || ${extra}, ${identity.createdAt}::timestamptz
      FROM written w
      RETURNING "data"
    )`;
  if (identity !== undefined) expectEvents(tx);
  const rows = await tx.$queryRaw<(OperationRow & { previousState: OperationStateName; eventData?: Record<string, unknown> })[]>`
    WITH previous AS (
      SELECT o."id", o."state" FROM "TerminalOperation" o
      WHERE o."id" = ${t.operationId}::uuid AND o."state" = ANY(${[...t.from]}::"OperationState"[]) ${guards.length > 0 ? Prisma.join(guards, ' ') : Prisma.empty}
      FOR UPDATE OF o
    ), written AS (
      UPDATE "TerminalOperation" o SET ${Prisma.join(sets, ', ')}
      FROM previous WHERE o."id" = ${t.operationId}::uuid AND o."id" = previous."id"
      RETURNING ${operationRowColumns('o')}, previous."state" AS "previousState"
    ), logged AS (
      INSERT INTO "OperationEvent" ("id", "tenantId", "operationId", "kind", "fromState", "toState", "data", "createdAt")
      SELECT gen_random_uuid(), "tenantId", "id", ${t.step.kind}, ${fromLogged}, ${to}, ${jsonOrNull(t.step.data)}::jsonb, clock_timestamp() FROM written
    )${published}
    SELECT written.*${identity === undefined ? Prisma.empty : Prisma.sql`, (SELECT "data" FROM published) AS "eventData"`} FROM written`;
  const written = rows[0];
  if (written === undefined) return null;
  const { previousState, eventData: data, ...row } = written;
  if (identity === undefined || data === undefined) return { row, from: previousState, event: undefined };
  const event: PublishedEvent = { ...identity, tenantId: row.tenantId, type: t.step.event!, subjectType: 'operation', subjectId: row.id, data };
  // The view a `?wait=` answers with, on the events that end a run only (progress events do not need it on Redis).
  const subject = RUN_OVER_EVENTS.has(event.type) ? subjectOf(row) : undefined;
  if (subject !== undefined) event.subject = subject;
  recordEvent(tx, event);
  return { row, from: previousState, event };
}

/** The events after which an operation's run is over: it is final, or unknown and left to recovery (`?wait=` ends on them). */
export const RUN_OVER_EVENTS: ReadonlySet<DomainEventType> = new Set<DomainEventType>(['operation.completed', 'operation.unknown', 'operation.recovered']);

/**
 * The operation's API view for the live message of its transition's event (PublishedEvent.subject), or none when the row
 * cannot be shown (an amount outside the API's range: the waiting request then reads the row, and answers its error).
 */
function subjectOf(row: OperationRow): Record<string, unknown> | undefined {
  try {
    return toOperationView(row) as unknown as Record<string, unknown>;
  } catch {
    return undefined;
  }
}

/** The DomainEvent of a step: the operation's log-safe summary, plus `previousState` when the state moved. */
export async function publishStep(
  tx: SqlClient,
  row: OperationRow,
  previousState: OperationStateName | null | undefined,
  step: OperationStep,
): Promise<PublishedEvent | undefined> {
  if (step.event === undefined) return undefined;
  const extra = previousState === undefined ? {} : { previousState: previousState === null ? null : toApiState(previousState) };
  return publishEvent(tx, row.tenantId, {
    type: step.event,
    subjectType: 'operation',
    subjectId: row.id,
    data: eventData(row, { ...(step.data ?? {}), ...extra }),
  });
}

export function jsonOrNull(value: unknown): string | null {
  return value === null || value === undefined ? null : JSON.stringify(value);
}

function sqlValue(value: unknown, type: 'text' | 'timestamptz' | 'jsonb'): Prisma.Sql {
  switch (type) {
    case 'jsonb':
      return Prisma.sql`${jsonOrNull(value)}::jsonb`;
    case 'timestamptz':
      return Prisma.sql`${value as Date | null}::timestamptz`;
    case 'text':
      return Prisma.sql`${value as string | null}::text`;
  }
}
