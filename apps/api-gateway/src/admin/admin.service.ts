import { Database, type DatabaseOptions, type PrismaClient, publishEvent } from '@payorch/db';
import { ApiError, isKeyScope, isUuid, issueToken, KEY_SCOPES, SecretBox, TOKEN_KINDS } from '@payorch/domain';
import { terminalCredentialsAad } from '@payorch/drivers';
import { EGRESS_CHANNELS, type EgressChannel, normaliseGrant } from '@payorch/egress-guard';
import { assistMerchantAad } from '@payorch/wallet-payments';

/** How much of a failed job's reason its `job.retry` audit row keeps (an error message; it says why, not what). */
const FAILED_REASON_MAX = 1_000;

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
 * Operator actions. Runs as the owner role (DATABASE_URL), which is not subject to RLS, so every
 * method names its tenant explicitly and writes an audit row with actor type "admin".
 */
export class AdminService {
  constructor(
    private readonly prisma: PrismaClient,
    private readonly operator: string,
    /** Where committed domain events go (the CLI publishes them on Redis when REDIS_URL is set). */
    private readonly onCommitted?: DatabaseOptions['onCommitted'],
    /**
     * Announces that a tenant's API keys or status changed, after the change committed (the CLI publishes on
     * apiKeysChangedChannel when REDIS_URL is set: the gateways forget the tenant's keys at once; without it, after
     * their API_KEY_CACHE_MS).
     */
    private readonly onKeysChanged?: (tenantId: string) => Promise<void>,
  ) {}

  async createTenant(name: string) {
    if (!name.trim()) throw new ApiError('VALIDATION_FAILED', 'name: must not be empty');
    const tenant = await this.prisma.tenant.create({ data: { name: name.trim() } });
    await this.audit(tenant.id, 'tenant.create', 'tenant', tenant.id);
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
    const db = new Database(this.prisma, { onCommitted: this.onCommitted });
    const row = await db.withTenant(tenant.id, async (tx) => {
      const updated = await tx.tenant.update({ where: { id: tenant.id }, data: { status, disabledAt: status === 'DISABLED' ? new Date() : null } });
      await tx.auditLog.create({
        data: {
          tenantId: tenant.id,
          actorType: 'admin',
          actorId: this.operator,
          action: status === 'DISABLED' ? 'tenant.disable' : 'tenant.enable',
          resourceType: 'tenant',
          resourceId: tenant.id,
        },
      });
      await publishEvent(tx, tenant.id, {
        type: status === 'DISABLED' ? 'tenant.disabled' : 'tenant.enabled',
        subjectType: 'tenant',
        subjectId: tenant.id,
        data: { tenantId: tenant.id, status },
      });
      return updated;
    });
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
    const key = await this.prisma.apiKey.create({
      data: { tenantId: tenant.id, name: input.name, prefix: issued.prefix, hash: issued.hash, scopes, expiresAt },
    });
    await this.audit(tenant.id, 'api_key.create', 'api_key', key.id, { scopes });
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
    const revokedAt = key.revokedAt ?? new Date();
    await this.prisma.apiKey.update({ where: { id }, data: { revokedAt } });
    await this.onKeysChanged?.(key.tenantId);
    await this.audit(key.tenantId, 'api_key.revoke', 'api_key', id);
    return { id, revokedAt: revokedAt.toISOString() };
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
    const row = await this.prisma.egressGrant.create({
      data: {
        tenantId: tenant.id,
        channel: GRANT_CHANNEL[channel],
        cidr: grant.cidr,
        port: grant.port,
        description: input.description?.trim() || null,
        createdBy: this.operator,
      },
    });
    await this.audit(tenant.id, 'egress_grant.create', 'egress_grant', row.id, { channel, cidr: row.cidr, port: row.port });
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
    await this.prisma.egressGrant.delete({ where: { id } });
    await this.audit(row.tenantId, 'egress_grant.delete', 'egress_grant', id, { channel: row.channel.toLowerCase(), cidr: row.cidr, port: row.port });
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
    await this.audit(tenantId, 'job.retry', 'job', job.id, { queue, jobName: job.name, failedReason });
  }

  /**
   * After PAYORCH_MASTER_KEY rotation: re-seals every secret still on an older key under the active
   * one (the old key must still be listed in PAYORCH_PREVIOUS_MASTER_KEYS while this runs). Each
   * envelope is opened first with its row's AAD, proving it is intact and bound to that row.
   */
  async rewrapSecrets(box: SecretBox) {
    const rewrap = async (
      rows: { id: string; tenantId: string; envelope: string | null }[],
      aad: (tenantId: string, id: string) => string,
      save: (id: string, envelope: string) => Promise<unknown>,
    ) => {
      let rewrapped = 0;
      for (const row of rows) {
        if (!row.envelope || box.keyIdOf(row.envelope) === box.activeKeyId) continue;
        box.decrypt(row.envelope, aad(row.tenantId, row.id));
        await save(row.id, box.rewrap(row.envelope));
        rewrapped++;
      }
      return { checked: rows.length, rewrapped };
    };

    const terminals = await this.prisma.terminal.findMany({ select: { id: true, tenantId: true, credentialsEncrypted: true } });
    const terminalCredentials = await rewrap(
      terminals.map((t) => ({ id: t.id, tenantId: t.tenantId, envelope: t.credentialsEncrypted })),
      terminalCredentialsAad,
      (id, envelope) => this.prisma.terminal.update({ where: { id }, data: { credentialsEncrypted: envelope } }),
    );
    const merchants = await this.prisma.assistMerchant.findMany({ select: { id: true, tenantId: true, secretsEncrypted: true } });
    const assistMerchantSecrets = await rewrap(
      merchants.map((m) => ({ id: m.id, tenantId: m.tenantId, envelope: m.secretsEncrypted })),
      assistMerchantAad,
      (id, envelope) => this.prisma.assistMerchant.update({ where: { id }, data: { secretsEncrypted: envelope } }),
    );
    const rewrapped = terminalCredentials.rewrapped + assistMerchantSecrets.rewrapped;
    return { activeKeyId: box.activeKeyId, rewrapped, terminalCredentials, assistMerchantSecrets };
  }

  private async requireTenant(id: string) {
    if (!isUuid(id)) throw new ApiError('VALIDATION_FAILED', 'tenant: must be a UUID');
    const tenant = await this.prisma.tenant.findUnique({ where: { id } });
    if (!tenant) throw new ApiError('NOT_FOUND', `tenant ${id} was not found`);
    return tenant;
  }

  /** An audit row of the operator: in `tenantId`'s log, or the platform's (null: an action that concerns no tenant). */
  private async audit(tenantId: string | null, action: string, resourceType: string, resourceId: string, details?: object) {
    await this.prisma.auditLog.create({
      data: { tenantId, action, resourceType, resourceId, actorType: 'admin', actorId: this.operator, details: details as never },
    });
  }
}
