import { InjectQueue } from '@nestjs/bullmq';
import { Inject, Injectable } from '@nestjs/common';
import type { Queue } from 'bullmq';

import {
  attemptsBefore,
  CAMPAIGN_QUEUE,
  type CampaignJobData,
  type CampaignPolicy,
  campaignJobId,
  campaignWakeJobId,
  estimateEta,
  insertCampaign,
  MAX_ATTEMPTS_BEFORE_DEADLINE,
  type NewCampaignTarget,
  planWaves,
  selectorWhere,
  skipOpenTargets,
  type TerminalSelector,
  transitionCampaign,
} from '@payorch/campaigns';
import type { GatewayConfig } from '@payorch/config';
import { type Database, Prisma, type TransactionClient } from '@payorch/db';
import { ApiError, notFound, type TenantContext } from '@payorch/domain';
import { assertSupported, DriverError, type OperationType } from '@payorch/drivers';
import { toDbType } from '@payorch/operations';
import type { Campaign, CampaignState, CampaignTarget, CampaignTargetState, CampaignWave } from '@payorch/prisma';
import { csvRow } from '@payorch/settlement';

import { audit } from '../common/audit';
import { KEYSET_ORDER, keysetPage, type Page } from '../common/pagination';
import { DATABASE, GATEWAY_CONFIG } from '../common/tokens';
import {
  type CampaignResponse,
  type CountsResponse,
  type CreateCampaignDto,
  type ListCampaignsQuery,
  type ListTargetsQuery,
  MAX_CAMPAIGN_TARGETS,
  TARGET_CSV_COLUMNS,
  type TargetResponse,
} from './dto/campaign.dto';

/** A campaign counts against CAMPAIGNS_MAX_PER_TENANT while open, and for this long after its creation. */
const CAMPAIGN_LIMIT_WINDOW_MS = 24 * 3_600_000;

interface SelectedTerminal {
  id: string;
  storeId: string;
  protocol: 'JOINPROTO' | 'JPAY' | 'SSI_ECR';
  dialect: string | null;
  hasCredentials: boolean;
}

@Injectable()
export class CampaignsService {
  constructor(
    @Inject(GATEWAY_CONFIG) private readonly config: GatewayConfig,
    @Inject(DATABASE) private readonly db: Database,
    @InjectQueue(CAMPAIGN_QUEUE) private readonly queue: Queue,
  ) {
    // Connection errors are logged once per connection (bootstrap); enqueue failures reach the caller.
    queue.on('error', () => undefined);
  }

  /**
   * Selects the terminals, checks the operation type against each one's capability (unsupported → `skipped` with
   * the matrix's reason), plans the waves and stores everything in one transaction, then hands `campaign.run` to
   * the worker. The same Idempotency-Key returns the same campaign (and enqueues it again if that had failed).
   */
  async create(ctx: TenantContext, dto: CreateCampaignDto, idempotencyKey: string): Promise<CampaignResponse> {
    const policy: CampaignPolicy = {
      waveSize: dto.policy.waveSize,
      canary: dto.policy.canary,
      maxConcurrentPerStore: dto.policy.maxConcurrentPerStore,
      maxConcurrentPerTenant: dto.policy.maxConcurrentPerTenant,
      maintenanceWindow: dto.policy.maintenanceWindow,
      retryDelaySeconds: dto.policy.retryDelaySeconds,
      maxAttempts: dto.policy.maxAttempts,
      failureThresholdPercent: dto.policy.failureThresholdPercent,
    };
    const deadline = dto.policy.deadline === undefined ? null : new Date(dto.policy.deadline);
    if (deadline !== null && deadline.getTime() <= Date.now()) throw invalid('policy.deadline', 'must be in the future');
    if (deadline !== null) assertAttemptsBounded(new Date(), deadline, policy.retryDelaySeconds);
    const campaign = await this.db.withTenant(ctx, async (tx) => {
      // The lock first: a repeat of a key whose campaign committed meanwhile finds it, and is not counted against the limit.
      await tx.$executeRaw`SELECT pg_advisory_xact_lock(hashtextextended(${`campaigns:create:${ctx.tenantId}`}, 0))`;
      const existing = await tx.campaign.findUnique({ where: { tenantId_idempotencyKey: { tenantId: ctx.tenantId, idempotencyKey } } });
      if (existing) return existing;
      await this.assertUnderLimit(tx);
      const terminals = await this.select(tx, selectorOf(dto.selector));
      if (terminals.length === 0)
        throw new ApiError('UNPROCESSABLE', 'selector: matches no terminal', { issues: [{ field: 'selector', message: 'matches no terminal' }] });
      if (terminals.length > MAX_CAMPAIGN_TARGETS) {
        throw new ApiError('UNPROCESSABLE', `selector: matches ${terminals.length} terminals; a campaign addresses at most ${MAX_CAMPAIGN_TARGETS}`, {
          issues: [{ field: 'selector', message: `matches more than ${MAX_CAMPAIGN_TARGETS} terminals` }],
        });
      }
      const targets = targetsOf(terminals, dto.operation.type, policy);
      const created = await insertCampaign(tx, {
        tenantId: ctx.tenantId,
        name: dto.name,
        idempotencyKey,
        operationType: toDbType(dto.operation.type),
        params: dto.operation.params,
        selector: dto.selector,
        policy: { ...policy },
        deadline,
        waves: targets.waves,
        targets: targets.rows,
      });
      if (created === null) return tx.campaign.findUniqueOrThrow({ where: { tenantId_idempotencyKey: { tenantId: ctx.tenantId, idempotencyKey } } });
      await audit(tx, ctx, {
        action: 'campaign.create',
        resourceType: 'campaign',
        resourceId: created.campaign.id,
        details: { type: dto.operation.type, targets: targets.rows.length, waves: targets.waves.length },
      });
      return created.campaign;
    });
    if (campaign.state === 'RUNNING' || campaign.state === 'PAUSED') await this.enqueue(ctx.tenantId, campaign.id);
    return this.get(ctx, campaign.id);
  }

  list(ctx: TenantContext, query: ListCampaignsQuery): Promise<Page<CampaignResponse>> {
    return this.db.withTenant(ctx, async (tx) => {
      const load = async (ids: string[]) => tx.campaign.findMany({ where: { id: { in: ids } }, orderBy: KEYSET_ORDER });
      const page = await keysetPage(tx, 'Campaign', { state: query.state?.toUpperCase() }, query, load, (row) => row);
      const counts = await countsBy(tx, Prisma.sql`"campaignId" = ANY(${page.data.map((c) => c.id)}::uuid[])`, Prisma.sql`"campaignId"::text`);
      return { data: page.data.map((row) => toCampaignResponse(row, counts.get(row.id) ?? emptyCounts(), [], new Map())), nextCursor: page.nextCursor };
    });
  }

  get(ctx: TenantContext, id: string): Promise<CampaignResponse> {
    return this.db.withTenant(ctx, async (tx) => {
      const row = await this.load(tx, id);
      const waves = await tx.campaignWave.findMany({ where: { campaignId: id }, orderBy: { index: 'asc' } });
      const total = (await countsBy(tx, Prisma.sql`"campaignId" = ${id}::uuid`, Prisma.sql`'all'`)).get('all') ?? emptyCounts();
      const perWave = await countsBy(tx, Prisma.sql`"campaignId" = ${id}::uuid AND "waveIndex" IS NOT NULL`, Prisma.sql`"waveIndex"::text`);
      return toCampaignResponse(row, total, waves, perWave);
    });
  }

  targets(ctx: TenantContext, id: string, query: ListTargetsQuery): Promise<Page<TargetResponse>> {
    return this.db.withTenant(ctx, async (tx) => {
      await this.load(tx, id);
      const load = (ids: string[]) => tx.campaignTarget.findMany({ where: { id: { in: ids } }, orderBy: KEYSET_ORDER });
      const filters = { campaignId: id, state: query.state?.toUpperCase(), waveIndex: query.wave };
      return keysetPage(tx, 'CampaignTarget', filters, query, load, toTargetResponse);
    });
  }

  /** Every target of the campaign (filtered like the JSON list) as CSV, in creation order. */
  csv(ctx: TenantContext, id: string, query: ListTargetsQuery): Promise<string> {
    return this.db.withTenant(ctx, async (tx) => {
      await this.load(tx, id);
      const rows = await tx.campaignTarget.findMany({
        where: { campaignId: id, state: query.state?.toUpperCase() as CampaignTargetState | undefined, waveIndex: query.wave },
        orderBy: [{ createdAt: 'asc' }, { id: 'asc' }],
      });
      let out = csvRow(TARGET_CSV_COLUMNS);
      for (const t of rows.map(toTargetResponse)) {
        const answer = (t.answer ?? {}) as { responseCode?: string | null; responseMessage?: string | null };
        out += csvRow([
          t.terminalId,
          t.storeId,
          t.wave,
          t.state,
          t.attempts,
          t.operationId,
          answer.responseCode,
          answer.responseMessage,
          t.lastError,
          t.reason,
          t.completedAt,
        ]);
      }
      return out;
    });
  }

  pause(ctx: TenantContext, id: string): Promise<CampaignResponse> {
    return this.move(ctx, id, ['RUNNING'], 'PAUSED', 'campaign.pause');
  }

  /** PAUSED → RUNNING: steps waiting on the pause go on; a wave halted by failures counts as passed. */
  resume(ctx: TenantContext, id: string): Promise<CampaignResponse> {
    return this.move(ctx, id, ['PAUSED'], 'RUNNING', 'campaign.resume');
  }

  /** Open targets are skipped at once; a step already running on its terminal finishes (nothing is interrupted). */
  cancel(ctx: TenantContext, id: string): Promise<CampaignResponse> {
    return this.move(ctx, id, ['RUNNING', 'PAUSED'], 'CANCELED', 'campaign.cancel');
  }

  private async move(ctx: TenantContext, id: string, from: CampaignState[], to: CampaignState, action: string): Promise<CampaignResponse> {
    const eventId = await this.db.withTenant(ctx, async (tx) => {
      const current = await this.load(tx, id);
      const written = await transitionCampaign(tx, { campaignId: id, from, to, pauseReason: 'operator', eventData: { by: 'operator' } });
      if (written === null) {
        throw new ApiError('CONFLICT', `campaign ${id} is ${current.state.toLowerCase()}; it cannot be ${PAST[to]}`, { state: current.state.toLowerCase() });
      }
      const skipped = to === 'CANCELED' ? await skipOpenTargets(tx, id, 'campaign canceled') : undefined;
      await audit(tx, ctx, { action, resourceType: 'campaign', resourceId: id, details: skipped === undefined ? {} : { skipped } });
      return written.event?.id;
    });
    if (to !== 'PAUSED' && eventId !== undefined) await this.wake(ctx.tenantId, id, eventId);
    return this.get(ctx, id);
  }

  /**
   * After a resume or a cancel: the worker wakes the campaign's parked steps and halted wave (`campaign.wake`), which
   * otherwise wait for their fallback delay (minutes; they no longer poll, issue 20 review). The transition is
   * committed either way, so a wake that cannot be queued is not the caller's error: that fallback runs them.
   */
  private async wake(tenantId: string, campaignId: string, eventId: string): Promise<void> {
    const data: CampaignJobData['campaign.wake'] = { tenantId, campaignId };
    await this.queue
      .add('campaign.wake', data, { jobId: campaignWakeJobId(campaignId, eventId), removeOnComplete: true, removeOnFail: { count: 100 } })
      .catch(() => undefined);
  }

  /**
   * A tenant has at most CAMPAIGNS_MAX_PER_TENANT campaigns open (running, paused) or created in the last 24 hours
   * (409 CONFLICT `campaign_limit`). A campaign writes a row per selected terminal (up to MAX_CAMPAIGN_TARGETS) and
   * a BullMQ step job per terminal of its running wave, each parked in Redis while it waits for a slot; without a bound, a
   * tenant creating (and canceling) campaigns in a loop wrote millions of rows a minute and filled the shared
   * `campaigns` queue. Ended campaigns count for a day, so canceling is no way around it. The caller holds the
   * tenant's creation lock, so two creations at once cannot both pass the count.
   */
  private async assertUnderLimit(tx: TransactionClient): Promise<void> {
    const limit = this.config.CAMPAIGNS_MAX_PER_TENANT;
    const counted = await tx.campaign.count({
      where: { OR: [{ state: { in: ['RUNNING', 'PAUSED'] } }, { createdAt: { gte: new Date(Date.now() - CAMPAIGN_LIMIT_WINDOW_MS) } }] },
    });
    if (counted >= limit) {
      throw new ApiError('CONFLICT', `a tenant has at most ${limit} campaigns open or created in the last 24 hours`, { reason: 'campaign_limit', limit });
    }
  }

  private async enqueue(tenantId: string, campaignId: string): Promise<void> {
    const data: CampaignJobData['campaign.run'] = { tenantId, campaignId };
    try {
      await this.queue.add('campaign.run', data, { jobId: campaignJobId(campaignId), removeOnComplete: { count: 1000 }, removeOnFail: false });
    } catch (error) {
      throw new ApiError('SERVICE_UNAVAILABLE', 'the campaign is stored but could not be started (queue unavailable); retry with the same Idempotency-Key', {
        campaignId,
        retryAfterSeconds: 5,
        cause: error instanceof Error ? error.message : String(error),
      });
    }
  }

  private async select(tx: TransactionClient, selector: TerminalSelector): Promise<SelectedTerminal[]> {
    return tx.$queryRaw<SelectedTerminal[]>`
      SELECT t."id", t."storeId", t."protocol"::text AS "protocol", t."dialect", (t."credentialsEncrypted" IS NOT NULL) AS "hasCredentials"
      FROM "Terminal" t JOIN "Store" s ON s."id" = t."storeId" AND s."tenantId" = t."tenantId"
      WHERE ${selectorWhere(selector)}
      ORDER BY t."createdAt", t."id"
      LIMIT ${MAX_CAMPAIGN_TARGETS + 1}`;
  }

  private async load(tx: TransactionClient, id: string): Promise<Campaign> {
    const row = await tx.campaign.findUnique({ where: { id } });
    if (!row) throw notFound('campaign', id);
    return row;
  }
}

const PAST: Record<CampaignState, string> = { RUNNING: 'resumed', PAUSED: 'paused', CANCELED: 'canceled', COMPLETED: 'completed' };

function selectorOf(dto: CreateCampaignDto['selector']): TerminalSelector {
  return { ...dto, protocols: dto.protocols?.map((p) => p.toUpperCase() as 'JOINPROTO' | 'JPAY' | 'SSI_ECR') };
}

/** Capability check per terminal, then the eligible ones spread over the planned waves in selection order. */
function targetsOf(terminals: SelectedTerminal[], type: OperationType, policy: CampaignPolicy) {
  const rows: NewCampaignTarget[] = [];
  const eligible: SelectedTerminal[] = [];
  for (const t of terminals) {
    const refusal = refusalOf(t, type);
    if (refusal) rows.push({ terminalId: t.id, storeId: t.storeId, waveIndex: null, state: 'SKIPPED', reason: refusal.reason, lastError: refusal.code });
    else eligible.push(t);
  }
  const waves = planWaves(eligible.length, policy);
  let next = 0;
  for (const wave of waves) {
    for (const t of eligible.slice(next, next + wave.size)) rows.push({ terminalId: t.id, storeId: t.storeId, waveIndex: wave.index, state: 'PENDING' });
    next += wave.size;
  }
  return { rows, waves };
}

function refusalOf(t: SelectedTerminal, type: OperationType): { code: string; reason: string } | undefined {
  try {
    const capability = assertSupported(t.protocol, t.dialect, type);
    if (capability.needsAdminPassword && !t.hasCredentials) {
      return { code: 'MISSING_CREDENTIALS', reason: `${type} on ${t.protocol} needs the terminal's admin password (credentials.adminPassword)` };
    }
    return undefined;
  } catch (error) {
    if (error instanceof DriverError) return { code: error.code, reason: error.message };
    throw error;
  }
}

const emptyCounts = (): CountsResponse => ({ pending: 0, running: 0, retrying: 0, succeeded: 0, failed: 0, skipped: 0, total: 0 });

/** Target counts per state, grouped by `key` (SQL over "CampaignTarget", RLS-scoped). */
async function countsBy(tx: TransactionClient, where: Prisma.Sql, key: Prisma.Sql): Promise<Map<string, CountsResponse>> {
  const rows = await tx.$queryRaw<{ key: string; state: CampaignTargetState; n: bigint }[]>`
    SELECT ${key} AS "key", "state", count(*) AS "n" FROM "CampaignTarget" WHERE ${where} GROUP BY 1, 2`;
  const out = new Map<string, CountsResponse>();
  for (const r of rows) {
    const counts = out.get(r.key) ?? emptyCounts();
    counts[r.state.toLowerCase() as keyof Omit<CountsResponse, 'total'>] += Number(r.n);
    counts.total += Number(r.n);
    out.set(r.key, counts);
  }
  return out;
}

function toCampaignResponse(row: Campaign, counts: CountsResponse, waves: CampaignWave[], perWave: Map<string, CountsResponse>): CampaignResponse {
  const done = counts.succeeded + counts.failed;
  const remaining = counts.pending + counts.running + counts.retrying;
  const eta = row.state === 'RUNNING' ? estimateEta(new Date(), row.createdAt, done, remaining) : null;
  return {
    completedAt: iso(row.completedAt),
    counts,
    createdAt: row.createdAt.toISOString(),
    deadline: iso(row.deadline),
    eta: iso(eta),
    id: row.id,
    name: row.name,
    operation: { params: row.params as Record<string, unknown>, type: row.operationType.toLowerCase() as CampaignResponse['operation']['type'] },
    pauseReason: (row.pauseReason as CampaignResponse['pauseReason']) ?? null,
    policy: { ...(row.policy as Record<string, unknown>), deadline: iso(row.deadline) },
    selector: row.selector as Record<string, unknown>,
    state: row.state.toLowerCase() as CampaignResponse['state'],
    updatedAt: row.updatedAt.toISOString(),
    waves: waves.map((w) => ({
      canary: w.canary,
      completedAt: iso(w.completedAt),
      counts: perWave.get(String(w.index)) ?? emptyCounts(),
      index: w.index,
      size: w.size,
      startedAt: iso(w.startedAt),
      state: w.state.toLowerCase() as CampaignResponse['waves'][number]['state'],
    })),
  };
}

function toTargetResponse(row: CampaignTarget): TargetResponse {
  return {
    answer: (row.answer as Record<string, unknown> | null) ?? null,
    attempts: row.attempts,
    completedAt: iso(row.completedAt),
    createdAt: row.createdAt.toISOString(),
    id: row.id,
    lastError: row.lastError,
    nextAttemptAt: iso(row.nextAttemptAt),
    operationId: row.operationId,
    reason: row.reason,
    startedAt: iso(row.startedAt),
    state: row.state.toLowerCase() as TargetResponse['state'],
    storeId: row.storeId,
    terminalId: row.terminalId,
    wave: row.waveIndex,
  };
}

const iso = (d: Date | null) => d?.toISOString() ?? null;

/**
 * With a deadline, `maxAttempts` does not apply: a terminal that stays offline is tried every `retryDelaySeconds`
 * until the deadline, each attempt an operation row. Any deadline (year 9999) with a 1 s delay used to be accepted,
 * one row every ~2 s per offline terminal for as long as that (issue 20 review); the attempts that fit are bounded
 * instead (400 on `policy.deadline`, naming both ways out).
 */
function assertAttemptsBounded(now: Date, deadline: Date, retryDelaySeconds: number): void {
  const attempts = attemptsBefore(now, deadline, retryDelaySeconds);
  if (attempts <= MAX_ATTEMPTS_BEFORE_DEADLINE) return;
  const latest = new Date(now.getTime() + MAX_ATTEMPTS_BEFORE_DEADLINE * retryDelaySeconds * 1000);
  const delay = Math.floor((deadline.getTime() - now.getTime()) / (MAX_ATTEMPTS_BEFORE_DEADLINE * 1000)) + 1;
  throw invalid(
    'policy.deadline',
    `allows ${attempts} attempts of an offline terminal (one every ${retryDelaySeconds} s); at most ${MAX_ATTEMPTS_BEFORE_DEADLINE} may fit: ` +
      `set it before ${latest.toISOString()} or retryDelaySeconds to at least ${delay}`,
  );
}

function invalid(field: string, message: string): ApiError {
  return new ApiError('VALIDATION_FAILED', `${field}: ${message}`, { issues: [{ field, message }] });
}
