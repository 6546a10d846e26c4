import { Inject, Injectable } from '@nestjs/common';

import type { GatewayConfig } from '@payorch/config';
import type { Database, TransactionClient } from '@payorch/db';
import { ApiError, type TenantContext } from '@payorch/domain';
import { type EgressChannel, EgressError, EgressPolicy, NAME_REFUSED, parseAddressLiteral, type Resolver, resolveDestination } from '@payorch/egress-guard';

import { DATABASE, EGRESS_RESOLVER, GATEWAY_CONFIG } from './tokens';

/** The EgressGrant channel of each egress channel. */
const GRANT_CHANNEL = { assist: 'ASSIST', relay: 'RELAY', webhook: 'WEBHOOK' } as const satisfies Record<EgressChannel, string>;

/** Whose destination is checked, and for which channel: the operator's grants to that tenant for that channel apply. */
export interface DestinationOwner {
  tenant: TenantContext | string;
  channel: EgressChannel;
  /** The tenant's open transaction, when the check runs inside one (the grants are read in it). */
  tx?: TransactionClient;
}

/**
 * The platform egress policy (docs/security.md) applied where tenants name destinations: relay
 * egress rules, webhook URLs and Assist server URLs are refused at creation with `EGRESS_DENIED`
 * (400) and a reason; the connector and the worker apply the same policy again on the address they
 * actually dial. Each check is for one tenant and one channel: EGRESS_ALLOW_CIDRS plus the ranges the
 * operator granted that tenant for that channel (EgressGrant, read under row-level security).
 */
@Injectable()
export class DestinationGuard {
  /** EGRESS_ALLOW_CIDRS alone (open to every tenant and channel); `policyFor` adds a tenant's grants. */
  readonly policy: EgressPolicy;
  private readonly allowHttp: boolean;

  constructor(
    @Inject(GATEWAY_CONFIG) config: GatewayConfig,
    @Inject(EGRESS_RESOLVER) private readonly resolver: Resolver,
    @Inject(DATABASE) private readonly db: Database,
  ) {
    this.policy = EgressPolicy.fromList(config.EGRESS_ALLOW_CIDRS);
    this.allowHttp = config.WEBHOOK_ALLOW_HTTP;
  }

  /** The policy for one tenant's connections through one channel: EGRESS_ALLOW_CIDRS plus that tenant's grants for it. */
  async policyFor(tenant: TenantContext | string, channel: EgressChannel, tx?: TransactionClient): Promise<EgressPolicy> {
    const read = (t: TransactionClient) => t.egressGrant.findMany({ where: { channel: GRANT_CHANNEL[channel] }, select: { cidr: true, port: true } });
    const grants = tx ? await read(tx) : await this.db.withTenant(tenant, read);
    return this.policy.withGrants(grants);
  }

  /** A relay egress rule of `owner`'s tenant: not wider than the policy (with its relay grants), no denied range or host. */
  async assertRule(rule: { host?: string | null; cidr?: string | null; port?: number }, owner: Omit<DestinationOwner, 'channel'>): Promise<void> {
    const policy = await this.policyFor(owner.tenant, 'relay', owner.tx);
    const refusal = rule.cidr ? policy.refuseCidr(rule.cidr, rule.port) : rule.host ? policy.refuseHost(rule.host, rule.port) : null;
    if (refusal) {
      const field = rule.cidr ? 'cidr' : 'host';
      throw new ApiError('EGRESS_DENIED', refusal.message, { field, reason: refusal.reason, category: 'category' in refusal ? refusal.category : null });
    }
  }

  /**
   * A URL the platform will POST to for `owner` (its tenant and channel): `https` (plain `http` only
   * when the operator allows it, or `allowLoopbackHttp` for a loopback address the operator allows),
   * host resolved now and every address checked. Delivery checks again on every attempt (DNS may change).
   */
  async assertUrl(field: string, value: string, owner: DestinationOwner, options: { allowHttp?: boolean } = {}): Promise<void> {
    const url = new URL(value);
    const allowHttp = options.allowHttp ?? this.allowHttp;
    if (url.protocol !== 'https:' && !(url.protocol === 'http:' && allowHttp)) {
      throw new ApiError('EGRESS_DENIED', `${field} must use https`, { field, reason: 'https_required', category: null });
    }
    const policy = await this.policyFor(owner.tenant, owner.channel, owner.tx);
    const tenantId = typeof owner.tenant === 'string' ? owner.tenant : owner.tenant.tenantId;
    const port = url.port ? Number(url.port) : url.protocol === 'https:' ? 443 : 80;
    try {
      await resolveDestination(url.hostname, policy, { resolver: this.resolver, timeoutMs: 5000, owner: tenantId, port });
    } catch (error) {
      if (!(error instanceof EgressError)) throw error;
      // A name reads the same whether it did not resolve or resolved to a denied address: the answer must not tell a
      // tenant which internal names exist (`https://postgres.….svc.cluster.local/` was "private address space", a missing
      // name "does not resolve"). An address literal is the tenant's own spelling: its category is shown.
      if (parseAddressLiteral(url.hostname) === null) {
        throw new ApiError('EGRESS_DENIED', `${field}: ${url.hostname} ${NAME_REFUSED.replace(/^host /, '')}`, {
          field,
          reason: 'denied_host',
          category: null,
        });
      }
      throw new ApiError('EGRESS_DENIED', `${field}: ${url.hostname} is ${error.details.category} address space, which the platform's egress policy denies`, {
        field,
        reason: 'denied_host',
        category: error.details.category ?? null,
      });
    }
  }
}
