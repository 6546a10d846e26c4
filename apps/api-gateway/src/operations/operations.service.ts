import { createHash, randomUUID } from 'node:crypto';

import { Inject, Injectable, type OnApplicationShutdown } from '@nestjs/common';

import { Prisma, type Database, type PublishedEvent, type SqlClient, type TransactionClient } from '@payorch/db';
import { ApiError, canonicalJson, notFound, type TenantContext, type TerminalCommandReply } from '@payorch/domain';
import { assertSupported, type Capability, DriverError } from '@payorch/drivers';
import type { Logger } from '@payorch/logging';
import {
  AmountError,
  commandCopyOf,
  fromApiState,
  insertOperation,
  isUnheldPending,
  operationById,
  type OperationRow,
  operationRowColumns,
  resolveManually,
  RUNNING_STATES,
  TERMINAL_COMMAND_DISPATCHER,
  type TerminalCommandDispatcher,
  toDbType,
  toOperationView,
  transitionOperation,
} from '@payorch/operations';

import { audit } from '../common/audit';
import { KEYSET_ORDER, keysetPage, type Page } from '../common/pagination';
import { DATABASE, LOGGER } from '../common/tokens';
import type { WatchKey } from '../events/key-watch';
import { requireOperableTerminal } from '../terminals/operable-terminal';
import { OperationOutcomeWaiter } from './outcome-waiter';
import { decideReversal, ENDED_WITHOUT_EFFECT, type LiveReversal } from './reversal-budget';
import type { CreateOperationDto, ListOperationsQuery, OperationResponse, ReceiptResponse, ResolveOperationDto } from './dto/operation.dto';
import { SSI_CURRENCY_TYPES } from './dto/operation.dto';

/** Types whose original must be an approved operation of one of these types. */
const ORIGINAL_TYPES: Partial<Record<CreateOperationDto['type'], readonly string[]>> = {
  refund: ['PURCHASE', 'PURCHASE_WITH_CASHBACK', 'PREAUTH_CAPTURE'],
  void: ['PURCHASE', 'PURCHASE_WITH_CASHBACK', 'REFUND', 'PREAUTH_CAPTURE'],
  partial_void: ['PURCHASE', 'PURCHASE_WITH_CASHBACK'],
  preauth_capture: ['PREAUTH'],
  preauth_cancel: ['PREAUTH'],
  sbp_refund: ['SBP_PAYMENT'],
};

/** Retry-After while the command bus (Redis) is down; it reconnects within seconds of Redis answering. */
const BUS_RETRY_AFTER_SECONDS = 5;

@Injectable()
export class OperationsService implements OnApplicationShutdown {
  private readonly inFlight = new Set<Promise<unknown>>();

  constructor(
    @Inject(DATABASE) private readonly db: Database,
    @Inject(TERMINAL_COMMAND_DISPATCHER) private readonly dispatcher: TerminalCommandDispatcher,
    @Inject(LOGGER) private readonly logger: Logger,
    private readonly outcomes: OperationOutcomeWaiter,
  ) {}

  /**
   * Creates the operation (PENDING) once per Idempotency-Key — same key and same request → the same
   * operation, different request → 409, also after the global 24 h replay window — then dispatches
   * `operation.execute`. A dispatch that fails before the terminal got it marks the operation FAILED
   * (a conditional PENDING → FAILED, so an executor that did start wins).
   * A `?wait=` is kept to the request's key (`watchKey`): once the key no longer authenticates the request stops waiting
   * and answers 401; the operation goes on.
   */
  async create(
    ctx: TenantContext,
    terminalId: string,
    dto: CreateOperationDto,
    idempotencyKey: string,
    waitMs: number,
    watchKey?: WatchKey,
  ): Promise<OperationResponse> {
    if (this.dispatcher.isAvailable?.() === false) {
      // Accepting it now would only fail it as never sent: refuse, the client retries with the same key.
      throw new ApiError('SERVICE_UNAVAILABLE', 'the terminal command bus is unavailable; retry with the same Idempotency-Key', {
        retryAfterSeconds: BUS_RETRY_AFTER_SECONDS,
      });
    }
    const requestHash = createHash('sha256')
      .update(canonicalJson({ terminalId, ...dto }))
      .digest('hex');
    let created: { row: OperationRow; event: PublishedEvent } | undefined;
    // The terminal's agent as read in the creating transaction: the dispatch needs no lookup of its own.
    let agentId: string | null | undefined;
    let row: OperationRow;
    try {
      // The hot path (Database.withTenantSql): the key's lookup and the terminal's gate are independent reads,
      // written together with BEGIN; the insert follows; its DomainEvent and audit row travel with the COMMIT.
      row = await this.db.withTenantSql(ctx, async (tx) => {
        const gate = requireOperableTerminal(tx, terminalId);
        gate.catch(() => undefined); // a repeat answers with its operation, whatever the terminal is now
        const existing = await this.byKey(tx, ctx.tenantId, idempotencyKey, requestHash);
        if (existing) return existing;
        const terminal = await gate;
        agentId = terminal.agentId;
        const capability = this.capability(terminal.protocol, terminal.dialect, dto.type);
        if (capability.needsAmount && dto.amount === undefined) throw invalid('amount', `is required for ${dto.type}`);
        if (dto.type === 'purchase_with_cashback' && dto.cashbackAmount === undefined)
          throw invalid('cashbackAmount', 'is required for purchase_with_cashback');
        if (terminal.protocol === 'SSI_ECR' && SSI_CURRENCY_TYPES.has(dto.type) && dto.currency === undefined)
          throw invalid('currency', `is required for ${dto.type} on ssi_ecr terminals (sent as ISO 4217 numeric)`);
        let original: Awaited<ReturnType<OperationsService['checkOriginal']>> | undefined;
        if (capability.needsOriginal) original = await this.checkOriginal(tx, terminalId, dto, capability);
        else if (dto.originalOperationId !== undefined) throw invalid('originalOperationId', `is not used by ${dto.type}`);
        // A void or preauth cancel without an amount moves what the terminal reverses (the original's whole amount, or
        // for a JPAY void what is left of it): record it, so totals and reconciliation see it.
        // The audit row first, so the INSERT is the last statement and COMMIT leaves with it (insertOperation `last`).
        const id = randomUUID();
        await audit(tx, ctx, { action: 'operation.create', resourceType: 'operation', resourceId: id, details: { type: dto.type, terminalId } });
        created = await insertOperation(
          tx,
          {
            id,
            tenantId: ctx.tenantId,
            terminalId,
            storeId: terminal.storeId,
            type: dto.type,
            amount: dto.amount ?? (original?.takes != null ? Number(original.takes) : undefined),
            cashbackAmount: dto.cashbackAmount,
            currency: dto.currency ?? (original?.takes != null ? (original.row.currency ?? undefined) : undefined),
            originalOperationId: dto.originalOperationId,
            idempotencyKey,
            requestHash,
          },
          { last: true },
        );
        return created.row;
      });
    } catch (error) {
      if (error instanceof AmountError) throw invalid('amount', error.message);
      const lostRace = error instanceof Prisma.PrismaClientKnownRequestError && error.code === 'P2002';
      const again = lostRace ? await this.db.withTenantSql(ctx, (tx) => this.byKey(tx, ctx.tenantId, idempotencyKey, requestHash)) : null;
      if (again === null) throw error;
      // A concurrent request with the same key won the insert: answer as a repeat.
      row = again;
      created = undefined;
    }
    // A repeat of an operation still PENDING that no connector holds (its gateway died between insert and
    // dispatch): dispatch it again. Safe: the executor's claim (PENDING → SENT, compare-and-set) runs it once,
    // and a command that finds it claimed does nothing.
    const unheld = created === undefined && isUnheldPending(row);
    if (created === undefined && !unheld) {
      // A repeat (the key is kept by the operation, @IdempotencyKeptByResource): the operation as it is now;
      // with ?wait= it waits for the run like the first request did.
      if (waitMs > 0 && RUNNING_STATES.has(row.state)) {
        const wait = await this.outcomes.prepare(ctx.tenantId, row.id, watchKey);
        try {
          await wait.settled(waitMs);
        } finally {
          wait.close();
        }
        return wait.outcome() ?? this.current(ctx, row.id);
      }
      return toOperationView(row);
    }
    if (waitMs <= 0) {
      void this.track(this.execute(ctx.tenantId, row, agentId));
      return this.current(ctx, row.id);
    }
    // Listen before dispatching, so that an outcome published right after the connector queued it is seen.
    const wait = await this.outcomes.prepare(ctx.tenantId, row.id, watchKey);
    try {
      const accepted = this.track(this.execute(ctx.tenantId, row, agentId));
      // Not accepted: execute() has failed it (PENDING → FAILED) already; accepted: the connector runs it.
      await Promise.race([accepted.then((ok) => (ok ? wait.settled(waitMs) : undefined)), wait.settled(waitMs)]);
    } finally {
      wait.close();
    }
    // The run-over event's own view of the operation when it carried one: no read after the outcome (issue 19: the
    // critical path is the create, the claim and the outcome); otherwise (a timeout, a re-read) the row as it is now.
    return wait.outcome() ?? this.current(ctx, row.id);
  }

  /** The operation as it is now, for create's answer: one pipelined round trip (Database.querySql). */
  private async current(ctx: TenantContext, id: string): Promise<OperationResponse> {
    const [row] = await this.db.querySql<OperationRow>(ctx, operationById(id));
    if (row === undefined) throw notFound('operation', id);
    return toOperationView(row);
  }

  async get(ctx: TenantContext, id: string): Promise<OperationResponse> {
    return this.db.withTenant(ctx, async (tx) => toOperationView(await this.load(tx, id)));
  }

  list(ctx: TenantContext, query: ListOperationsQuery): Promise<Page<OperationResponse>> {
    return this.db.withTenant(ctx, async (tx) => {
      const filters = {
        terminalId: query.terminalId,
        storeId: query.storeId,
        type: query.type && toDbType(query.type),
        state: query.state && fromApiState(query.state),
        createdAt: query.from || query.to ? { gte: query.from && new Date(query.from), lt: query.to && new Date(query.to) } : undefined,
      };
      const load = async (ids: string[]) => (await tx.terminalOperation.findMany({ where: { id: { in: ids } }, orderBy: KEYSET_ORDER })) as OperationRow[];
      return keysetPage(tx, 'TerminalOperation', filters, query, load, toOperationView);
    });
  }

  /**
   * PENDING: canceled at once (nothing was sent). SENT / IN_PROGRESS: `operation.cancel` to the terminal
   * (Joinproto 90, JPAY keepalive → cancelled, SSI Interrupt); the operation's outcome then tells. Anything
   * else, or a terminal past the point of no return: 409.
   */
  async cancel(ctx: TenantContext, id: string): Promise<OperationResponse> {
    const reason = 'canceled before it was sent';
    const canceled = await this.db.withTenant(ctx, async (tx) => {
      const written = await transitionOperation(tx, {
        operationId: id,
        from: ['PENDING'],
        to: 'CANCELED',
        set: { stateReason: reason, completedAt: new Date() },
        step: { kind: 'transition', data: { reason }, event: 'operation.completed' },
      });
      if (written === null) return { row: await this.load(tx, id), event: undefined };
      await audit(tx, ctx, { action: 'operation.cancel', resourceType: 'operation', resourceId: id });
      return { row: written.row, event: written.event };
    });
    if (canceled.event) {
      return toOperationView(canceled.row);
    }
    const row = canceled.row;
    if (row.state !== 'SENT' && row.state !== 'IN_PROGRESS') {
      throw new ApiError('CONFLICT', `operation ${id} is ${row.state.toLowerCase()} and cannot be canceled`, { state: row.state.toLowerCase() });
    }
    const reply = await this.dispatcher.dispatch({ kind: 'operation.cancel', tenantId: ctx.tenantId, terminalId: row.terminalId, operationId: id });
    if (!reply.ok) {
      const why = reply.code === 'TOO_LATE' ? 'the terminal can no longer interrupt it' : `the terminal could not be asked (${reply.code}: ${reply.message})`;
      throw new ApiError('CONFLICT', `operation ${id} cannot be canceled: ${why}`, { reason: reply.code });
    }
    await this.db.withTenant(ctx, (tx) => audit(tx, ctx, { action: 'operation.cancel', resourceType: 'operation', resourceId: id }));
    return this.get(ctx, id);
  }

  /** A human's verdict on an UNKNOWN operation: only from UNKNOWN (conditional update), audited with the note. */
  async resolve(ctx: TenantContext, id: string, dto: ResolveOperationDto): Promise<OperationResponse> {
    const result = await this.db.withTenant(ctx, async (tx) => {
      const row = await this.load(tx, id);
      if (row.state !== 'UNKNOWN') {
        throw new ApiError('CONFLICT', `operation ${id} is ${row.state.toLowerCase()}; only an unknown operation can be resolved by hand`, {
          state: row.state.toLowerCase(),
        });
      }
      const outcome = await resolveManually(tx, id, {
        state: fromApiState(dto.state) as 'APPROVED' | 'DECLINED' | 'FAILED',
        note: dto.note,
        actor: ctx.actor,
        rrn: dto.rrn,
        approvalCode: dto.approvalCode,
      });
      if (!outcome.changed) {
        throw new ApiError('CONFLICT', `operation ${id} was resolved meanwhile (now ${outcome.row.state.toLowerCase()})`, {
          state: outcome.row.state.toLowerCase(),
        });
      }
      await audit(tx, ctx, {
        action: 'operation.resolve',
        resourceType: 'operation',
        resourceId: id,
        details: {
          state: dto.state,
          note: dto.note,
          ...(dto.rrn !== undefined && { rrn: dto.rrn }),
          ...(dto.approvalCode !== undefined && { approvalCode: dto.approvalCode }),
        },
      });
      return outcome;
    });
    return toOperationView(result.row);
  }

  async receipt(ctx: TenantContext, id: string): Promise<ReceiptResponse> {
    const row = await this.db.withTenant(ctx, (tx) => this.load(tx, id));
    const receipt = row.receipt as { text?: string; fields?: Record<string, unknown> } | null;
    if (!receipt) throw new ApiError('NOT_FOUND', `operation ${id} has no receipt (state ${row.state.toLowerCase()})`, { resource: 'receipt', id });
    return { operationId: id, text: receipt.text ?? null, fields: receipt.fields ?? {} };
  }

  async onApplicationShutdown(): Promise<void> {
    await Promise.allSettled([...this.inFlight]);
  }

  /**
   * Hands the operation to the connector that holds its terminal (`replyWhen: 'queued'`: the reply comes as
   * soon as it is queued there, the outcome follows as events). Resolves true when it was accepted.
   */
  private async execute(tenantId: string, row: OperationRow, agentId: string | null | undefined): Promise<boolean> {
    let reply: TerminalCommandReply;
    try {
      // With the command as inserted (not for reversals): the executor checks it at its claim instead of reading the row first.
      const command = commandCopyOf(row);
      reply = await this.dispatcher.dispatch(
        {
          kind: 'operation.execute',
          tenantId,
          terminalId: row.terminalId,
          operationId: row.id,
          replyWhen: 'queued',
          ...(command === undefined ? {} : { command }),
        },
        agentId === undefined ? {} : { agentId },
      );
    } catch (error) {
      reply = { ok: false, code: 'INTERNAL', message: error instanceof Error ? error.message : String(error) };
    }
    if (reply.ok) return true;
    // Nothing was sent while the operation is still PENDING (the executor claims it first); a TIMEOUT may
    // still be followed by a late start, which the conditional update then refuses.
    const reason = `not sent: ${reply.code}: ${reply.message}`;
    await this.db.withTenant(tenantId, (tx) =>
      transitionOperation(tx, {
        operationId: row.id,
        from: ['PENDING'],
        to: 'FAILED',
        set: { stateReason: reason, error: { code: reply.ok ? null : reply.code }, completedAt: new Date() },
        step: { kind: 'transition', data: { reason }, event: 'operation.completed' },
      }),
    );
    return false;
  }

  private track(promise: Promise<boolean>): Promise<boolean> {
    const tracked = promise.catch((err: unknown) => {
      this.logger.error({ err }, 'operation dispatch failed');
      return false;
    });
    this.inFlight.add(tracked);
    void tracked.finally(() => this.inFlight.delete(tracked));
    return tracked;
  }

  private async byKey(tx: SqlClient, tenantId: string, key: string, requestHash: string): Promise<OperationRow | null> {
    const [existing] = await tx.$queryRaw<(OperationRow & { requestHash: string })[]>`
      SELECT ${operationRowColumns()}, "requestHash" FROM "TerminalOperation" WHERE "tenantId" = ${tenantId}::uuid AND "idempotencyKey" = ${key}`;
    if (existing === undefined) return null;
    if (existing.requestHash !== requestHash) {
      throw new ApiError('IDEMPOTENCY_KEY_REUSED', `Idempotency-Key "${key}" already created operation ${existing.id} with a different request`, {
        operationId: existing.id,
      });
    }
    return existing;
  }

  private async load(tx: TransactionClient, id: string): Promise<OperationRow> {
    const row = (await tx.terminalOperation.findUnique({ where: { id } })) as OperationRow | null;
    if (!row) throw notFound('operation', id);
    return row;
  }

  private capability(protocol: 'JOINPROTO' | 'JPAY' | 'SSI_ECR', dialect: string | null, type: CreateOperationDto['type']) {
    try {
      return assertSupported(protocol, dialect, type);
    } catch (error) {
      if (error instanceof DriverError) throw new ApiError('UNPROCESSABLE', error.message, error.details);
      throw error;
    }
  }

  /**
   * The original of a reversal (refund, void, capture, …): approved, of a type the reversal applies to, on this terminal,
   * in the request's currency, and with enough left (`reversalRefusal`). The original's row is locked until the
   * creating transaction ends (FOR NO KEY UPDATE: it blocks no reader and no foreign-key check), so reversals of one
   * original are created one at a time and each counts the ones committed before it: concurrent refunds can never
   * together give back more than was paid.
   */
  private async checkOriginal(tx: SqlClient, terminalId: string, dto: CreateOperationDto, capability: Capability) {
    const voidReverses = capability.reverses;
    if (dto.originalOperationId === undefined) throw invalid('originalOperationId', `is required for ${dto.type}`);
    const [original] = await tx.$queryRaw<
      OperationRow[]
    >`SELECT ${operationRowColumns()} FROM "TerminalOperation" WHERE "id" = ${dto.originalOperationId}::uuid FOR NO KEY UPDATE`;
    if (!original) throw notFound('operation', dto.originalOperationId);
    const allowed = ORIGINAL_TYPES[dto.type] ?? [];
    if (capability.originals !== undefined && allowed.includes(original.type) && !capability.originals.some((t) => t.toUpperCase() === original.type)) {
      throw new ApiError(
        'UNPROCESSABLE',
        `${dto.type} of a ${original.type.toLowerCase()} operation is not supported on this terminal: ${capability.notes ?? capability.command}`,
        {
          field: 'originalOperationId',
        },
      );
    }
    if (!allowed.includes(original.type)) {
      throw new ApiError('UNPROCESSABLE', `${dto.type} cannot refer to a ${original.type.toLowerCase()} operation`, { field: 'originalOperationId' });
    }
    if (original.state !== 'APPROVED') {
      throw new ApiError('UNPROCESSABLE', `the original operation is ${original.state.toLowerCase()}, not approved`, { field: 'originalOperationId' });
    }
    if (original.terminalId !== terminalId) {
      throw new ApiError('UNPROCESSABLE', 'the original operation was made on another terminal; use that terminal', { field: 'originalOperationId' });
    }
    if (dto.currency !== undefined && original.currency !== null && dto.currency !== original.currency) {
      throw new ApiError('UNPROCESSABLE', `the original operation is in ${original.currency}, not ${dto.currency}`, { field: 'currency' });
    }
    const live = await tx.$queryRaw<LiveReversal[]>`
      SELECT r."id", r."type"::text AS "type", r."state"::text AS "state", r."amount" FROM "TerminalOperation" r
      WHERE r."originalOperationId" = ${original.id}::uuid AND r."state"::text <> ALL(${[...ENDED_WITHOUT_EFFECT]}::text[])`;
    const decision = decideReversal(dto.type, dto.amount, original, live, voidReverses);
    if (decision.refusal) throw decision.refusal;
    // What a void or preauth cancel without an amount takes of the original (recorded as its amount).
    const takes = dto.amount === undefined && (dto.type === 'void' || dto.type === 'preauth_cancel') ? decision.amount : null;
    return { row: original, takes };
  }
}

function invalid(field: string, message: string): ApiError {
  return new ApiError('VALIDATION_FAILED', `${field}: ${message}`, { issues: [{ field, message }] });
}
