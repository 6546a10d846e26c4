import { createHash } from 'node:crypto';

import { InjectQueue } from '@nestjs/bullmq';
import { Inject, Injectable, Optional } from '@nestjs/common';
import { DelayedError, Job, Queue, UnrecoverableError } from 'bullmq';

import type { WorkerConfig } from '@payorch/config';
import { type Database, lifecycleColumns, Prisma, type SqlClient, type TransactionClient } from '@payorch/db';
import { assertUnreachable, type JobData, QUEUES } from '@payorch/domain';
import type { Logger } from '@payorch/logging';
import {
  insertOperation,
  OPEN_STATES_SQL,
  operationById,
  type OperationRow,
  operationRowColumns,
  type TerminalRefusal,
  terminalRefusalOf,
  transitionOperation,
} from '@payorch/operations';
import {
  type BatchDiscrepancy,
  batchNets,
  type BatchReport,
  CLOSE_DAY_TYPES,
  type CloseDayOperation,
  type CloseDayOutcome,
  closeDayOutcome,
  insertSettlement,
  type RecordedOperation,
  reconcile,
  type SettlementProtocol,
  settlementRetryDelayMs,
  totalsOfOperations,
  transitionSettlement,
} from '@payorch/settlement';

import { DATABASE, LOGGER, WORKER_CONFIG } from '../tokens';
import { wakeJob } from '../wake-jobs';
import { RunnerUnavailable, SETTLEMENT_RUNNER, type SettlementRunner } from './settlement-runner';
import { SETTLEMENT_METRICS, type SettlementMetrics } from './settlement-metrics';
import { TENANT_SLOTS } from './settlement.tokens';
import type { TenantSlots } from './tenant-slots';

type RunData = JobData['settlement.run'];
type Settlement = Awaited<ReturnType<TransactionClient['settlement']['findUniqueOrThrow']>>;

/** A settlement row as the owner returns it (every column, named: lifecycleColumns). */
const SETTLEMENT_COLUMNS = lifecycleColumns('Settlement', 's');

/** Why the close-day cannot go now; the job is delayed and retried (until the give-up window). */
class RetryLater extends Error {
  constructor(
    readonly code: string,
    message: string,
  ) {
    super(message);
  }
}

/** Operation states of another command that keep the terminal from closing its day. */
const SETTLED_TYPES_EXCLUDED = ['SETTLEMENT', 'REPORT_X', 'REPORT_Z'] as const;

/**
 * The close-day types as SQL literals, written into the statement, not bound: a prepared statement's generic plan can
 * then prove the predicate of the partial index of a terminal's unsettled close-days (migration
 * 20261206002510_settlement_lookups_by_terminal) instead of reading the terminal's history (settlement-plans.int-spec.ts).
 */
const CLOSE_DAY_TYPES_SQL = Prisma.raw(CLOSE_DAY_TYPES.map((type) => `'${type}'`).join(', '));

export interface RunResult {
  settlementId: string;
  status: 'COMPLETED' | 'FAILED';
  hasDiscrepancies?: boolean;
  /** Why it FAILED (this run failed it: `Settlement.error.code`). */
  code?: string;
  skipped?: boolean;
}

/** A close-day operation with its idempotency key, which names the settlement that sent it (closeDayKey). */
type CloseDayRow = OperationRow & { idempotencyKey: string; claimedAt: Date };

/**
 * How much earlier than the previous settlement's close-day a close-day claimed after it may have been created: the
 * slack of the createdAt lower bound of closedOutside (an index range; the claim order decides). One committed PENDING
 * before that settlement's busy check would have kept it from creating its close-day, and an operation commits in its
 * insert's round trip (insertOperation `last`), so such a close-day was created moments before at most. The bound only
 * keeps the scan of the terminal's unsettled close-days (the failed ones stay there for good) to recent ones.
 */
const CLAIM_AFTER_CREATION_SLACK_MS = 3_600_000;

/** A close-day that ends a batch this settlement reconciles, with what its answer says. */
interface Boundary {
  op: OperationRow;
  outcome: Extract<CloseDayOutcome, { closed: true }>;
  closedBy: BatchReport['closedBy'];
  /** Its claim (`sentAt`; a row claimed before the column existed: its creation): where it stands in the terminal's order. */
  claimedAt: Date;
}

/** What the first transaction of an attempt found or did (see {@link SettlementService.prepare}). */
interface Prepared {
  settlement: Settlement;
  protocol: SettlementProtocol;
  /** The close-day operation to run (PENDING), to recover (SENT / IN_PROGRESS / UNKNOWN) or already final. */
  operation?: OperationRow;
  /** Another operation of the terminal that keeps it from closing its day now. */
  busy?: { id: string; state: string };
  /** The settlement ended in this transaction: its terminal takes no new work and none of its close-days was sent. */
  ended?: RunResult;
}

/**
 * One terminal's close-day in two transactions of the worker's own (plus the runner's), each step first
 * reading what the database already knows, so a job retried after a crash resumes where it stopped and
 * never sends a second close-day:
 *   slot      → the tenant's fairness slot (Redis) is taken *before* any SQL: a deferral writes nothing
 *   prepare   → one transaction: Settlement row (unique per runKey) RUNNING, attempts counted; unless its
 *               operation needs recovery or is final, the terminal-idle check and a SETTLEMENT operation
 *               created PENDING and linked *before* it is sent
 *   close     → the runner executes the PENDING operation, or recovers one a previous attempt sent
 *               (SENT/IN_PROGRESS/UNKNOWN: never sent again); FAILED = the terminal did not act (new attempt)
 *   complete  → one transaction: the operation's final state read, totals compared, settlement COMPLETED,
 *               operations marked, events published
 * Both transactions of every settlement of a terminal take the terminal's lock first (lockTerminal), so they run
 * one after the other; a settlement completes only after the settlements whose close-days came before its own.
 * The job's data records only the first attempt (give-up window) and `done`; the Settlement's `progress`
 * records the steps in between.
 */
/** A deferred job's own delay (plus jitter up to as much again): only a wake that never comes waits it out. */
const TENANT_WAIT_FALLBACK_MS = 2_000;

@Injectable()
export class SettlementService {
  constructor(
    @Inject(DATABASE) private readonly db: Database,
    @Inject(WORKER_CONFIG) private readonly config: WorkerConfig,
    @Inject(LOGGER) private readonly logger: Logger,
    @Inject(SETTLEMENT_RUNNER) private readonly runner: SettlementRunner,
    @Inject(TENANT_SLOTS) private readonly slots: TenantSlots,
    @Inject(SETTLEMENT_METRICS) private readonly metrics: SettlementMetrics,
    /** To wake a job deferred for its tenant's limit when a slot frees (without it, deferred jobs wait their delay). */
    @Optional() @InjectQueue(QUEUES.settlement) private readonly queue?: Queue,
  ) {}

  async run(job: Job<RunData>, token?: string): Promise<RunResult> {
    let data = job.data;
    const jobId = job.id ?? data.runKey;
    if (!(await this.slots.acquire(data.tenantId, jobId))) {
      // Fairness: the tenant is at its limit; let other tenants' jobs run and come back shortly. Checked before
      // anything is written, so a deferral costs one script call, no transaction, and does not start the
      // give-up window (waiting for the tenant's turn is not the terminal's fault).
      // The job waits in the tenant's queue of deferred jobs: the next job of the tenant that frees its slot wakes
      // it (promotes it out of the delayed set); its own delay only covers a wake that never comes (a worker that died).
      this.metrics.deferred.inc({ reason: 'tenant_limit' });
      await job.moveToDelayed(Date.now() + TENANT_WAIT_FALLBACK_MS + Math.floor(Math.random() * TENANT_WAIT_FALLBACK_MS), token);
      await this.slots.wait(data.tenantId, jobId);
      throw new DelayedError();
    }
    const firstAttempt = !data.firstAttemptAt;
    try {
      if (firstAttempt) {
        data = { ...data, firstAttemptAt: new Date().toISOString(), step: 'start' };
        await job.updateData(data);
      }
      const prepared = await this.prepare(data, firstAttempt);
      if (prepared.ended) return this.counted(prepared.ended);
      const { settlement } = prepared;
      if (settlement.status === 'COMPLETED' || settlement.status === 'FAILED') {
        return { settlementId: settlement.id, status: settlement.status, hasDiscrepancies: settlement.hasDiscrepancies, skipped: true };
      }
      try {
        const operationId = await this.closeDay(prepared, data);
        const result = await this.complete(prepared, data, operationId);
        await job.updateData({ ...data, step: 'done' });
        return this.counted(result);
      } catch (error) {
        if (!(error instanceof RetryLater)) throw error;
        return await this.retryLater(job, token, data, settlement.id, error);
      }
    } finally {
      await this.wake(await this.slots.release(data.tenantId, jobId));
    }
  }

  /** Counts a settlement this run finished (one another run finished, `skipped`, was counted by that run). */
  private counted(result: RunResult): RunResult {
    if (result.skipped) return result;
    this.metrics.settlements.inc({ outcome: result.status === 'FAILED' ? 'failed' : result.hasDiscrepancies ? 'discrepancy' : 'completed' });
    if (result.status === 'FAILED') this.metrics.failures.inc({ code: result.code ?? 'UNKNOWN' });
    return result;
  }

  /**
   * Promotes the deferred job whose turn came (`TenantSlots.release`). One that is no longer delayed (its fallback
   * delay ran out, or it is gone) needs no wake: failing to promote it is not an error.
   */
  private async wake(jobId: string | null): Promise<void> {
    if (jobId === null || this.queue === undefined) return;
    await wakeJob(this.queue, jobId).catch(() => false);
  }

  /**
   * The close-day cannot go now: FAILED once the give-up window is over, else the job is delayed with backoff. A run
   * that finds its settlement finished by another run (a stale duplicate) reports the row's status and writes nothing.
   */
  private async retryLater(job: Job<RunData>, token: string | undefined, data: RunData, settlementId: string, error: RetryLater): Promise<RunResult> {
    const waited = Date.now() - Date.parse(data.firstAttemptAt!);
    if (waited >= this.config.SETTLEMENT_GIVE_UP_MS) return this.counted(await this.fail(settlementId, data, error.code, error.message));
    const retries = (data.retries ?? 0) + 1;
    // The delay chosen, or (a stale duplicate run) what another run finished.
    const deferral = await this.db.withTenant(data.tenantId, async (tx) => {
      const previous = await tx.settlement.findUniqueOrThrow({ where: { id: settlementId }, select: { error: true } });
      const previousCode = (previous.error as { code?: string } | null)?.code;
      const retryInMs = settlementRetryDelayMs(
        { code: error.code, retries, previousCode },
        { baseMs: this.config.SETTLEMENT_RETRY_BASE_MS, maxMs: this.config.SETTLEMENT_RETRY_MAX_MS },
      );
      // Only a RUNNING settlement waits for another attempt: a stale duplicate run (its job stalled and came back after
      // another run completed or failed the settlement) must not stamp its deferral on the finished row.
      const { count } = await tx.settlement.updateMany({
        where: { id: settlementId, status: 'RUNNING' },
        data: { error: { code: error.code, message: error.message, retries, retryInMs } },
      });
      return count === 1 ? retryInMs : finishedElsewhere(tx, settlementId);
    });
    if (typeof deferral !== 'number') return deferral;
    const delay = deferral;
    await job.updateData({ ...data, retries });
    this.metrics.deferred.inc({ reason: error.code });
    this.logger.info({ settlementId, terminalId: data.terminalId, code: error.code, retries, delay }, 'settlement deferred');
    await job.moveToDelayed(Date.now() + delay, token);
    throw new DelayedError();
  }

  /**
   * The attempt's first transaction: the settlement started (created RUNNING on a scheduled run's first attempt,
   * or PENDING / RUNNING → RUNNING), and — unless its close-day operation needs recovery or is final — the
   * terminal-idle check and the operation created and linked. A busy terminal is returned, not thrown, so the
   * started settlement commits (its attempt counts; the deferral records its error on it).
   */
  private prepare(data: RunData, firstAttempt: boolean): Promise<Prepared> {
    // The bare-driver path (Database.withTenantSql): statements prepared once per connection, BEGIN and the tenant scope
    // sent with the first one, COMMIT with the last write; under the same RLS as a Prisma transaction.
    return this.db.withTenantSql(data.tenantId, async (tx) => {
      // The terminal's lock first (pipelined with the first read, which the server runs after it): the busy check and
      // the close-day created after it are one step for the terminal, so two settlements never both send one.
      const [, [terminal]] = await Promise.all([
        lockTerminal(tx, data.terminalId),
        tx.$queryRaw<{ storeId: string; protocol: string; status: string; agentStatus: string | null }[]>`
          SELECT t."storeId", t."protocol"::text AS "protocol", t."status"::text AS "status", a."status"::text AS "agentStatus"
          FROM "Terminal" t LEFT JOIN "Agent" a ON a."id" = t."agentId" WHERE t."id" = ${data.terminalId}::uuid`,
      ]);
      if (!terminal) throw new Error(`terminal ${data.terminalId} not found`);
      const protocol = terminal.protocol as SettlementProtocol;
      const settlement = await this.start(tx, data, terminal.storeId, firstAttempt);
      if (settlement.status === 'COMPLETED' || settlement.status === 'FAILED') return { settlement, protocol };
      let operation = settlement.operationId ? await readOperation(tx, settlement.operationId) : null;
      if (operation && (isFinal(operation) || needsRecovery(operation))) return { settlement, protocol, operation };
      // None of its close-days reached the terminal (none yet, one that provably did not act, or one still PENDING): a
      // terminal that takes no new work now (disabled, or its agent revoked: the gateway's rule) ends the settlement
      // at once; deferred as offline, it waited out the give-up window (4 h). One sent before recovers above instead.
      const refusal = terminalRefusalOf(terminal);
      if (refusal !== null) {
        const claimed = await this.refused(tx, settlement, data, refusal, operation);
        return claimed === null
          ? { settlement, protocol, ended: await this.failIn(tx, settlement.id, data, refusal, refusalMessage(refusal, data)) }
          : { settlement, protocol, operation: claimed };
      }
      const busy = await this.otherOperationInFlight(tx, data, operation?.id);
      if (busy) return { settlement, protocol, operation: operation ?? undefined, busy };
      if (!operation || operation.state === 'FAILED' || operation.state === 'CANCELED') {
        operation = await this.createOperation(tx, settlement, data);
      }
      return { settlement, protocol, operation };
    });
  }

  /**
   * The Settlement of this runKey, created RUNNING on the first attempt (or PENDING → RUNNING); attempts counted.
   * A scheduled run's first attempt tries the insert first (one statement: the row rarely exists yet); any
   * other attempt, and a manual close-day (whose row the gateway created PENDING), reads first.
   * A row of another terminal than the job's refuses the job ({@link refuseOtherTerminal}): nothing is written or sent.
   */
  private async start(tx: SqlClient, data: RunData, storeId: string, firstAttempt: boolean): Promise<Settlement> {
    const byRunKey = async () => {
      const [row] = await tx.$queryRaw<Settlement[]>`
        SELECT ${SETTLEMENT_COLUMNS} FROM "Settlement" s WHERE s."tenantId" = ${data.tenantId}::uuid AND s."runKey" = ${data.runKey}`;
      if (row !== undefined && row.terminalId !== data.terminalId) this.refuseOtherTerminal(row, data);
      return row ?? null;
    };
    const insert = () =>
      insertSettlement(tx, {
        tenantId: data.tenantId,
        terminalId: data.terminalId,
        storeId,
        businessDate: new Date(`${data.businessDate}T00:00:00Z`),
        runKey: data.runKey,
        trigger: data.trigger,
        status: 'RUNNING',
        attempts: 1,
        startedAt: new Date(),
        progress: { step: 'start' },
      });
    if (firstAttempt && data.trigger === 'schedule') {
      const created = await insert();
      if (created) return created;
    }
    const existing = await byRunKey();
    if (existing && (existing.status === 'COMPLETED' || existing.status === 'FAILED')) return existing;
    if (existing) {
      // A later attempt, or a manual close-day's row the gateway created PENDING: it starts now.
      const started = await transitionSettlement(tx, {
        settlementId: existing.id,
        from: ['PENDING', 'RUNNING'],
        to: 'RUNNING',
        countAttempt: true,
        markStarted: true,
      });
      return started?.row ?? mustExist(await byRunKey(), data.runKey);
    }
    // null: a concurrent first attempt created it a moment ago (the unique run key); use that one.
    return (await insert()) ?? mustExist(await byRunKey(), data.runKey);
  }

  /**
   * A job whose terminal is not its settlement's (the row is the truth): ends it for good, before anything is written
   * or sent (the transaction rolls back). Until 2026-12-07 the gateway queued one when an Idempotency-Key already used
   * for terminal A's manual settlement came back for terminal B after its replay record was gone: the run took B's
   * lock, sent the close-day to B and reconciled it, with B's operations, into A's settlement, and A's day never closed.
   * The settlement keeps its own job (the sweep re-adds a lost one from the row); this one ends in BullMQ's failed set
   * (`payorch_queue_jobs{queue="settlement",state="failed"}`), never retried: its data would name the wrong terminal.
   */
  private refuseOtherTerminal(settlement: Settlement, data: RunData): never {
    this.logger.error(
      { settlementId: settlement.id, runKey: data.runKey, terminalId: data.terminalId, settlementTerminalId: settlement.terminalId },
      "settlement job refused: its terminal is not its settlement's",
    );
    throw new UnrecoverableError(
      `settlement ${settlement.id} (runKey ${data.runKey}) is terminal ${settlement.terminalId}'s, not terminal ${data.terminalId}'s: job refused, nothing sent`,
    );
  }

  /**
   * Gets the prepared close-day operation to a final outcome on the terminal, or throws RetryLater when the
   * terminal is busy or unavailable. Returns the operation's id; `complete` reads its final state.
   */
  private async closeDay(prepared: Prepared, data: RunData): Promise<string> {
    const { operation, busy } = prepared;
    if (busy) throw new RetryLater('TERMINAL_BUSY', `operation ${busy.id} is ${busy.state} on this terminal`);
    // prepare() always returns an operation for a settlement that is still running and not busy.
    const op = operation!;
    const ref = { tenantId: data.tenantId, terminalId: data.terminalId, operationId: op.id };
    if (needsRecovery(op)) {
      // Sent before (maybe by a worker that died): never send again, ask the terminal what happened.
      await this.runner.recover(ref).catch((error: unknown) => this.unavailable(error));
    } else if (!isFinal(op)) {
      await this.runner.execute(ref).catch((error: unknown) => this.unavailable(error));
    }
    return op.id;
  }

  private unavailable(error: unknown): never {
    if (error instanceof RunnerUnavailable) throw new RetryLater(error.code, error.message);
    throw error;
  }

  /**
   * A payment in progress (or one whose outcome is still unknown) on this terminal delays the close-day; so does another
   * close-day (another settlement's, or one through the operations API): until its outcome is known nobody knows which
   * batch it closed, and a close-day sent meanwhile might close that batch instead.
   */
  private async otherOperationInFlight(tx: SqlClient, data: RunData, ownOperationId?: string): Promise<{ id: string; state: string } | null> {
    // The terminal's open operations (no completedAt: partial index, migration 20261206003225_open_operations_by_terminal),
    // then their state; asked by state alone, it read the terminal's history (RLS hides the state's statistics).
    const [busy] = await tx.$queryRaw<{ id: string; state: string }[]>`
      SELECT o."id", o."state"::text AS "state" FROM "TerminalOperation" o
      WHERE o."terminalId" = ${data.terminalId}::uuid AND o."completedAt" IS NULL AND o."state" IN (${OPEN_STATES_SQL})
        ${ownOperationId ? Prisma.sql`AND o."id" <> ${ownOperationId}::uuid` : Prisma.empty}
      LIMIT 1`;
    return busy ?? null;
  }

  /**
   * The settlement's terminal takes no new work: its close-day still PENDING (never claimed, so never sent: the
   * executor's claim PENDING → SENT comes before any byte) is failed by the same compare-and-set a late claim then
   * loses, and null is returned (the settlement may end). A claim that won meanwhile returns the close-day as it
   * stands now: sent, so recovered (or its outcome used), never reported failed here.
   */
  private async refused(
    tx: SqlClient,
    settlement: Settlement,
    data: RunData,
    refusal: TerminalRefusal,
    operation: OperationRow | null,
  ): Promise<OperationRow | null> {
    if (operation?.state !== 'PENDING') return null;
    const reason = `never sent: ${refusalMessage(refusal, data)}`;
    const failed = await transitionOperation(tx, {
      operationId: operation.id,
      from: ['PENDING'],
      to: 'FAILED',
      set: { stateReason: reason, error: { code: refusal, reason }, completedAt: new Date() },
      step: { kind: 'transition', data: { reason, by: 'settlement', settlementId: settlement.id }, event: 'operation.completed' },
    });
    if (failed !== null) return null;
    const now = await readOperation(tx, operation.id);
    return now !== null && (isFinal(now) || needsRecovery(now)) ? now : null;
  }

  /** Persists "close-day about to be sent": the operation exists and is linked before any byte goes out. */
  private async createOperation(tx: SqlClient, settlement: Settlement, data: RunData): Promise<OperationRow> {
    const key = closeDayKey(settlement);
    // The operation owner's one insert: PENDING with its OperationEvent and operation.created.
    const { row: operation } = await insertOperation(tx, {
      tenantId: data.tenantId,
      terminalId: data.terminalId,
      storeId: settlement.storeId,
      type: 'settlement',
      idempotencyKey: key,
      requestHash: createHash('sha256').update(key).digest('hex'),
    });
    const progress = { step: 'close_sent', operationId: operation.id, closeSentAt: new Date().toISOString() };
    await tx.$executeRaw`
      UPDATE "Settlement" SET "operationId" = ${operation.id}::uuid, "progress" = ${JSON.stringify(progress)}::jsonb, "updatedAt" = clock_timestamp()
      WHERE "id" = ${settlement.id}::uuid`;
    return operation;
  }

  /**
   * Reconciles and completes in one transaction (guarded by status, so a replay changes nothing). The settlement
   * covers every batch since the previous settlement of the terminal: one per close-day done outside a settlement
   * (a `settlement` / `report_z` operation through the operations API) that nobody reconciled yet, then its own.
   * Each batch compares the close-day's totals with our approved operations created between its two boundaries.
   * An operation that is not final yet (the runner returned without an outcome) is retried later, writing nothing; so
   * is a settlement with an earlier close-day of another settlement that is still running (closedOutside).
   */
  private async complete(prepared: Prepared, data: RunData, operationId: string): Promise<RunResult> {
    const settlementId = prepared.settlement.id;
    const { protocol } = prepared;
    const recovered = prepared.operation !== undefined && needsRecovery(prepared.operation);
    return this.db.withTenantSql(data.tenantId, async (tx) => {
      // The terminal's lock first (pipelined with the read): no other settlement of the terminal completes between
      // this one's reads of the boundaries, of their owners and of the operations it settles, and its marks.
      const [, operation] = await Promise.all([lockTerminal(tx, data.terminalId), readOperation(tx, operationId)]);
      if (operation === null) throw new Error(`close-day operation ${operationId} not found`);
      if (!isFinal(operation)) {
        // FAILED / CANCELED (sent now, or recovered from a previous attempt): the terminal did not close its day; the
        // next attempt sends a new close-day, soon (settlementRetryDelayMs). Anything else is not decided yet: recovery's.
        if (operation.state === 'FAILED' || operation.state === 'CANCELED') {
          throw new RetryLater('CLOSE_DAY_FAILED', `close-day was not performed: ${operation.stateReason ?? operation.state}`);
        }
        if (recovered) throw new RetryLater('OUTCOME_UNKNOWN', `close-day ${operation.id} is ${operation.state}; recovery continues`);
        throw new RetryLater('OUTCOME_UNKNOWN', `close-day ${operation.id} is ${operation.state}`);
      }

      // Everything is ordered by claim (`sentAt`): claims of a terminal are serialised (its claim lock), so this is the
      // order the terminal ran them in — for the close-days as for our operations.
      const ownClaim = (await claimTimes(tx, [operation.id])).get(operation.id) ?? operation.createdAt;
      const outside = await this.closedOutside(tx, protocol, data, operation.id, ownClaim);
      const own = closeDayOutcome(protocol, closeDayFields(operation), { closedOutsideSince: outside.length > 0 });
      if (!own.closed) return this.failIn(tx, settlementId, data, 'CLOSE_DAY_DECLINED', own.reason);

      // Ours: approved, not yet settled, claimed before the close-day was; split at the boundaries in claim order.
      // A payment created just before a close-day but run on the terminal after it belongs to the next batch, and one
      // created after it but run before it to this one.
      const boundaries: Boundary[] = [...outside, { op: operation, outcome: own, closedBy: 'settlement', claimedAt: ownClaim }];
      const rows = await this.approvedBefore(tx, data, ownClaim);
      const perBatch = boundaries.map(() => [] as typeof rows);
      for (const row of rows) perBatch[boundaries.findIndex((b) => claimOrder(row) < b.claimedAt)]!.push(row);

      const batches: BatchReport[] = [];
      const discrepancies: BatchDiscrepancy[] = [];
      const settled: string[] = [];
      // Observed from the terminal (Joinproto DF12): an operation belongs to the batch of the shift it was recorded in.
      // One recorded in another shift than the one its batch's close-day ended goes to the close-day that ended its
      // shift, if one of this settlement's did, else to a batch the terminal closed on its own: its totals were never
      // seen, so it is listed, not compared. Every boundary that names its shift is checked (the own close-day and the
      // outside ones alike): a shift closed on the terminal before a close-day through the operations path is not that
      // close-day's batch.
      const shiftOf = (row: (typeof rows)[number]) => {
        const shift = (row.protocolRefs as { shiftNo?: unknown } | null)?.shiftNo;
        return typeof shift === 'string' ? shift : undefined;
      };
      const closedShifts = boundaries.map((b) => (b.outcome.kind === 'closed_without_totals' ? undefined : b.outcome.totals.batchNumber));
      const closedOnTerminal = new Map<string, typeof rows>();
      const moved = perBatch.map(() => [] as typeof rows);
      perBatch.forEach((list, i) => {
        if (closedShifts[i] === undefined) return;
        perBatch[i] = list.filter((row) => {
          const shift = shiftOf(row);
          if (shift === undefined || shift === closedShifts[i]) return true;
          const owner = closedShifts.indexOf(shift);
          if (owner >= 0) moved[owner]!.push(row);
          else closedOnTerminal.set(shift, [...(closedOnTerminal.get(shift) ?? []), row]);
          return false;
        });
      });
      moved.forEach((list, i) => {
        if (list.length > 0) perBatch[i] = [...perBatch[i]!, ...list].sort((a, b) => a.createdAt.getTime() - b.createdAt.getTime());
      });
      for (const [shift, list] of closedOnTerminal) {
        const ops = list.map(recordedOperation);
        settled.push(...ops.map((o) => o.id));
        batches.push({
          closeDayOperationId: null,
          closedBy: 'terminal',
          closedAt: null,
          outcome: 'closed_on_terminal',
          batchNumber: shift,
          operations: ops.length,
          ours: totalsOfOperations(protocol, ops),
          terminal: null,
          discrepancies: 0,
        });
      }
      let ownResult: ReturnType<typeof reconcile> | undefined;
      boundaries.forEach((b, i) => {
        const terminal = b.outcome.kind === 'closed_without_totals' ? { unavailable: b.outcome.unavailable } : b.outcome.totals;
        const result = reconcile(protocol, terminal, perBatch[i]!.map(recordedOperation));
        if (b.outcome.kind === 'closed_without_totals' && b.outcome.hostMismatch) {
          result.discrepancies.push({
            kind: 'host_mismatch',
            detail: 'the terminal closed its day reporting that its totals differ from the host (totals unreadable)',
          });
        }
        discrepancies.push(...result.discrepancies.map((d) => ({ ...d, batch: b.op.id })));
        settled.push(...result.settledOperationIds, b.op.id);
        batches.push({
          closeDayOperationId: b.op.id,
          closedBy: b.closedBy,
          closedAt: (b.op.completedAt ?? b.op.updatedAt).toISOString(),
          outcome: b.outcome.kind,
          batchNumber: result.terminal?.batchNumber ?? null,
          operations: result.settledOperationIds.length,
          ours: result.ours,
          terminal: result.terminal,
          discrepancies: result.discrepancies.length,
        });
        // The own batch is the last: a failed settlement's close-day before it is closedBy 'settlement' too.
        if (i === boundaries.length - 1) ownResult = result;
      });
      const result = ownResult!;
      const hasDiscrepancies = discrepancies.length > 0;
      const summary = {
        settlementId,
        terminalId: data.terminalId,
        storeId: prepared.settlement.storeId,
        businessDate: data.businessDate,
        outcome: own.kind,
        batches: batches.length,
        operations: batches.reduce((n, b) => n + b.operations, 0),
        ourNet: result.ours.net,
        terminalNet: result.terminal?.net ?? null,
        // Every batch it reconciled (ourNet / terminalNet are its own batch's): a day's events sum to its summary.
        ...batchNets(batches),
        discrepancies: discrepancies.length,
      };
      const completed = await transitionSettlement(tx, {
        settlementId,
        from: ['RUNNING'],
        to: 'COMPLETED',
        set: {
          completedAt: new Date(),
          ourTotals: result.ours as never,
          terminalTotals: (result.terminal ?? undefined) as never,
          discrepancies: discrepancies as never,
          batches: batches as never,
          outcome: own.kind,
          hasDiscrepancies,
          // The deferrals on the way (TERMINAL_BUSY, TERMINAL_OFFLINE…) are over: a completed close-day has no error.
          error: null,
          progress: { step: 'done', operationId: operation.id },
        },
        eventData: summary,
        alsoPublish: hasDiscrepancies ? [{ type: 'settlement.discrepancy', data: { ...summary, kinds: [...new Set(discrepancies.map((d) => d.kind))] } }] : [],
      });
      // Another run finished it meanwhile (a stale duplicate): its status, which may be FAILED, not this run's reckoning.
      if (completed === null) return finishedElsewhere(tx, settlementId);
      // Our operations and the close-days themselves (a close-day with a settlementId is a reconciled boundary).
      await tx.$executeRaw`
        UPDATE "TerminalOperation" SET "settlementId" = ${settlementId}::uuid, "updatedAt" = clock_timestamp()
        WHERE "id" = ANY(${settled}::uuid[]) AND "settlementId" IS NULL`;
      this.logger.info(
        { settlementId, terminalId: data.terminalId, outcome: own.kind, batches: batches.length, discrepancies: discrepancies.length },
        'settlement completed',
      );
      return { settlementId, status: 'COMPLETED', hasDiscrepancies };
    });
  }

  /**
   * Our operations a close-day claimed at `before` settles: approved, not yet settled, claimed before it (`sentAt`; rows
   * without one by their creation), oldest first. `createdAt < before` bounds the index scan (a claim follows its
   * creation). The originals of voids and refunds (their type, and the amount of a void stored without one) are read
   * only when there are any.
   */
  private async approvedBefore(tx: SqlClient, data: RunData, before: Date) {
    const rows = await tx.$queryRaw<
      {
        id: string;
        type: string;
        amount: bigint | null;
        cashbackAmount: bigint | null;
        createdAt: Date;
        sentAt: Date | null;
        originalOperationId: string | null;
        protocolRefs: unknown;
        result: unknown;
        rrn: string | null;
        approvalCode: string | null;
      }[]
    >`
      SELECT o."id", o."type"::text AS "type", o."amount", o."cashbackAmount", o."createdAt", o."sentAt", o."originalOperationId", o."protocolRefs",
        o."result", o."rrn", o."approvalCode"
      FROM "TerminalOperation" o
      WHERE o."terminalId" = ${data.terminalId}::uuid AND o."state" = 'APPROVED' AND o."settlementId" IS NULL
        AND o."type" <> ALL(${[...SETTLED_TYPES_EXCLUDED]}::"OperationType"[]) AND o."createdAt" < ${before}::timestamptz
        AND COALESCE(o."sentAt", o."createdAt") < ${before}::timestamptz
      ORDER BY o."createdAt" ASC`;
    const originalIds = [...new Set(rows.flatMap((r) => (r.originalOperationId === null ? [] : [r.originalOperationId])))];
    const originals =
      originalIds.length === 0
        ? new Map<string, { type: string; amount: bigint | null }>()
        : new Map(
            (
              await tx.$queryRaw<{ id: string; type: string; amount: bigint | null }[]>`
                SELECT o."id", o."type"::text AS "type", o."amount" FROM "TerminalOperation" o WHERE o."id" = ANY(${originalIds}::uuid[])`
            ).map((o) => [o.id, { type: o.type, amount: o.amount }]),
          );
    return rows.map((r) => ({ ...r, original: r.originalOperationId === null ? null : (originals.get(r.originalOperationId) ?? null) }));
  }

  /**
   * The close-days of the terminal before this settlement's own that bound batches of it, in the order the terminal ran
   * them (claim order: `sentAt`, like our operations): those claimed after the previous settlement's close-day and
   * before this one's (`ownClaim`) that closed the day and were not reconciled yet (APPROVED or DECLINED, no
   * settlementId), sent through the operations API (`settlement` / `report_z`) or by a settlement that FAILED (given up
   * while its close-day's outcome was unknown, which recovery found later). Creation order is not the terminal's: a
   * close-day through the operations API created while this settlement's close-day waited for the terminal may run
   * first (a batch of its own before this one's), and one created before it may run after it (the next settlement's).
   * One sent by a settlement still running is that settlement's to reconcile: this one waits for it (RetryLater
   * EARLIER_SETTLEMENT_OPEN) instead of taking its operations into its own batch, and they both reconcile what their own
   * close-day closed.
   */
  private async closedOutside(tx: SqlClient, protocol: SettlementProtocol, data: RunData, ownId: string, ownClaim: Date): Promise<Boundary[]> {
    // The previous settlement's own close-day bounds this one (one statement: settlement joined to its operation). The
    // newest COMPLETED settlement of the terminal, read backwards from the partial index of those (migration
    // 20261206075616_previous_settlement_by_terminal; the status a literal, so a generic plan proves its predicate): by
    // ("tenantId", "terminalId", "businessDate") it read and sorted every settlement the terminal ever had.
    const [previous] = await tx.$queryRaw<{ createdAt: Date; claimedAt: Date }[]>`
      SELECT o."createdAt", COALESCE(o."sentAt", o."createdAt") AS "claimedAt" FROM "Settlement" s JOIN "TerminalOperation" o ON o."id" = s."operationId"
      WHERE s."terminalId" = ${data.terminalId}::uuid AND s."status" = 'COMPLETED'
      ORDER BY s."completedAt" DESC LIMIT 1`;
    // The createdAt bounds are the index range (a claim follows its creation; CLAIM_AFTER_CREATION_SLACK_MS); the claims decide.
    const candidates = await tx.$queryRaw<CloseDayRow[]>`
      SELECT ${operationRowColumns('o')}, o."idempotencyKey", COALESCE(o."sentAt", o."createdAt") AS "claimedAt" FROM "TerminalOperation" o
      WHERE o."terminalId" = ${data.terminalId}::uuid AND o."type" IN (${CLOSE_DAY_TYPES_SQL})
        AND o."state" IN ('APPROVED', 'DECLINED') AND o."settlementId" IS NULL AND o."id" <> ${ownId}::uuid
        AND o."createdAt" < ${ownClaim}::timestamptz AND COALESCE(o."sentAt", o."createdAt") < ${ownClaim}::timestamptz
        ${
          previous
            ? Prisma.sql`AND o."createdAt" > ${new Date(previous.createdAt.getTime() - CLAIM_AFTER_CREATION_SLACK_MS)}::timestamptz
        AND COALESCE(o."sentAt", o."createdAt") > ${previous.claimedAt}::timestamptz`
            : Prisma.empty
        }
      ORDER BY COALESCE(o."sentAt", o."createdAt") ASC`;
    const closed = candidates
      .map((op) => ({ op, claimedAt: op.claimedAt, outcome: closeDayOutcome(protocol, closeDayFields(op)) }))
      .filter((b): b is { op: CloseDayRow; claimedAt: Date; outcome: Extract<CloseDayOutcome, { closed: true }> } => b.outcome.closed);
    if (closed.length === 0) return [];
    // Which settlement sent each (its key names it: closeDayKey), by primary key: asked by operationId, which has no
    // index, it read the tenant's every settlement. The sender must still own it (operationId), or it is not its close-day.
    const senders = [...new Set(closed.flatMap((b) => settlementIdOfCloseDay(b.op) ?? []))];
    const owners =
      senders.length === 0
        ? new Map<string, Settlement['status']>()
        : new Map(
            (
              await tx.$queryRaw<{ operationId: string | null; status: Settlement['status'] }[]>`
                SELECT s."operationId", s."status"::text AS "status" FROM "Settlement" s WHERE s."id" = ANY(${senders}::uuid[])`
            ).flatMap((s) => (s.operationId === null ? [] : [[s.operationId, s.status] as const])),
          );
    return closed.flatMap((b) => boundaryOf(b, owners.get(b.op.id)) ?? []);
  }

  private fail(settlementId: string, data: RunData, code: string, message: string): Promise<RunResult> {
    return this.db.withTenant(data.tenantId, (tx) => this.failIn(tx, settlementId, data, code, message));
  }

  private async failIn(tx: SqlClient, settlementId: string, data: RunData, code: string, message: string): Promise<RunResult> {
    const failed = await transitionSettlement(tx, {
      settlementId,
      from: ['PENDING', 'RUNNING'],
      to: 'FAILED',
      set: { completedAt: new Date(), error: { code, message } },
      eventData: { settlementId, terminalId: data.terminalId, businessDate: data.businessDate, code, message },
    });
    if (failed === null) return finishedElsewhere(tx, settlementId);
    this.logger.warn({ settlementId, terminalId: data.terminalId, code }, 'settlement failed');
    return { settlementId, status: 'FAILED', code };
  }
}

/**
 * What an earlier close-day that closed the day is to a settlement, by the status of the settlement that sent it
 * (`sender`; undefined: none, it came through the operations API).
 */
function boundaryOf(b: Omit<Boundary, 'closedBy'>, sender: Settlement['status'] | undefined): Boundary | null {
  if (sender === undefined) return { ...b, closedBy: 'operations_api' };
  switch (sender) {
    case 'PENDING':
    case 'RUNNING':
      // Its settlement reconciles the batch it closed; taking its operations here would leave that one short.
      throw new RetryLater('EARLIER_SETTLEMENT_OPEN', `close-day ${b.op.id} before this one belongs to a settlement that is still running`);
    case 'FAILED':
      // Its settlement gave up on it (its outcome was found after the give-up window): the batch is reconciled here.
      return { ...b, closedBy: 'settlement' };
    case 'COMPLETED':
      // Its settlement reconciled it and marked it in the same transaction, under the terminal's lock: not seen here.
      return null;
    default:
      return assertUnreachable(sender);
  }
}

/** Why a settlement of a terminal that takes no new work ended, and what brings its day to a close. */
function refusalMessage(refusal: TerminalRefusal, data: RunData): string {
  switch (refusal) {
    case 'TERMINAL_DISABLED':
      return `terminal ${data.terminalId} is disabled: no close-day was sent; enable it (PATCH /v1/terminals/${data.terminalId} {"disabled": false}) and close its day by hand (POST /v1/terminals/${data.terminalId}/settlements)`;
    case 'AGENT_REVOKED':
      return `terminal ${data.terminalId} is bridged by a revoked agent: no close-day was sent; move it to an active agent and close its day by hand (POST /v1/terminals/${data.terminalId}/settlements)`;
    default:
      return assertUnreachable(refusal);
  }
}

/**
 * Takes the terminal's settlement lock for the rest of the transaction: every transaction of every settlement of the
 * terminal (prepare and complete) takes it first, so they run one at a time per terminal (READ COMMITTED alone lets each
 * statement see commits made since the one before).
 */
function lockTerminal(tx: SqlClient, terminalId: string): PromiseLike<number> {
  return tx.$executeRaw`SELECT pg_advisory_xact_lock(hashtextextended(${`settlement:${terminalId}`}, 0))`;
}

/** The idempotency key of a settlement's close-day: it names the settlement (settlementIdOfCloseDay reads it back). */
function closeDayKey(settlement: Settlement): string {
  return `settlement:${settlement.id}:${settlement.attempts}:${Date.now()}`;
}

/** The settlement a close-day's key names (closeDayKey), if any; its `operationId` says whether it still owns it. */
function settlementIdOfCloseDay(op: CloseDayRow): string | undefined {
  return /^settlement:([0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}):/.exec(op.idempotencyKey)?.[1];
}

/** What a run reports for a settlement another run finished: the row's own status, skipped. */
async function finishedElsewhere(tx: SqlClient, settlementId: string): Promise<RunResult> {
  const [row] = await tx.$queryRaw<{ status: Settlement['status']; hasDiscrepancies: boolean }[]>`
    SELECT s."status"::text AS "status", s."hasDiscrepancies" FROM "Settlement" s WHERE s."id" = ${settlementId}::uuid`;
  if (row?.status !== 'COMPLETED' && row?.status !== 'FAILED') throw new Error(`settlement ${settlementId} is ${row?.status ?? 'gone'}, not finished`);
  return { settlementId, status: row.status, hasDiscrepancies: row.hasDiscrepancies, skipped: true };
}

/** The operation row (the executor's columns), or null. */
async function readOperation(tx: SqlClient, id: string): Promise<OperationRow | null> {
  const [row] = await tx.$queryRaw<OperationRow[]>(operationById(id));
  return row ?? null;
}

function mustExist(row: Settlement | null, runKey: string): Settlement {
  if (row === null) throw new Error(`settlement ${runKey} not found`);
  return row;
}

function isFinal(operation: OperationRow): boolean {
  return operation.state === 'APPROVED' || operation.state === 'DECLINED';
}

/** Sent before, outcome not stored: the terminal is asked (recovery), the close-day is never sent again. */
function needsRecovery(operation: OperationRow): boolean {
  return operation.state === 'SENT' || operation.state === 'IN_PROGRESS' || operation.state === 'UNKNOWN';
}

/** The stored outcome of a close-day operation, as the close-day classifier reads it. */
function closeDayFields(op: OperationRow): CloseDayOperation {
  const receipt = op.receipt as { text?: string; fields?: Record<string, unknown> } | null;
  const stored = op.result as { amount?: unknown } | null;
  return {
    state: op.state,
    stateReason: op.stateReason,
    responseCode: op.responseCode,
    responseMessage: op.responseMessage,
    receiptText: receipt?.text ?? null,
    receiptFields: receipt?.fields ?? null,
    amount: typeof stored?.amount === 'number' ? stored.amount : null,
    data: outcomeData(op.result),
  };
}

/** Where an operation stands in its terminal's claim order: its claim, or (claimed before `sentAt` existed) its creation. */
function claimOrder(row: { sentAt: Date | null; createdAt: Date }): Date {
  return row.sentAt ?? row.createdAt;
}

/** The claim times of close-days (`sentAt`, else `createdAt`), by id: where they stand in the terminal's order. */
async function claimTimes(tx: SqlClient, ids: readonly string[]): Promise<Map<string, Date>> {
  const rows = await tx.$queryRaw<{ id: string; at: Date }[]>`
    SELECT o."id", COALESCE(o."sentAt", o."createdAt") AS "at" FROM "TerminalOperation" o WHERE o."id" = ANY(${[...ids]}::uuid[])`;
  return new Map(rows.map((r) => [r.id, r.at]));
}

/**
 * One approved operation of ours, with what it moved. A void or preauth cancel moved what the terminal answered
 * (`result.amount`) when it answered one: its recorded amount, when the request named none, is what the gateway
 * computed at creation (the original's, or for a JPAY void what was left of it then — a refund in flight at that time
 * that failed later leaves the terminal voiding more); else the recorded amount, else the original's.
 */
export function recordedOperation(r: {
  id: string;
  type: string;
  amount: bigint | null;
  cashbackAmount: bigint | null;
  result: unknown;
  rrn: string | null;
  approvalCode: string | null;
  original: { type: string; amount: bigint | null } | null;
}): RecordedOperation {
  const answered = (r.result as { amount?: unknown } | null)?.amount;
  const terminalDecides = r.type === 'VOID' || r.type === 'PREAUTH_CANCEL';
  const amount =
    terminalDecides && typeof answered === 'number' && answered > 0
      ? answered
      : r.amount !== null
        ? Number(r.amount)
        : typeof answered === 'number'
          ? answered
          : Number(r.original?.amount ?? 0n);
  return {
    id: r.id,
    type: r.type,
    amount,
    cashbackAmount: r.cashbackAmount === null ? null : Number(r.cashbackAmount),
    rrn: r.rrn,
    approvalCode: r.approvalCode,
    originalType: r.original?.type ?? null,
  };
}

/** OperationOutcome.data as the executor stores it: `result = { amount, data }` (libs/operations records.ts). */
function outcomeData(result: unknown): Record<string, unknown> | null {
  if (!result || typeof result !== 'object') return null;
  const stored = result as { data?: unknown };
  return 'data' in stored ? ((stored.data as Record<string, unknown> | null) ?? null) : (result as Record<string, unknown>);
}
