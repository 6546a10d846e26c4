import { Inject, Injectable } from '@nestjs/common';

import type { GatewayConfig } from '@payorch/config';
import { ApiError } from '@payorch/domain';
import { EgressError, EgressPolicy, NAME_REFUSED, parseAddressLiteral, type Resolver, resolveDestination } from '@payorch/egress-guard';

import { EGRESS_RESOLVER, GATEWAY_CONFIG } from './tokens';

/**
 * The platform egress policy (docs/security.md) applied where tenants name destinations: relay
 * egress rules, webhook URLs and Assist server URLs are refused at creation with `EGRESS_DENIED`
 * (400) and a reason; the connector and the worker apply the same policy again on the address they
 * actually dial.
 */
@Injectable()
export class DestinationGuard {
  readonly policy: EgressPolicy;
  private readonly allowHttp: boolean;

  constructor(
    @Inject(GATEWAY_CONFIG) config: GatewayConfig,
    @Inject(EGRESS_RESOLVER) private readonly resolver: Resolver,
  ) {
    this.policy = EgressPolicy.fromList(config.EGRESS_ALLOW_CIDRS);
    this.allowHttp = config.WEBHOOK_ALLOW_HTTP;
  }

  /** A relay egress rule: not wider than the policy, no denied range or host. */
  assertRule(rule: { host?: string | null; cidr?: string | null }): void {
    const refusal = rule.cidr ? this.policy.refuseCidr(rule.cidr) : rule.host ? this.policy.refuseHost(rule.host) : null;
    if (refusal) {
      const field = rule.cidr ? 'cidr' : 'host';
      throw new ApiError('EGRESS_DENIED', refusal.message, { field, reason: refusal.reason, category: 'category' in refusal ? refusal.category : null });
    }
  }

  /**
   * A URL the platform will POST to: `https` (plain `http` only when the operator allows it, or
   * `allowLoopbackHttp` for a loopback address the operator allows), host resolved now and every
   * address checked. Delivery checks again on every attempt (DNS may change).
   */
  async assertUrl(field: string, value: string, options: { allowHttp?: boolean } = {}): Promise<void> {
    const url = new URL(value);
    const allowHttp = options.allowHttp ?? this.allowHttp;
    if (url.protocol !== 'https:' && !(url.protocol === 'http:' && allowHttp)) {
      throw new ApiError('EGRESS_DENIED', `${field} must use https`, { field, reason: 'https_required', category: null });
    }
    try {
      await resolveDestination(url.hostname, this.policy, { resolver: this.resolver, timeoutMs: 5000 });
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
