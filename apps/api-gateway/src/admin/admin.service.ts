import { randomUUID } from 'node:crypto';

import { Database, type DatabaseOptions, type PrismaClient, publishEvent, type TransactionClient } from '@payorch/db';
import { ApiError, isKeyScope, isUuid, issueToken, KEY_SCOPES, PayorchError, SecretBox, TOKEN_KINDS } from '@payorch/domain';
import { terminalCredentialsAad } from '@payorch/drivers';
import { EGRESS_CHANNELS, type EgressChannel, normaliseGrant } from '@payorch/egress-guard';
import { assistMerchantAad } from '@payorch/wallet-payments';

import { KEYSET_ORDER, keysetPage, type Page } from '../common/pagination';

/** How much of a failed job's reason its `job.retry` audit row keeps (an error message; it says why, not what). */
const FAILED_REASON_MAX = 1_000;

/**
 * How many secrets `secrets rewrap` re-seals in one transaction, committed with their `secrets.rewrap.batch` audit row
 * (the next rows of one table, id order): few enough that the rows it locks are held for milliseconds.
 */
const REWRAP_BATCH = 100;

const GRANT_CHANNEL = { assist: 'ASSIST', relay: 'RELAY', webhook: 'WEBHOOK' } as const satisfies Record<EgressChannel, string>;

function toGrant(row: {
  id: string;
  tenantId: string;
  channel: string;
  cidr: string;
  port: number | null;
  description: string | null;
  createdAt: Date;
  createdBy: string;
}) {
  return {
    id: row.id,
    tenantId: row.tenantId,
    channel: row.channel.toLowerCase(),
    cidr: row.cidr,
    port: row.port,
    description: row.description,
    createdAt: row.createdAt.toISOString(),
    createdBy: row.createdBy,
  };
}

/**
 * What an operator action records (actor type "admin", actor `user@host`): ids, counts, key ids; never a secret, a key
 * or job data.
 */
export interface AdminAuditEntry {
  action: string;
  resourceType: string;
  resourceId: string;
  details?: Record<string, unknown>;
}

/** A row of an audit log as `audit list` prints it (the fields of `GET /v1/audit-log`'s entries, and the tenant). */
export interface AuditLogEntry {
  id: string;
  createdAt: string;
  tenantId: string | null;
  actorType: string;
  actorId: string | null;
  action: string;
  resourceType: string;
  resourceId: string | null;
  details: Record<string, unknown> | null;
  requestId: string | null;
}

/** One re-sealed table of `secrets rewrap`: the secrets it looked at, and those it moved to the active key. */
export interface RewrapCount {
  checked: number;
  rewrapped: number;
}

/**
 * What `secrets rewrap` did. Every secret it re-sealed is recorded by the `secrets.rewrap.batch` row committed with it.
 * `audit` (only when it re-sealed something): the run's `secrets.rewrap` summary row in the platform audit log
 * `written`, or `failed` (`auditError` says why: the secrets stay re-sealed, recorded by their batch rows only).
 * `stopped`: why it stopped before the last secret (one it could not open, a batch it could not write or audit); the
 * counts are those of the secrets before. `stoppedCode`: the code of that cause when it has one (SECRET_KEY_UNKNOWN,
 * SECRET_TAMPERED: a secret it could not open; AUDIT_FAILED: a batch whose `secrets.rewrap.batch` row was refused),
 * so the CLI tells them apart without reading `stopped`.
 */
export interface RewrapResult {
  activeKeyId: string;
  rewrapped: number;
  terminalCredentials: RewrapCount;
  assistMerchantSecrets: RewrapCount;
  stopped?: string;
  stoppedCode?: string;
  audit?: 'written' | 'failed';
  auditError?: string;
}

/** The code of a payorch error (SECRET_KEY_UNKNOWN, AUDIT_FAILED…); undefined for any other. */
const payorchCode = (error: unknown): string | undefined => (error instanceof PayorchError ? error.code : undefined);

/** `<code>: ` of a payorch error, to put before its reason; '' for any other. */
const codeOf = (error: unknown): string => {
  const code = payorchCode(error);
  return code === undefined ? '' : `${code}: `;
};

/** The error's own words: Prisma's message opens with the invocation, the driver's is on its `Message:` or last line. */
export function reasonOf(error: unknown): string {
  const message = error instanceof Error ? error.message : String(error);
  return /Message: `(.+)`/.exec(message)?.[1] ?? message.trim().split('\n').at(-1) ?? message;
}

/**
 * Operator actions. Runs as the owner role (DATABASE_URL), which is not subject to RLS, so every
 * method names its tenant explicitly.
 *
 * Every action that changes something writes one audit row, actor type "admin": in the log of the tenant it concerns,
 * or in the platform audit log (rows of no tenant, which only the owner role reads: docs/security.md) when it concerns
 * none. A change in PostgreSQL commits with its row (`changeAudited`): when the row cannot be written, nothing changes
 * and the action fails with AUDIT_FAILED (`secrets rewrap` commits each batch of secrets with its row). A change that
 * cannot share its row's transaction (a job moved back in Redis) and a row about a whole run (`secrets.rewrap`) are
 * written right after (`record`), and a row that cannot be written is reported with the result, for the CLI to exit 1
 * with AUDIT_FAILED.
 */
export class AdminService {
  /** The transactions of changes and their audit rows (their domain events go to `onCommitted`). */
  private readonly db: Database;

  constructor(
    private readonly prisma: PrismaClient,
    private readonly operator: string,
    /** Where committed domain events go (the CLI publishes them on Redis when REDIS_URL is set). */
    onCommitted?: DatabaseOptions['onCommitted'],
    /**
     * Announces that a tenant's API keys or status changed, after the change committed (the CLI publishes on
     * apiKeysChangedChannel when REDIS_URL is set: the gateways forget the tenant's keys at once; without it, after
     * their API_KEY_CACHE_MS).
     */
    private readonly onKeysChanged?: (tenantId: string) => Promise<void>,
  ) {
    this.db = new Database(prisma, { onCommitted });
  }

  async createTenant(name: string) {
    if (!name.trim()) throw new ApiError('VALIDATION_FAILED', 'name: must not be empty');
    const id = randomUUID();
    const tenant = await this.changeAudited(
      id,
      (tx) => tx.tenant.create({ data: { id, name: name.trim() } }),
      () => ({ action: 'tenant.create', resourceType: 'tenant', resourceId: id }),
    );
    return { id: tenant.id, name: tenant.name, createdAt: tenant.createdAt.toISOString() };
  }

  async listTenants() {
    const rows = await this.prisma.tenant.findMany({ orderBy: { createdAt: 'asc' } });
    return rows.map((t) => ({
      id: t.id,
      name: t.name,
      status: t.status,
      createdAt: t.createdAt.toISOString(),
      disabledAt: t.disabledAt?.toISOString() ?? null,
    }));
  }

  /**
   * Disables (or re-enables) a tenant. A DISABLED tenant's API keys, enrollment tokens and agent
   * credentials authenticate nothing (the SECURITY DEFINER lookups skip it), and every connector
   * closes its live tunnels with AGENT_REVOKED on the `tenant.disabled` event (or at its periodic
   * re-check when the event cannot be published). Its data stays, readable by the operator.
   */
  async setTenantStatus(id: string, status: 'ACTIVE' | 'DISABLED') {
    const tenant = await this.requireTenant(id);
    const row = await this.changeAudited(
      tenant.id,
      async (tx) => {
        const updated = await tx.tenant.update({ where: { id: tenant.id }, data: { status, disabledAt: status === 'DISABLED' ? new Date() : null } });
        await publishEvent(tx, tenant.id, {
          type: status === 'DISABLED' ? 'tenant.disabled' : 'tenant.enabled',
          subjectType: 'tenant',
          subjectId: tenant.id,
          data: { tenantId: tenant.id, status },
        });
        return updated;
      },
      () => ({ action: status === 'DISABLED' ? 'tenant.disable' : 'tenant.enable', resourceType: 'tenant', resourceId: tenant.id }),
    );
    await this.onKeysChanged?.(tenant.id);
    return { id: row.id, name: row.name, status: row.status, disabledAt: row.disabledAt?.toISOString() ?? null };
  }

  async createApiKey(input: { tenantId: string; name: string; scopes?: string[]; expiresInDays?: number }) {
    const tenant = await this.requireTenant(input.tenantId);
    // The first key of a tenant is an admin key; it creates the others through POST /v1/api-keys.
    const scopes = input.scopes?.length ? [...new Set(input.scopes)] : ['admin'];
    const unknown = scopes.filter((s) => !isKeyScope(s));
    if (unknown.length) {
      throw new ApiError('VALIDATION_FAILED', `scopes: unknown scope(s) ${unknown.join(', ')}; known: ${KEY_SCOPES.join(', ')}`);
    }
    const issued = issueToken(TOKEN_KINDS.apiKey);
    const expiresAt = input.expiresInDays ? new Date(Date.now() + input.expiresInDays * 86_400_000) : null;
    const key = await this.changeAudited(
      tenant.id,
      (tx) => tx.apiKey.create({ data: { tenantId: tenant.id, name: input.name, prefix: issued.prefix, hash: issued.hash, scopes, expiresAt } }),
      (created) => ({ action: 'api_key.create', resourceType: 'api_key', resourceId: created.id, details: { scopes } }),
    );
    return { id: key.id, tenantId: tenant.id, name: key.name, scopes, expiresAt: expiresAt?.toISOString() ?? null, apiKey: issued.token };
  }

  async listApiKeys(tenantId: string) {
    await this.requireTenant(tenantId);
    const rows = await this.prisma.apiKey.findMany({ where: { tenantId }, orderBy: { createdAt: 'asc' } });
    return rows.map((k) => ({
      id: k.id,
      name: k.name,
      prefix: k.prefix,
      scopes: k.scopes,
      createdAt: k.createdAt.toISOString(),
      lastUsedAt: k.lastUsedAt?.toISOString() ?? null,
      revokedAt: k.revokedAt?.toISOString() ?? null,
      expiresAt: k.expiresAt?.toISOString() ?? null,
    }));
  }

  async revokeApiKey(id: string) {
    if (!isUuid(id)) throw new ApiError('VALIDATION_FAILED', 'id: must be a UUID');
    const key = await this.prisma.apiKey.findUnique({ where: { id } });
    if (!key) throw new ApiError('NOT_FOUND', `API key ${id} was not found`);
    // Revoked once: a key revoked already (before, or by a concurrent run) keeps its time and gets no second row.
    const revokedAt = await this.changeAudited(
      key.tenantId,
      async (tx) => {
        const now = new Date();
        const { count } = await tx.apiKey.updateMany({ where: { id, revokedAt: null }, data: { revokedAt: now } });
        if (count === 1) return { revokedAt: now, changed: true };
        return { revokedAt: (await tx.apiKey.findUniqueOrThrow({ where: { id }, select: { revokedAt: true } })).revokedAt!, changed: false };
      },
      ({ changed }) => (changed ? { action: 'api_key.revoke', resourceType: 'api_key', resourceId: id } : null),
    );
    if (revokedAt.changed) await this.onKeysChanged?.(key.tenantId);
    return { id, revokedAt: revokedAt.revokedAt.toISOString() };
  }

  /**
   * Opens a special-purpose range (e.g. one chain's on-premises processing host `10.20.0.0/16`) to ONE tenant for ONE
   * channel — its webhooks, its Assist server URLs or its terminals' relay — optionally on one port only. Unlike
   * EGRESS_ALLOW_CIDRS, no other tenant and no other channel gains anything. Only the operator can: the application
   * role may read grants (each guard reads the tenant's own, under RLS) but not write them. Also open the range in
   * the NetworkPolicy of the service that dials it (deploy/README.md).
   */
  async createEgressGrant(input: { tenantId: string; channel: string; cidr: string; port?: number; description?: string }) {
    const tenant = await this.requireTenant(input.tenantId);
    const channel = input.channel.trim().toLowerCase() as EgressChannel;
    if (!EGRESS_CHANNELS.includes(channel)) {
      throw new ApiError('VALIDATION_FAILED', `channel: must be one of ${EGRESS_CHANNELS.join(', ')} (one channel per grant)`);
    }
    const grant = normaliseGrant({ cidr: input.cidr, port: input.port ?? null });
    if ('refused' in grant) throw new ApiError('VALIDATION_FAILED', `cidr: ${grant.refused}`);
    const row = await this.changeAudited(
      tenant.id,
      (tx) =>
        tx.egressGrant.create({
          data: {
            tenantId: tenant.id,
            channel: GRANT_CHANNEL[channel],
            cidr: grant.cidr,
            port: grant.port,
            description: input.description?.trim() || null,
            createdBy: this.operator,
          },
        }),
      (created) => ({
        action: 'egress_grant.create',
        resourceType: 'egress_grant',
        resourceId: created.id,
        details: { channel, cidr: created.cidr, port: created.port },
      }),
    );
    return toGrant(row);
  }

  async listEgressGrants(tenantId: string) {
    await this.requireTenant(tenantId);
    const rows = await this.prisma.egressGrant.findMany({ where: { tenantId }, orderBy: { createdAt: 'asc' } });
    return rows.map(toGrant);
  }

  /** Withdraws a grant: from the next decision on (each guard reads the grants per connection), the range is closed again. */
  async revokeEgressGrant(id: string) {
    if (!isUuid(id)) throw new ApiError('VALIDATION_FAILED', 'id: must be a UUID');
    const row = await this.prisma.egressGrant.findUnique({ where: { id } });
    if (!row) throw new ApiError('NOT_FOUND', `egress grant ${id} was not found`);
    await this.changeAudited(
      row.tenantId,
      (tx) => tx.egressGrant.delete({ where: { id } }),
      () => ({
        action: 'egress_grant.delete',
        resourceType: 'egress_grant',
        resourceId: id,
        details: { channel: row.channel.toLowerCase(), cidr: row.cidr, port: row.port },
      }),
    );
    return { ...toGrant(row), revoked: true };
  }

  /**
   * The audit row of a failed job the operator moved back to waiting (`jobs retry`, FailedJobs): `job.retry` on
   * resource `job` <job id>, with the queue, the job's name and why it failed; no other job data. In the log of the
   * tenant its data names; a deployment-wide job (no tenant: the sweeps) in the platform audit log, the rows of no
   * tenant, which only the owner role reads (docs/security.md). Written after the retry (a job found no longer failed
   * is not retried, so not audited).
   */
  async auditJobRetry(queue: string, job: { id: string; name: string; failedReason: string; tenantId?: string }) {
    const tenantId = job.tenantId === undefined ? null : (await this.requireTenant(job.tenantId)).id;
    const failedReason = job.failedReason.length > FAILED_REASON_MAX ? `${job.failedReason.slice(0, FAILED_REASON_MAX)}…` : job.failedReason;
    await this.record(tenantId, { action: 'job.retry', resourceType: 'job', resourceId: job.id, details: { queue, jobName: job.name, failedReason } });
  }

  /**
   * After PAYORCH_MASTER_KEY rotation: re-seals every secret still on an older key under the active
   * one (the old key must still be listed in PAYORCH_PREVIOUS_MASTER_KEYS while this runs). Each
   * envelope is opened first with its row's AAD, proving it is intact and bound to that row.
   *
   * Table by table, in id order, a batch of `batchSize` rows at a time: the batch's secrets are opened and re-sealed in
   * memory, then written back in ONE transaction with the batch's `secrets.rewrap.batch` row in the platform audit log
   * (`changeAudited`): both commit, or neither, so a run that dies at any point (killed, database gone) leaves no secret
   * re-sealed without its row. Each secret is written with its own compare-and-set (the envelope it read), so a secret
   * the tenant changes meanwhile (a terminal's new password, sealed by the gateway) is left as the gateway wrote it,
   * never overwritten with the old one; nor is it counted. The transaction holds only that batch's rows, for the
   * milliseconds of its updates (one transaction for the whole run would lock every terminal row while it lasts).
   *
   * It stops at the first secret it cannot open (`stopped`: its code, table and row id; a key missing from
   * PAYORCH_PREVIOUS_MASTER_KEYS, a tampered envelope), after committing the secrets of its batch before it; or at a
   * batch it cannot commit (a write or its audit row refused: `stopped` names the batch's first secret, `stoppedCode` is
   * AUDIT_FAILED for the row, and none of the batch is re-sealed). What it re-sealed before is kept.
   *
   * Rows (resource `master_key` <active key id>; key ids, counts and row ids only, never key material or envelopes):
   * each batch that re-sealed anything, `secrets.rewrap.batch` with the run's id, its index, table, id range (`fromId`,
   * `toId`: the rows it looked at), counts and the key ids it moved secrets from; then a run that re-sealed anything,
   * also when it stopped, writes the `secrets.rewrap` summary (`run`, `batches`, the counts per table, the key ids,
   * why it stopped). The summary is written after the run: one that cannot be written leaves the result
   * `audit: "failed"` with `auditError`, the secrets recorded by their batch rows.
   */
  async rewrapSecrets(box: SecretBox, batchSize = REWRAP_BATCH): Promise<RewrapResult> {
    const run = randomUUID();
    const fromKeyIds = new Set<string>();
    const counts: Record<'terminalCredentials' | 'assistMerchantSecrets', RewrapCount> = {
      terminalCredentials: { checked: 0, rewrapped: 0 },
      assistMerchantSecrets: { checked: 0, rewrapped: 0 },
    };
    let batches = 0;

    /**
     * Re-seals one table's secrets a batch at a time: `page` reads the next rows after an id, `save` writes one back in
     * the batch's transaction if it still holds the envelope read (1; 0: changed meanwhile, left as it is).
     */
    const rewrap = async (
      table: keyof typeof counts,
      what: string,
      page: (afterId: string | undefined) => Promise<{ id: string; tenantId: string; envelope: string }[]>,
      aad: (tenantId: string, id: string) => string,
      save: (tx: TransactionClient, id: string, read: string, envelope: string) => Promise<number>,
    ) => {
      const count = counts[table];
      let afterId: string | undefined;
      for (let rows = await page(afterId); rows.length > 0; rows = await page(afterId)) {
        afterId = rows.at(-1)!.id;
        /** The rows of this batch looked at (in id order), and the secrets among them to re-seal. */
        const looked: string[] = [];
        const resealed: { id: string; read: string; envelope: string; keyId: string }[] = [];
        let stop: RewrapStopped | undefined;
        for (const row of rows) {
          count.checked++;
          try {
            const keyId = box.keyIdOf(row.envelope);
            if (keyId !== box.activeKeyId) {
              box.decrypt(row.envelope, aad(row.tenantId, row.id));
              resealed.push({ id: row.id, read: row.envelope, envelope: box.rewrap(row.envelope), keyId });
            }
            looked.push(row.id);
          } catch (error) {
            stop = new RewrapStopped(`${what} ${row.id}: ${codeOf(error)}${reasonOf(error)}`, payorchCode(error));
            break;
          }
        }
        if (resealed.length > 0) {
          // The batch's updates and its audit row: both commit, or neither (the run stops there, none of it re-sealed).
          const written = await this.changeAudited(
            null,
            async (tx) => {
              const moved: typeof resealed = [];
              for (const secret of resealed) if ((await save(tx, secret.id, secret.read, secret.envelope)) > 0) moved.push(secret);
              return moved;
            },
            (moved) =>
              moved.length === 0
                ? null
                : {
                    action: 'secrets.rewrap.batch',
                    resourceType: 'master_key',
                    resourceId: box.activeKeyId,
                    details: {
                      run,
                      batch: batches + 1,
                      table,
                      fromId: looked[0],
                      toId: looked.at(-1),
                      checked: looked.length,
                      rewrapped: moved.length,
                      activeKeyId: box.activeKeyId,
                      fromKeyIds: [...new Set(moved.map((secret) => secret.keyId))].sort(),
                    },
                  },
          ).catch((error: unknown) => {
            throw new RewrapStopped(`${what} ${resealed[0]!.id}: ${codeOf(error)}${reasonOf(error)}`, payorchCode(error));
          });
          if (written.length > 0) batches++;
          count.rewrapped += written.length;
          for (const secret of written) fromKeyIds.add(secret.keyId);
        }
        if (stop) throw stop;
      }
    };

    let stopped: string | undefined;
    let stoppedCode: string | undefined;
    try {
      await rewrap(
        'terminalCredentials',
        'terminal',
        async (afterId) =>
          (
            await this.prisma.terminal.findMany({
              where: { credentialsEncrypted: { not: null }, ...(afterId && { id: { gt: afterId } }) },
              select: { id: true, tenantId: true, credentialsEncrypted: true },
              orderBy: { id: 'asc' },
              take: batchSize,
            })
          ).map((t) => ({ id: t.id, tenantId: t.tenantId, envelope: t.credentialsEncrypted! })),
        terminalCredentialsAad,
        async (tx, id, read, envelope) =>
          (await tx.terminal.updateMany({ where: { id, credentialsEncrypted: read }, data: { credentialsEncrypted: envelope } })).count,
      );
      await rewrap(
        'assistMerchantSecrets',
        'assist merchant',
        async (afterId) =>
          (
            await this.prisma.assistMerchant.findMany({
              where: afterId ? { id: { gt: afterId } } : {},
              select: { id: true, tenantId: true, secretsEncrypted: true },
              orderBy: { id: 'asc' },
              take: batchSize,
            })
          ).map((m) => ({ id: m.id, tenantId: m.tenantId, envelope: m.secretsEncrypted })),
        assistMerchantAad,
        async (tx, id, read, envelope) =>
          (await tx.assistMerchant.updateMany({ where: { id, secretsEncrypted: read }, data: { secretsEncrypted: envelope } })).count,
      );
    } catch (error) {
      stopped = error instanceof RewrapStopped ? error.message : `an error (${reasonOf(error)})`;
      stoppedCode = error instanceof RewrapStopped ? error.code : undefined;
    }

    const { terminalCredentials, assistMerchantSecrets } = counts;
    const rewrapped = terminalCredentials.rewrapped + assistMerchantSecrets.rewrapped;
    const result: RewrapResult = {
      activeKeyId: box.activeKeyId,
      rewrapped,
      terminalCredentials,
      assistMerchantSecrets,
      ...(stopped && { stopped }),
      ...(stoppedCode && { stoppedCode }),
    };
    if (rewrapped === 0) return result;
    const entry: AdminAuditEntry = {
      action: 'secrets.rewrap',
      resourceType: 'master_key',
      resourceId: box.activeKeyId,
      details: {
        run,
        batches,
        activeKeyId: box.activeKeyId,
        fromKeyIds: [...fromKeyIds].sort(),
        rewrapped,
        terminalCredentials,
        assistMerchantSecrets,
        ...(stopped && { stopped }),
      },
    };
    try {
      await this.record(null, entry);
      return { ...result, audit: 'written' };
    } catch (error) {
      return { ...result, audit: 'failed', auditError: reasonOf(error) };
    }
  }

  /**
   * A page of an audit log, newest first (keyset: `cursor` is the `nextCursor` of the page before): the platform's
   * (`'platform'`: the rows of no tenant) or one tenant's, optionally of one `action` and from `since` on.
   */
  async listAuditLog(
    log: 'platform' | { tenantId: string },
    query: { limit: number; cursor?: string; action?: string; since?: Date },
  ): Promise<Page<AuditLogEntry>> {
    const tenantId = log === 'platform' ? null : (await this.requireTenant(log.tenantId)).id;
    const filters = { tenantId, action: query.action, createdAt: query.since ? { gte: query.since } : undefined };
    return this.prisma.$transaction((tx) =>
      keysetPage(
        tx,
        'AuditLog',
        filters,
        { limit: query.limit, cursor: query.cursor },
        (ids) => tx.auditLog.findMany({ where: { id: { in: ids } }, orderBy: KEYSET_ORDER }),
        (row) => ({
          id: row.id,
          createdAt: row.createdAt.toISOString(),
          tenantId: row.tenantId,
          actorType: row.actorType,
          actorId: row.actorId,
          action: row.action,
          resourceType: row.resourceType,
          resourceId: row.resourceId,
          details: (row.details ?? null) as Record<string, unknown> | null,
          requestId: row.requestId,
        }),
      ),
    );
  }

  private async requireTenant(id: string) {
    if (!isUuid(id)) throw new ApiError('VALIDATION_FAILED', 'tenant: must be a UUID');
    const tenant = await this.prisma.tenant.findUnique({ where: { id } });
    if (!tenant) throw new ApiError('NOT_FOUND', `tenant ${id} was not found`);
    return tenant;
  }

  /**
   * A change in PostgreSQL and its audit row in one transaction (`tenantId`'s, whose domain events go to `onCommitted`;
   * or a plain one for the platform log, null): both commit, or neither. A row that cannot be written fails the action
   * with AUDIT_FAILED, and nothing changes.
   */
  private async changeAudited<T>(
    tenantId: string | null,
    change: (tx: TransactionClient) => Promise<T>,
    entryOf: (result: T) => AdminAuditEntry | null,
  ): Promise<T> {
    const inTransaction = async (tx: TransactionClient) => {
      const result = await change(tx);
      const entry = entryOf(result);
      // null: the change found nothing to change (a key revoked already): no row.
      if (entry === null) return result;
      await this.write(tx, tenantId, entry).catch((error: unknown) => {
        const log = tenantId === null ? 'the platform audit log' : `tenant ${tenantId}'s audit log`;
        throw new PayorchError('AUDIT_FAILED', `${entry.action} not done: its row could not be written to ${log} (${reasonOf(error)}); nothing was changed`);
      });
      return result;
    };
    return tenantId === null ? this.prisma.$transaction(inTransaction) : this.db.withTenant(tenantId, inTransaction);
  }

  /** The audit row of a change already made outside its transaction (`tenantId`'s log, or the platform's: null); throws when it cannot be written. */
  private async record(tenantId: string | null, entry: AdminAuditEntry): Promise<void> {
    await this.write(this.prisma, tenantId, entry);
  }

  private async write(client: TransactionClient, tenantId: string | null, entry: AdminAuditEntry): Promise<void> {
    await client.auditLog.create({
      data: {
        tenantId,
        actorType: 'admin',
        actorId: this.operator,
        action: entry.action,
        resourceType: entry.resourceType,
        resourceId: entry.resourceId,
        details: entry.details as never,
      },
    });
  }
}

/**
 * Ends a `secrets rewrap` run at a secret it could not open, or a batch it could not commit; the message names it (table,
 * row id, code), `code` is the cause's code (AUDIT_FAILED: the batch's row was refused), undefined when it has none.
 */
class RewrapStopped extends Error {
  constructor(
    message: string,
    readonly code: string | undefined,
  ) {
    super(message);
  }
}
