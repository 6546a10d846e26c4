import { compareAndSetLifecycle, Prisma, publishEvent, type PublishedEvent, type SqlClient } from '@payorch/db';
import { PayorchError } from '@payorch/domain';
import type { Campaign, CampaignState, CampaignTarget, CampaignTargetState, CampaignWave, CampaignWaveState, OperationType } from '@payorch/prisma';

/**
 * THE writer of `Campaign.state`, `CampaignWave.state` and `CampaignTarget.state` (the only part of this library
 * that writes): {@link insertCampaign} creates a campaign with its waves and targets, {@link transitionCampaign},
 * {@link transitionWave} and {@link transitionTarget} make every later change as one compare-and-set each
 * (`compareAndSetLifecycle`, libs/db) and {@link skipOpenTargets} ends the open targets of a canceled campaign,
 * checked against the tables below. `architecture.spec.ts` in libs/operations fails on any other writer.
 */

type Table<S extends string> = Readonly<Record<S, Readonly<Partial<Record<S, string>>>>>;

export const CAMPAIGN_TRANSITIONS: Table<CampaignState> = {
  RUNNING: {
    PAUSED: 'paused by the operator, by a failed canary (canary_failed) or by a wave past the failure threshold (failure_rate)',
    CANCELED: 'canceled by the operator: open targets are skipped, running steps finish',
    COMPLETED: 'every wave ran to its end',
  },
  PAUSED: {
    RUNNING: 'resumed by the operator (a halted wave then counts as passed)',
    CANCELED: 'canceled by the operator while paused',
  },
  COMPLETED: {},
  CANCELED: {},
};

export const WAVE_TRANSITIONS: Table<CampaignWaveState> = {
  PENDING: { RUNNING: 'the worker added the wave and its terminal steps (campaign.wave_started)' },
  RUNNING: {
    PASSED: 'every step ended and the failures stayed within the policy (campaign.wave_completed)',
    HALTED: 'a failure in the canary, or failures past the threshold: the campaign pauses (campaign.wave_halted)',
  },
  HALTED: { PASSED: 'the operator resumed the campaign: the next wave may start (campaign.wave_completed)' },
  PASSED: {},
};

export const TARGET_TRANSITIONS: Table<CampaignTargetState> = {
  PENDING: {
    RUNNING: 'its operation was created and handed to the terminal queue (attempts + 1)',
    RETRYING: 'the terminal is recovering an unknown operation: not started, tried again later',
    FAILED: 'the deadline passed before it could start',
    SKIPPED: 'campaign canceled or completed before it started (never sent), or the terminal is disabled / its agent revoked',
  },
  RETRYING: {
    RUNNING: 'the next attempt started (attempts + 1)',
    RETRYING: 'still recovering before the attempt could start',
    FAILED: 'still unavailable at the deadline (or after maxAttempts)',
    SKIPPED: 'campaign canceled or completed before it started (never sent), or the terminal is disabled / its agent revoked',
  },
  RUNNING: {
    SUCCEEDED: 'the terminal approved the command (answer stored)',
    FAILED: 'the terminal refused the command, or the operation failed for good (answer and reason stored)',
    RETRYING: 'the terminal was offline, busy or recovering, or its operation provably never reached it: nothing was done, tried again later',
  },
  SUCCEEDED: {},
  FAILED: {},
  SKIPPED: {},
};

/** How a target comes into being. */
export const TARGET_CREATED_AS: Readonly<Partial<Record<CampaignTargetState, string>>> = {
  PENDING: 'selected, and the terminal supports the operation type',
  SKIPPED: "selected, but the terminal's protocol cannot run the operation type (reason: the capability matrix's)",
};

export type CampaignEventType =
  | 'campaign.created'
  | 'campaign.paused'
  | 'campaign.resumed'
  | 'campaign.canceled'
  | 'campaign.completed'
  | 'campaign.wave_started'
  | 'campaign.wave_completed'
  | 'campaign.wave_halted';

export class CampaignTransitionError extends PayorchError<'ILLEGAL_TRANSITION' | 'INVALID_WRITE'> {}

function assertMove<S extends string>(what: string, table: Table<S>, from: readonly S[], to: S): void {
  if (from.length === 0) throw new CampaignTransitionError('INVALID_WRITE', 'a transition needs at least one source state');
  const illegal = from.filter((f) => table[f][to] === undefined);
  if (illegal.length > 0) {
    throw new CampaignTransitionError('ILLEGAL_TRANSITION', `${what} ${illegal.join(', ')} → ${to} is not a transition`, { from: illegal, to });
  }
}

export const canTransitionCampaign = (from: CampaignState, to: CampaignState) => CAMPAIGN_TRANSITIONS[from][to] !== undefined;
export const canTransitionTarget = (from: CampaignTargetState, to: CampaignTargetState) => TARGET_TRANSITIONS[from][to] !== undefined;

export interface NewCampaignTarget {
  terminalId: string;
  storeId: string;
  /** null with state SKIPPED. */
  waveIndex: number | null;
  state: 'PENDING' | 'SKIPPED';
  reason?: string | null;
  lastError?: string | null;
}

export interface NewCampaign {
  tenantId: string;
  name: string;
  idempotencyKey: string;
  operationType: OperationType;
  params: Record<string, unknown>;
  selector: Record<string, unknown>;
  policy: Record<string, unknown>;
  deadline: Date | null;
  waves: readonly { index: number; canary: boolean; size: number }[];
  targets: readonly NewCampaignTarget[];
}

/**
 * Creates the campaign (RUNNING), its waves (PENDING) and targets (PENDING, or SKIPPED with the reason) in the
 * caller's transaction, plus `campaign.created`. Targets go in one statement (unnest), so 10,000 terminals cost
 * one round trip. A taken `(tenantId, idempotencyKey)` returns null, writing nothing.
 */
export async function insertCampaign(tx: SqlClient, input: NewCampaign): Promise<{ campaign: Campaign; event: PublishedEvent } | null> {
  for (const t of input.targets) {
    if (TARGET_CREATED_AS[t.state] === undefined) throw new CampaignTransitionError('ILLEGAL_TRANSITION', `a target is not created ${t.state}`);
    if ((t.state === 'PENDING') !== (t.waveIndex !== null))
      throw new CampaignTransitionError('INVALID_WRITE', 'a pending target needs a wave; a skipped one has none');
  }
  const rows = await tx.$queryRaw<Campaign[]>`
    INSERT INTO "Campaign" ("id", "tenantId", "name", "idempotencyKey", "operationType", "params", "selector", "policy", "deadline", "state",
      "createdAt", "updatedAt")
    VALUES (gen_random_uuid(), ${input.tenantId}::uuid, ${input.name}, ${input.idempotencyKey}, ${input.operationType}::"OperationType",
      ${JSON.stringify(input.params)}::jsonb, ${JSON.stringify(input.selector)}::jsonb, ${JSON.stringify(input.policy)}::jsonb,
      ${input.deadline}::timestamptz, 'RUNNING', clock_timestamp(), clock_timestamp())
    ON CONFLICT ("tenantId", "idempotencyKey") DO NOTHING
    RETURNING *`;
  const campaign = rows[0];
  if (campaign === undefined) return null;
  if (input.waves.length > 0) {
    await tx.$executeRaw`
      INSERT INTO "CampaignWave" ("id", "tenantId", "campaignId", "index", "canary", "size", "state", "createdAt", "updatedAt")
      SELECT gen_random_uuid(), ${input.tenantId}::uuid, ${campaign.id}::uuid, w.index, w.canary, w.size, 'PENDING', clock_timestamp(), clock_timestamp()
      FROM unnest(${input.waves.map((w) => w.index)}::int[], ${input.waves.map((w) => w.canary)}::boolean[], ${input.waves.map((w) => w.size)}::int[])
        AS w(index, canary, size)`;
  }
  if (input.targets.length > 0) {
    const t = input.targets;
    await tx.$executeRaw`
      INSERT INTO "CampaignTarget" ("id", "tenantId", "campaignId", "terminalId", "storeId", "waveIndex", "state", "reason", "lastError",
        "completedAt", "createdAt", "updatedAt")
      SELECT gen_random_uuid(), ${input.tenantId}::uuid, ${campaign.id}::uuid, x.terminal, x.store, x.wave, x.state::"CampaignTargetState", x.reason, x.error,
        CASE WHEN x.state = 'SKIPPED' THEN clock_timestamp() END, clock_timestamp(), clock_timestamp()
      FROM unnest(${t.map((x) => x.terminalId)}::uuid[], ${t.map((x) => x.storeId)}::uuid[], ${t.map((x) => x.waveIndex)}::int[],
        ${t.map((x) => x.state)}::text[], ${t.map((x) => x.reason ?? null)}::text[], ${t.map((x) => x.lastError ?? null)}::text[])
        WITH ORDINALITY AS x(terminal, store, wave, state, reason, error, n)
      ORDER BY x.n`;
  }
  const skipped = input.targets.filter((x) => x.state === 'SKIPPED').length;
  const event = await publish(tx, campaign, 'campaign.created', {
    operationType: input.operationType.toLowerCase(),
    targets: input.targets.length,
    skipped,
    waves: input.waves.length,
  });
  return { campaign, event };
}

export interface CampaignTransition {
  campaignId: string;
  from: readonly CampaignState[];
  to: CampaignState;
  /** Why it paused: operator, canary_failed, failure_rate (only with `to: PAUSED`). */
  pauseReason?: string;
  eventData?: Record<string, unknown>;
}

const CAMPAIGN_EVENT = (from: CampaignState, to: CampaignState): CampaignEventType | undefined =>
  to === 'PAUSED'
    ? 'campaign.paused'
    : to === 'RUNNING' && from === 'PAUSED'
      ? 'campaign.resumed'
      : to === 'CANCELED'
        ? 'campaign.canceled'
        : to === 'COMPLETED'
          ? 'campaign.completed'
          : undefined;

/** One compare-and-set of the campaign's state plus its event; null when it is no longer in one of `from`. */
export async function transitionCampaign(tx: SqlClient, t: CampaignTransition): Promise<{ row: Campaign; from: CampaignState; event?: PublishedEvent } | null> {
  assertMove('campaign', CAMPAIGN_TRANSITIONS, t.from, t.to);
  const sets: Prisma.Sql[] = [Prisma.sql`"state" = ${t.to}::"CampaignState"`];
  sets.push(Prisma.sql`"pauseReason" = ${t.to === 'PAUSED' ? (t.pauseReason ?? 'operator') : null}::text`);
  if (t.to === 'COMPLETED' || t.to === 'CANCELED') sets.push(Prisma.sql`"completedAt" = clock_timestamp()`);
  const written = await compareAndSetLifecycle<Campaign, CampaignState>(tx, 'Campaign', t.campaignId, t.from, sets);
  if (written === undefined) return null;
  const type = CAMPAIGN_EVENT(written.previous, t.to);
  const event =
    type === undefined || written.previous === t.to
      ? undefined
      : await publish(tx, written.row, type, { ...(t.to === 'PAUSED' && { reason: t.pauseReason ?? 'operator' }), ...t.eventData });
  return { row: written.row, from: written.previous, event };
}

export interface WaveTransition {
  waveId: string;
  from: readonly CampaignWaveState[];
  to: CampaignWaveState;
  /** Counts of the wave for the event (per target state). */
  eventData?: Record<string, unknown>;
}

const WAVE_EVENT: Readonly<Record<CampaignWaveState, CampaignEventType | undefined>> = {
  PENDING: undefined,
  RUNNING: 'campaign.wave_started',
  PASSED: 'campaign.wave_completed',
  HALTED: 'campaign.wave_halted',
};

export async function transitionWave(tx: SqlClient, t: WaveTransition): Promise<{ row: CampaignWave; from: CampaignWaveState } | null> {
  assertMove('campaign wave', WAVE_TRANSITIONS, t.from, t.to);
  const sets: Prisma.Sql[] = [Prisma.sql`"state" = ${t.to}::"CampaignWaveState"`];
  if (t.to === 'RUNNING') sets.push(Prisma.sql`"startedAt" = COALESCE("startedAt", clock_timestamp())`);
  if (t.to === 'PASSED' || t.to === 'HALTED') sets.push(Prisma.sql`"completedAt" = clock_timestamp()`);
  const written = await compareAndSetLifecycle<CampaignWave, CampaignWaveState>(tx, 'CampaignWave', t.waveId, t.from, sets);
  if (written === undefined) return null;
  const type = WAVE_EVENT[t.to];
  if (type !== undefined && written.previous !== t.to) {
    const campaign = { id: written.row.campaignId, tenantId: written.row.tenantId };
    await publish(tx, campaign, type, { wave: written.row.index, canary: written.row.canary, size: written.row.size, ...t.eventData });
  }
  return { row: written.row, from: written.previous };
}

/** Columns a target change may set besides `state`. */
export interface TargetColumns {
  answer?: Prisma.InputJsonValue | null;
  lastError?: string | null;
  nextAttemptAt?: Date | null;
  operationId?: string | null;
  reason?: string | null;
}

export interface TargetTransition {
  targetId: string;
  from: readonly CampaignTargetState[];
  to: CampaignTargetState;
  set?: TargetColumns;
  /** `attempts + 1` (a new operation for this target). */
  countAttempt?: boolean;
}

const FINAL_TARGET: ReadonlySet<CampaignTargetState> = new Set(['SUCCEEDED', 'FAILED', 'SKIPPED']);

/** One compare-and-set of a target's state (no event: progress is counted, and published per wave). */
export async function transitionTarget(tx: SqlClient, t: TargetTransition): Promise<{ row: CampaignTarget; from: CampaignTargetState } | null> {
  assertMove('campaign target', TARGET_TRANSITIONS, t.from, t.to);
  const sets: Prisma.Sql[] = [Prisma.sql`"state" = ${t.to}::"CampaignTargetState"`];
  const set = t.set ?? {};
  if (set.answer !== undefined) sets.push(Prisma.sql`"answer" = ${set.answer === null ? null : JSON.stringify(set.answer)}::jsonb`);
  if (set.lastError !== undefined) sets.push(Prisma.sql`"lastError" = ${set.lastError}::text`);
  if (set.nextAttemptAt !== undefined) sets.push(Prisma.sql`"nextAttemptAt" = ${set.nextAttemptAt}::timestamptz`);
  if (set.operationId !== undefined) sets.push(Prisma.sql`"operationId" = ${set.operationId}::uuid`);
  if (set.reason !== undefined) sets.push(Prisma.sql`"reason" = ${set.reason}::text`);
  if (t.countAttempt) sets.push(Prisma.sql`"attempts" = "attempts" + 1`);
  if (t.to === 'RUNNING') sets.push(Prisma.sql`"startedAt" = COALESCE("startedAt", clock_timestamp())`);
  if (FINAL_TARGET.has(t.to)) sets.push(Prisma.sql`"completedAt" = clock_timestamp()`);
  const written = await compareAndSetLifecycle<CampaignTarget, CampaignTargetState>(tx, 'CampaignTarget', t.targetId, t.from, sets);
  return written === undefined ? null : { row: written.row, from: written.previous };
}

/** Ends every open (PENDING / RETRYING) target of a campaign as SKIPPED with `reason`; returns how many. */
export async function skipOpenTargets(tx: SqlClient, campaignId: string, reason: string): Promise<number> {
  const from: CampaignTargetState[] = ['PENDING', 'RETRYING'];
  assertMove('campaign target', TARGET_TRANSITIONS, from, 'SKIPPED');
  return tx.$executeRaw`
    UPDATE "CampaignTarget" SET "state" = 'SKIPPED', "reason" = ${reason}, "completedAt" = clock_timestamp(), "updatedAt" = clock_timestamp()
    WHERE "campaignId" = ${campaignId}::uuid AND "state" = ANY(${from}::"CampaignTargetState"[])`;
}

function publish(tx: SqlClient, campaign: { id: string; tenantId: string }, type: CampaignEventType, data: Record<string, unknown>) {
  return publishEvent(tx, campaign.tenantId, { type, subjectType: 'campaign', subjectId: campaign.id, data: { campaignId: campaign.id, ...data } });
}
