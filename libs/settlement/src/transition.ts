import { compareAndSetLifecycle, lifecycleColumns, Prisma, publishEvent, type PublishedEvent, type SqlClient } from '@payorch/db';
import { PayorchError } from '@payorch/domain';
import type { Settlement, SettlementStatus } from '@payorch/prisma';

/**
 * THE writer of `Settlement.status` (the only part of this library that touches the database):
 * {@link insertSettlement} creates a settlement (PENDING for a manual close-day the gateway queues, RUNNING for
 * a scheduled one the worker starts) and {@link transitionSettlement} makes every later change with its
 * `settlement.*` DomainEvent, in the caller's transaction. `architecture.spec.ts` in libs/operations fails on
 * any other writer.
 */

/** Every allowed change of a settlement, and why. Anything else is refused. */
export const SETTLEMENT_TRANSITIONS: Readonly<Record<SettlementStatus, Readonly<Partial<Record<SettlementStatus, string>>>>> = {
  PENDING: {
    RUNNING: 'the worker starts the manual close-day (first attempt)',
    FAILED: 'gave up before it could start (give-up window over)',
  },
  RUNNING: {
    RUNNING: 'another attempt (a deferral retried, or a job retried after a crash): attempts + 1',
    COMPLETED:
      'the terminal closed its day — with totals, with a totals mismatch (Joinproto 915, SSI 95), empty, or without readable totals — and every batch was reconciled (settlement.completed, settlement.discrepancy); `outcome` says which',
    FAILED: 'the terminal did not close its day (declined without the mismatch code), or the give-up window is over (settlement.failed)',
  },
  COMPLETED: {},
  FAILED: {},
};

/** The states a settlement is created in, and by whom. */
export const SETTLEMENT_CREATED_AS: Readonly<Partial<Record<SettlementStatus, string>>> = {
  PENDING: 'a manual close-day accepted by the gateway, queued for the worker',
  RUNNING: 'a scheduled close-day, created by the worker on its first attempt',
};

/** The event a change into this state publishes (none for PENDING / RUNNING). */
export const SETTLEMENT_EVENT: Readonly<Partial<Record<SettlementStatus, 'settlement.completed' | 'settlement.failed'>>> = {
  COMPLETED: 'settlement.completed',
  FAILED: 'settlement.failed',
};

export function canTransitionSettlement(from: SettlementStatus, to: SettlementStatus): boolean {
  return SETTLEMENT_TRANSITIONS[from][to] !== undefined;
}

export class SettlementTransitionError extends PayorchError<'ILLEGAL_TRANSITION' | 'INVALID_WRITE'> {}

export interface NewSettlement {
  tenantId: string;
  terminalId: string;
  storeId: string;
  businessDate: Date;
  runKey: string;
  trigger: string;
  status: SettlementStatus;
  attempts?: number;
  startedAt?: Date | null;
  progress?: Prisma.InputJsonValue;
}

/**
 * Creates the settlement of `runKey` in one of SETTLEMENT_CREATED_AS, or returns null (writing nothing) when
 * that run key exists already: `INSERT … ON CONFLICT ("tenantId", "runKey") DO NOTHING RETURNING *`.
 */
export async function insertSettlement(tx: SqlClient, input: NewSettlement): Promise<Settlement | null> {
  if (SETTLEMENT_CREATED_AS[input.status] === undefined) {
    throw new SettlementTransitionError('ILLEGAL_TRANSITION', `a settlement is not created ${input.status}`, { to: input.status });
  }
  const rows = await tx.$queryRaw<Settlement[]>`
    INSERT INTO "Settlement" ("id", "tenantId", "terminalId", "storeId", "businessDate", "runKey", "trigger", "status", "attempts",
      "startedAt", "progress", "createdAt", "updatedAt")
    VALUES (gen_random_uuid(), ${input.tenantId}::uuid, ${input.terminalId}::uuid, ${input.storeId}::uuid, ${input.businessDate.toISOString().slice(0, 10)}::date,
      ${input.runKey}, ${input.trigger}, ${input.status}::"SettlementStatus", ${input.attempts ?? 0}::int, ${input.startedAt ?? null}::timestamptz,
      ${json(input.progress)}::jsonb, clock_timestamp(), clock_timestamp())
    ON CONFLICT ("tenantId", "runKey") DO NOTHING
    RETURNING ${lifecycleColumns('Settlement', '"Settlement"')}`;
  return rows[0] ?? null;
}

/** Columns a change may set besides `status`. */
export interface SettlementColumns {
  batches?: Prisma.InputJsonValue | null;
  completedAt?: Date | null;
  discrepancies?: Prisma.InputJsonValue | null;
  error?: Prisma.InputJsonValue | null;
  hasDiscrepancies?: boolean;
  ourTotals?: Prisma.InputJsonValue | null;
  /** CloseDayOutcomeKind of the settlement's own close-day. */
  outcome?: string | null;
  progress?: Prisma.InputJsonValue | null;
  terminalTotals?: Prisma.InputJsonValue | null;
}

const COLUMN_TYPES: Readonly<Record<keyof SettlementColumns, 'timestamptz' | 'jsonb' | 'boolean' | 'text'>> = {
  batches: 'jsonb',
  completedAt: 'timestamptz',
  discrepancies: 'jsonb',
  error: 'jsonb',
  hasDiscrepancies: 'boolean',
  ourTotals: 'jsonb',
  outcome: 'text',
  progress: 'jsonb',
  terminalTotals: 'jsonb',
};

export interface SettlementTransition {
  settlementId: string;
  /** The states the row must be in for the write to apply (compare-and-set). */
  from: readonly SettlementStatus[];
  to: SettlementStatus;
  set?: SettlementColumns;
  /** `attempts + 1`. */
  countAttempt?: boolean;
  /** `startedAt` := now, unless already set. */
  markStarted?: boolean;
  /** `data` of the target state's event (SETTLEMENT_EVENT); required when it has one. */
  eventData?: Record<string, unknown>;
  /** More events of the same change, after the state's own (e.g. `settlement.discrepancy`). */
  alsoPublish?: readonly { type: 'settlement.discrepancy'; data: Record<string, unknown> }[];
}

export interface SettlementTransitionResult {
  row: Settlement;
  from: SettlementStatus;
  events: PublishedEvent[];
}

/** Refuses an illegal or malformed write before the database is touched. */
export function assertSettlementTransition(t: Pick<SettlementTransition, 'from' | 'to' | 'set' | 'eventData'>): void {
  if (t.from.length === 0) throw new SettlementTransitionError('INVALID_WRITE', 'a transition needs at least one source state');
  const illegal = t.from.filter((from) => !canTransitionSettlement(from, t.to));
  if (illegal.length > 0) {
    throw new SettlementTransitionError('ILLEGAL_TRANSITION', `settlement ${illegal.join(', ')} → ${t.to} is not a transition`, { from: illegal, to: t.to });
  }
  const unknown = Object.keys(t.set ?? {}).filter((column) => !(column in COLUMN_TYPES));
  if (unknown.length > 0) throw new SettlementTransitionError('INVALID_WRITE', `not a writable column: ${unknown.join(', ')}`);
  if (SETTLEMENT_EVENT[t.to] !== undefined && t.eventData === undefined) {
    throw new SettlementTransitionError('INVALID_WRITE', `a change to ${t.to} publishes ${SETTLEMENT_EVENT[t.to]}: eventData is required`);
  }
}

/**
 * One compare-and-set (`… WHERE id = $1 AND status IN (from)`, the previous status read under the row lock in
 * the same statement) plus the target state's event, in the caller's transaction. Returns null, writing
 * nothing, when the row is no longer in one of `from`.
 */
export async function transitionSettlement(tx: SqlClient, t: SettlementTransition): Promise<SettlementTransitionResult | null> {
  assertSettlementTransition(t);
  const sets: Prisma.Sql[] = [Prisma.sql`"status" = ${t.to}::"SettlementStatus"`];
  for (const [column, value] of Object.entries(t.set ?? {}) as [keyof SettlementColumns, unknown][]) {
    if (value === undefined) continue;
    const type = COLUMN_TYPES[column];
    const sqlValue =
      type === 'jsonb'
        ? Prisma.sql`${json(value)}::jsonb`
        : type === 'boolean'
          ? Prisma.sql`${value as boolean}::boolean`
          : type === 'text'
            ? Prisma.sql`${value as string | null}::text`
            : Prisma.sql`${value as Date | null}::timestamptz`;
    sets.push(Prisma.sql`${Prisma.raw(`"${column}"`)} = ${sqlValue}`);
  }
  if (t.countAttempt) sets.push(Prisma.sql`"attempts" = "attempts" + 1`);
  if (t.markStarted) sets.push(Prisma.sql`"startedAt" = COALESCE("startedAt", clock_timestamp())`);
  const written = await compareAndSetLifecycle<Settlement, SettlementStatus>(tx, 'Settlement', t.settlementId, t.from, sets);
  if (written === undefined) return null;
  const { row, previous: previousStatus } = written;
  const events: PublishedEvent[] = [];
  const own = SETTLEMENT_EVENT[t.to];
  const publish = (type: 'settlement.completed' | 'settlement.failed' | 'settlement.discrepancy', data: Record<string, unknown>) =>
    publishEvent(tx, row.tenantId, { type, subjectType: 'settlement', subjectId: row.id, data });
  if (own !== undefined && previousStatus !== t.to) events.push(await publish(own, t.eventData!));
  for (const extra of t.alsoPublish ?? []) events.push(await publish(extra.type, extra.data));
  return { row, from: previousStatus, events };
}

const json = (value: unknown): string | null => (value === null || value === undefined ? null : JSON.stringify(value));
