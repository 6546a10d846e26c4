import { isSqlTransaction, Prisma, type SqlClient } from '@payorch/db';
import type { OperationCommandCopy } from '@payorch/domain';
import type { OperationCommand, OperationOutcome, OperationType, ProtocolRefs } from '@payorch/drivers';

import { fromDbAmount } from './amounts';
import { fromDbType, OPEN_STATES, type OperationStateApi, type OperationStateName, type OperationTypeName, toApiState } from './state-machine';
import type { JsonColumn, OperationColumns } from './columns';

/** The columns of TerminalOperation this library reads. */
export interface OperationRow {
  amount: bigint | null;
  approvalCode: string | null;
  cashbackAmount: bigint | null;
  completedAt: Date | null;
  createdAt: Date;
  currency: string | null;
  /** `{ code }` of a run that ended without the terminal's answer (the driver's or the dispatch's error code), or null. */
  error: unknown;
  id: string;
  maskedPan: string | null;
  originalOperationId: string | null;
  protocolRefs: unknown;
  receipt: unknown;
  recoveryAttempts: number;
  responseCode: string | null;
  responseMessage: string | null;
  result: unknown;
  rrn: string | null;
  state: OperationStateName;
  stateReason: string | null;
  storeId: string;
  subStatus: string | null;
  tenantId: string;
  terminalId: string;
  type: string;
  updatedAt: Date;
}

/**
 * OperationRow's columns by name, for the statements that read or return the row: a server-side prepared
 * statement (libs/db prepared-statements.ts) fixes its result columns, so `SELECT *` would fail on every
 * connection that prepared it once a migration adds a column; named columns are unaffected.
 */
export const OPERATION_ROW_COLUMNS = [
  'amount',
  'approvalCode',
  'cashbackAmount',
  'completedAt',
  'createdAt',
  'currency',
  'error',
  'id',
  'maskedPan',
  'originalOperationId',
  'protocolRefs',
  'receipt',
  'recoveryAttempts',
  'responseCode',
  'responseMessage',
  'result',
  'rrn',
  'state',
  'stateReason',
  'storeId',
  'subStatus',
  'tenantId',
  'terminalId',
  'type',
  'updatedAt',
] as const satisfies readonly (keyof OperationRow)[];

// Every column of OperationRow is listed (a compile error otherwise).
const everyColumnListed: Exclude<keyof OperationRow, (typeof OPERATION_ROW_COLUMNS)[number]> extends never ? true : never = true;
void everyColumnListed;

/** The select list of an OperationRow, optionally qualified by a table alias (`o."id", …`). */
export function operationRowColumns(alias?: string): Prisma.Sql {
  const prefix = alias === undefined ? '' : `${alias}.`;
  return Prisma.raw(OPERATION_ROW_COLUMNS.map((column) => `${prefix}"${column}"`).join(', '));
}

/** One operation's row by id (under the caller's tenant scope): `tx.$queryRaw` or `Database.querySql`. */
export const operationById = (id: string): Prisma.Sql => Prisma.sql`SELECT ${operationRowColumns('o')} FROM "TerminalOperation" o WHERE o."id" = ${id}::uuid`;

/**
 * OPEN_STATES as SQL literals (`'PENDING', 'SENT', …`), for `"state" IN (…)`: written into the statement, not bound,
 * so that a prepared statement's generic plan can prove the predicates of partial indexes.
 */
export const OPEN_STATES_SQL = Prisma.raw(OPEN_STATES.map((state) => `'${state}'`).join(', '));

/** The API / event representation of an operation (amounts as numbers of minor units). */
export interface OperationView {
  id: string;
  terminalId: string;
  storeId: string;
  type: OperationType;
  state: OperationStateApi;
  subStatus: string | null;
  stateReason: string | null;
  amount: number | null;
  cashbackAmount: number | null;
  currency: string | null;
  originalOperationId: string | null;
  maskedPan: string | null;
  rrn: string | null;
  approvalCode: string | null;
  responseCode: string | null;
  responseMessage: string | null;
  /** Protocol-neutral reason of the terminal's answer (docs/protocols/result-codes.md), e.g. `card_declined`; null when none applies. */
  reasonCode: string | null;
  hasReceipt: boolean;
  data: Record<string, unknown> | null;
  recoveryAttempts: number;
  createdAt: string;
  updatedAt: string;
  completedAt: string | null;
}

export function toOperationView(row: OperationRow): OperationView {
  const result = (row.result ?? null) as { data?: Record<string, unknown>; reasonCode?: string | null } | null;
  return {
    id: row.id,
    terminalId: row.terminalId,
    storeId: row.storeId,
    type: fromDbType(row.type),
    state: toApiState(row.state),
    subStatus: row.subStatus,
    stateReason: row.stateReason,
    amount: fromDbAmount(row.amount),
    cashbackAmount: fromDbAmount(row.cashbackAmount),
    currency: row.currency,
    originalOperationId: row.originalOperationId,
    maskedPan: row.maskedPan,
    rrn: row.rrn,
    approvalCode: row.approvalCode,
    responseCode: row.responseCode,
    responseMessage: row.responseMessage,
    reasonCode: result?.reasonCode ?? null,
    hasReceipt: row.receipt !== null && row.receipt !== undefined,
    data: result?.data ?? null,
    recoveryAttempts: row.recoveryAttempts,
    createdAt: row.createdAt.toISOString(),
    updatedAt: row.updatedAt.toISOString(),
    completedAt: row.completedAt?.toISOString() ?? null,
  };
}

/** Log-safe summary carried by domain events (ids, states, amounts, masked PAN only). */
export function eventData(row: OperationRow, extra: Record<string, unknown> = {}): Record<string, unknown> {
  const view = toOperationView(row);
  return {
    operationId: view.id,
    terminalId: view.terminalId,
    storeId: view.storeId,
    type: view.type,
    state: view.state,
    subStatus: view.subStatus,
    amount: view.amount,
    currency: view.currency,
    maskedPan: view.maskedPan,
    rrn: view.rrn,
    approvalCode: view.approvalCode,
    responseCode: view.responseCode,
    reasonCode: view.reasonCode,
    reason: view.stateReason,
    ...extra,
  };
}

/**
 * `eventData(row)` computed by PostgreSQL from the row `alias` (without `extra`), as a jsonb: the operation owner
 * writes a transition's DomainEvent in the transition's own statement from its RETURNING row (issue 19: one
 * statement, and no round trip between the compare-and-set and its event). `event-data.property.int-spec.ts` holds the two
 * to the same result for every kind of row.
 */
export function eventDataSql(alias: string): Prisma.Sql {
  const c = (column: keyof OperationRow) => `${alias}."${column}"`;
  const reasonCode = `COALESCE(CASE WHEN jsonb_typeof(${c('result')}) = 'object' THEN ${c('result')} -> 'reasonCode' END, 'null'::jsonb)`;
  return Prisma.raw(
    `jsonb_build_object('operationId', ${c('id')}, 'terminalId', ${c('terminalId')}, 'storeId', ${c('storeId')}, ` +
      `'type', lower(${c('type')}::text), 'state', lower(${c('state')}::text), 'subStatus', ${c('subStatus')}, 'amount', ${c('amount')}, ` +
      `'currency', ${c('currency')}, 'maskedPan', ${c('maskedPan')}, 'rrn', ${c('rrn')}, 'approvalCode', ${c('approvalCode')}, ` +
      `'responseCode', ${c('responseCode')}, 'reasonCode', ${reasonCode}, 'reason', ${c('stateReason')})`,
  );
}

export const asRefs = (value: unknown): ProtocolRefs | undefined =>
  value !== null && typeof value === 'object' && !Array.isArray(value) ? (value as ProtocolRefs) : undefined;

/**
 * The states of an operation IN DOUBT: sent to its terminal with its outcome not stored yet (SENT, IN_PROGRESS: another
 * executor runs it, or its executor is gone — a connector crash, an instance that lost the terminal while the command
 * was out — and recovery will decide it), or whose outcome was lost (UNKNOWN). While a terminal has one, no other
 * command may reach it: Joinproto 95, SSI GetLastResult and the JPAY card log only know the terminal's LAST
 * transaction, so a new one would destroy the evidence recovery reads, and recovery might then store FAILED for a
 * payment the terminal approved. (PENDING is not in doubt: nothing was sent; a queue serialises it behind the others.)
 */
export const IN_DOUBT_STATES = ['SENT', 'IN_PROGRESS', 'UNKNOWN'] as const satisfies readonly OperationStateName[];
export type InDoubtState = (typeof IN_DOUBT_STATES)[number];

/** An operation in doubt, as the gate names it: what blocks new work on its terminal. */
export interface OperationInDoubt {
  id: string;
  state: InDoubtState;
}

const IN_DOUBT_STATES_SQL = Prisma.raw(IN_DOUBT_STATES.map((state) => `'${state}'`).join(', '));

/**
 * Types that may run while another operation of the terminal is UNKNOWN (not while one is SENT / IN_PROGRESS: its
 * executor may still be talking to the terminal): they only read the terminal (no transaction, so no evidence of the
 * unknown one is overwritten), and recovery or the human resolving it may need them. Every other type is failed as
 * never sent (`TERMINAL_RECOVERING`, issue #15).
 */
export const RUNS_WHILE_RECOVERING: readonly OperationTypeName[] = ['TERMINAL_INFO'];

/**
 * THE definition of "the terminal has an operation in doubt", used by the executor's read, its claim and the refusal
 * (and, UNKNOWN only, by the gates of new work: `recoveringOperationOf`): the oldest operation of the terminal `terminal`
 * (an SQL expression: a column of the outer query) in IN_DOUBT_STATES, other than `except`, as a jsonb
 * `{"id", "state"}` (OperationInDoubt), or NULL. `unknownIgnoredIf` (an SQL condition on the outer row): an UNKNOWN
 * operation does not count while it holds (RUNS_WHILE_RECOVERING).
 *
 * It looks among the terminal's open operations ("completedAt" IS NULL, the partial index
 * TerminalOperation_open_by_terminal_idx) and only then at their state: under row-level security a condition on the
 * `state` enum is neither an index condition nor a partial-index predicate the planner can prove (enum equality is not
 * LEAKPROOF), so once the table was ANALYZEd with a history, `state = 'UNKNOWN'` alone was a sequential scan of the
 * whole table (issue 19: 20,001 rows, 4–7 ms per claim at 20,000 operations; found by the operations bench on a
 * database with history).
 */
export const operationInDoubtOf = (
  terminal: Prisma.Sql,
  options: { except?: Prisma.Sql; unknownIgnoredIf?: Prisma.Sql; onlyUnknown?: boolean } = {},
): Prisma.Sql =>
  Prisma.sql`(SELECT jsonb_build_object('id', u."id", 'state', u."state") FROM "TerminalOperation" u
    WHERE u."terminalId" = ${terminal} AND u."completedAt" IS NULL AND u."state" IN (${options.onlyUnknown ? Prisma.raw(`'UNKNOWN'`) : IN_DOUBT_STATES_SQL})${
      options.except === undefined ? Prisma.empty : Prisma.sql` AND u."id" <> ${options.except}`
    }${options.unknownIgnoredIf === undefined ? Prisma.empty : Prisma.sql` AND (u."state" <> 'UNKNOWN' OR NOT (${options.unknownIgnoredIf}))`}
    ORDER BY u."createdAt" ASC LIMIT 1)`;

/**
 * The gate of NEW work (the gateway's create, a campaign step): the terminal's oldest UNKNOWN operation, as
 * `operationInDoubtOf` names it, or NULL. Only UNKNOWN refuses new work here: an operation SENT / IN_PROGRESS is
 * normally its executor's live command, and new work queues behind it in the terminal's queue (a payment in progress
 * is never interrupted, a campaign step waits for it). What must never happen — a command sent while another of the
 * terminal is in doubt, e.g. a row left SENT by an executor that is gone — is refused by the executor's claim
 * (`blockingOperation`, all IN_DOUBT_STATES, atomically under `terminalClaimLock`), which fails the queued operation
 * TERMINAL_RECOVERING, never sent.
 */
export const recoveringOperationOf = (terminal: Prisma.Sql): Prisma.Sql => operationInDoubtOf(terminal, { onlyUnknown: true });

/** What an operation in doubt is doing to its terminal, for a refusal's message: `operation <id> of the terminal is …`. */
export function describeInDoubt(blocking: OperationInDoubt): string {
  return blocking.state === 'UNKNOWN'
    ? `operation ${blocking.id} of the terminal is unknown (its outcome was lost) and is being recovered`
    : `operation ${blocking.id} of the terminal is ${toApiState(blocking.state)}, its outcome not stored yet (its executor still runs it, or is gone and recovery will decide it)`;
}

/**
 * What keeps the operation `o` (the outer row) from being sent: the oldest OTHER operation of its terminal in doubt
 * (an UNKNOWN one not for the types of RUNS_WHILE_RECOVERING), or NULL. The executor's read, its claim's guard
 * (`transitionOperation`'s `unlessTerminalInDoubt`) and its refusal all ask this one fragment.
 */
export const blockingOperation = operationInDoubtOf(Prisma.raw('o."terminalId"'), {
  except: Prisma.raw('o."id"'),
  unknownIgnoredIf: Prisma.raw(`o."type"::text IN (${RUNS_WHILE_RECOVERING.map((type) => `'${type}'`).join(', ')})`),
});

/**
 * Serialises the claims of the operation's terminal until the end of the transaction (an advisory lock on its terminal
 * id). A claim's guard (`blockingOperation IS NULL`) is evaluated against its statement's snapshot: two claims of one
 * terminal running at once (two executors: another connector instance, a second path) would each see the other's
 * operation still PENDING and both send (write skew). Taken by a statement of its own BEFORE the claim's, whose
 * snapshot (READ COMMITTED) then sees every claim of the terminal committed while it waited. Read by the row's primary
 * key; pipelined with the claim (no round trip of its own).
 */
export const terminalClaimLock = (operationId: string): Prisma.Sql =>
  Prisma.sql`SELECT pg_advisory_xact_lock(hashtextextended('payorch:operation-claim:' || o."terminalId"::text, 0))
    FROM "TerminalOperation" o WHERE o."id" = ${operationId}::uuid`;

/**
 * The operation, what its driver command needs of its original (refund / void / capture) and what blocks it on its
 * terminal (`blockingOperation`: an operation in doubt), in ONE statement (no lock: a compare-and-set decides afterwards), so that the
 * executor and recovery read it in one pipelined round trip (`Database.querySql`). The original is a subquery by
 * its id, not a join: a plan made while the tenant had no statistics joined it by reading the tenant's whole
 * idempotency-key index (`test/e2e/hot-plans.e2e-spec.ts`).
 */
export function loadRunStatement(operationId: string): Prisma.Sql {
  return Prisma.sql`SELECT ${operationRowColumns('o')}, ${blockingOperation} AS "blocking",
    (SELECT jsonb_build_object('id', p."id", 'type', p."type", 'amount', p."amount"::text, 'rrn', p."rrn",
       'approvalCode', p."approvalCode", 'protocolRefs', p."protocolRefs")
     FROM "TerminalOperation" p WHERE p."id" = o."originalOperationId") AS "original"
    FROM "TerminalOperation" o WHERE o."id" = ${operationId}::uuid`;
}

/** A row of `loadRunStatement`. */
export interface RunStartRow extends OperationRow {
  /** The operation in doubt that keeps this one from being sent (`blockingOperation`), or null. */
  blocking: OperationInDoubt | null;
  /** The original operation's columns the command needs (amount as text: a JSON number would lose digits). */
  original: { id: string; type: string; amount: string | null; rrn: string | null; approvalCode: string | null; protocolRefs: unknown } | null;
}

/** The driver command of a `loadRunStatement` row; throws when the operation refers to an original that is not there. */
export function commandOfRun(found: RunStartRow): OperationCommand {
  const { original, ...row } = found;
  if (row.originalOperationId !== null && original === null) throw new Error(`original operation ${row.originalOperationId} not found`);
  return commandOf(row, original === null ? undefined : { ...original, amount: original.amount === null ? null : BigInt(original.amount) });
}

/** The driver command for an operation (and its original, for the types that refer to one). */
function commandOf(row: OperationRow, original?: Pick<OperationRow, 'id' | 'type' | 'amount' | 'rrn' | 'approvalCode' | 'protocolRefs'>): OperationCommand {
  const command: OperationCommand = {
    operationId: row.id,
    type: fromDbType(row.type),
    ...(row.amount != null ? { amount: fromDbAmount(row.amount)! } : {}),
    ...(row.cashbackAmount != null ? { cashbackAmount: fromDbAmount(row.cashbackAmount)! } : {}),
    ...(row.currency != null ? { currency: row.currency } : {}),
  };
  if (original !== undefined) {
    command.original = {
      operationId: original.id,
      type: fromDbType(original.type),
      ...(original.amount !== null ? { amount: fromDbAmount(original.amount)! } : {}),
      ...(original.rrn !== null ? { rrn: original.rrn } : {}),
      ...(original.approvalCode !== null ? { approvalCode: original.approvalCode } : {}),
      ...(asRefs(original.protocolRefs) ? { protocolRefs: asRefs(original.protocolRefs) } : {}),
    };
  }
  return command;
}

/**
 * What an `operation.execute` carries of the operation its creator just inserted (`TerminalCommand.command`), so that
 * the executor need not read the row before it opens the terminal's session; undefined for an operation with an
 * original (its command needs the original's references, which only a read gives).
 */
export function commandCopyOf(row: OperationRow): OperationCommandCopy | undefined {
  if (row.originalOperationId !== null) return undefined;
  const { operationId: _id, ...copy } = commandOf(row);
  return copy;
}

/** The driver command of an `operation.execute`'s copy (`commandCopyOf`), to be checked by `isCommandOf` at the claim. */
export function commandOfCopy(operationId: string, copy: OperationCommandCopy): OperationCommand {
  return {
    operationId,
    type: copy.type as OperationType,
    ...(copy.amount === undefined ? {} : { amount: copy.amount }),
    ...(copy.cashbackAmount === undefined ? {} : { cashbackAmount: copy.cashbackAmount }),
    ...(copy.currency === undefined ? {} : { currency: copy.currency }),
  };
}

/**
 * Whether `command` is exactly the command of the stored `row` (an operation without an original): what the executor
 * checks, on the row its claim returned, before a command built from a copy is sent.
 */
export function isCommandOf(row: OperationRow, command: OperationCommand): boolean {
  if (row.originalOperationId !== null || command.original !== undefined || command.options !== undefined) return false;
  const stored = commandOf(row);
  return (
    stored.operationId === command.operationId &&
    stored.type === command.type &&
    stored.amount === command.amount &&
    stored.cashbackAmount === command.cashbackAmount &&
    stored.currency === command.currency
  );
}

/**
 * What a terminal outcome (final or unknown) writes. Never a full PAN: drivers mask, and we keep only the
 * masked value. The outcome's protocol references are merged into the stored ones (`mergeRefs`).
 */
export function outcomeWrite(outcome: OperationOutcome): { set: OperationColumns; mergeRefs: Record<string, unknown> } {
  return {
    set: {
      stateReason: outcome.reason ?? null,
      responseCode: outcome.responseCode ?? null,
      responseMessage: outcome.responseMessage ?? null,
      maskedPan: outcome.maskedPan ?? null,
      rrn: outcome.rrn ?? null,
      approvalCode: outcome.approvalCode ?? null,
      receipt: (outcome.receipt ?? null) as JsonColumn,
      result: { amount: outcome.amount ?? null, data: (outcome.data ?? null) as JsonColumn, reasonCode: outcome.reasonCode ?? null },
      error: outcome.state === 'failed' || outcome.state === 'unknown' ? { reason: outcome.reason ?? null, code: outcome.reasonCode ?? null } : null,
      subStatus: null,
    },
    mergeRefs: { ...(outcome.protocolRefs ?? {}) },
  };
}

/**
 * The `data` of a `frame` step: one protocol frame of a run, masked by the driver (OperationFrame). `direction`
 * is null only for the step that counts the frames a run exchanged beyond the journal's bound.
 */
export interface FrameStep {
  direction: 'out' | 'in' | null;
  summary: string;
  masked: string;
  /** ISO 8601, when the connector saw the frame. */
  at: string;
}

/**
 * Appends `frames` as `frame` steps of the operation's timeline, in order, in one statement (the rows take
 * their `seq` in the order of the array). A frame changes no state and publishes no DomainEvent, so it is not a
 * transition: it does not touch the operation row, whose one writer stays transition.ts.
 */
export async function insertFrameSteps(tx: SqlClient, operationId: string, frames: readonly FrameStep[]): Promise<void> {
  if (frames.length === 0) return;
  const insert = Prisma.sql`
    INSERT INTO "OperationEvent" ("id", "tenantId", "operationId", "kind", "fromState", "toState", "data", "createdAt")
    SELECT gen_random_uuid(), o."tenantId", o."id", ${'frame'}, NULL, NULL, f."data", clock_timestamp()
    FROM "TerminalOperation" o, jsonb_array_elements(${JSON.stringify(frames)}::jsonb) WITH ORDINALITY AS f("data", "n")
    WHERE o."id" = ${operationId}::uuid
    ORDER BY f."n"`;
  // Nothing reads its answer: in a SqlTransaction it leaves with the statements that follow (the outcome's
  // compare-and-set) instead of costing a write and a round trip of its own; its failure fails the COMMIT.
  if (isSqlTransaction(tx)) tx.defer(insert);
  else await tx.$executeRaw(insert);
}
