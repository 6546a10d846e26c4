import { type EgressPolicy, formatAddress, type IpAddress, normaliseHostName, parseAddressLiteral, parseCidr } from '@payorch/egress-guard';

/** An EgressRule row: `host` (DNS name or IP literal) or `cidr`, and a port. */
export interface EgressRuleLike {
  cidr: string | null;
  host: string | null;
  port: number;
}

export type EgressDecision = { allowed: true; rule: EgressRuleLike } | { allowed: false; reason: string };

function inCidr(address: IpAddress, cidr: string): boolean {
  const parsed = parseCidr(cidr);
  return Boolean(parsed && address.kind() === parsed.network.kind() && address.match(parsed.network, parsed.bits));
}

function sameAddress(a: IpAddress | null, b: IpAddress | null): boolean {
  return Boolean(a && b && formatAddress(a) === formatAddress(b));
}

function hostMatches(ruleHost: string, requestedHost: string): boolean {
  const literal = parseAddressLiteral(ruleHost);
  const requestedAddress = parseAddressLiteral(requestedHost);
  if (literal || requestedAddress) return sameAddress(literal, requestedAddress);
  const host = normaliseHostName(requestedHost);
  const rule = normaliseHostName(ruleHost);
  // `*.example.com` matches any sub-domain (not the apex).
  return rule.startsWith('*.') ? host.endsWith(rule.slice(1)) && host.length > rule.length - 1 : host === rule;
}

/** Whether the rule names this exact address (an IP `host`, or a CIDR containing it). */
function namesAddress(rule: EgressRuleLike, address: IpAddress): boolean {
  if (rule.cidr) return inCidr(address, rule.cidr);
  return sameAddress(rule.host ? parseAddressLiteral(rule.host) : null, address);
}

/**
 * Before any DNS lookup: could a rule of this port allow `requestedHost` at all (a host rule matching
 * the name, or a CIDR rule that the resolved address might fall in)? A terminal cannot make the
 * platform resolve names the tenant never allowed.
 */
export function precheckEgress(rules: readonly EgressRuleLike[], requestedHost: string, port: number): EgressDecision {
  const candidates = rules.filter((rule) => rule.port === port);
  if (candidates.length === 0) return { allowed: false, reason: `no egress rule for port ${port}` };
  const match = candidates.find((rule) => rule.cidr !== null || (rule.host !== null && hostMatches(rule.host, requestedHost)));
  return match ? { allowed: true, rule: match } : { allowed: false, reason: `${requestedHost}:${port} matches no egress rule` };
}

/**
 * The egress decision for a relay to `requestedHost:port` whose name resolved (once) to `resolved`,
 * the address about to be dialled (docs/relay.md, docs/security.md):
 *  0. the platform policy decides first: a special-purpose address (loopback, private, link-local,
 *     metadata, …) the operator did not allow — in EGRESS_ALLOW_CIDRS, or in a relay grant to this
 *     tenant (`policy.withGrants`), on this port — is denied whatever the tenant's rules say;
 *  1. a rule with the same port must match: its `host` equals the requested host (or `*.suffix`),
 *     or its `cidr` contains the resolved address;
 *  2. an operator-allowed (or granted) internal address also needs a rule of that port naming the address itself
 *     (IP host or CIDR): a DNS name allowed by host can never be rebound to an internal address.
 */
export function checkEgress(policy: EgressPolicy, rules: readonly EgressRuleLike[], requestedHost: string, port: number, resolved: string): EgressDecision {
  const address = parseAddressLiteral(resolved);
  if (!address) return { allowed: false, reason: `unusable resolved address ${resolved}` };
  const platform = policy.checkAddress(address, port);
  if (!platform.allowed)
    return { allowed: false, reason: `${requestedHost} → ${platform.address} is ${platform.category} address space, denied by the platform egress policy` };
  const candidates = rules.filter((rule) => rule.port === port);
  if (candidates.length === 0) return { allowed: false, reason: `no egress rule for port ${port}` };
  const match = candidates.find((rule) => (rule.host !== null && hostMatches(rule.host, requestedHost)) || (rule.cidr !== null && inCidr(address, rule.cidr)));
  if (!match) return { allowed: false, reason: `${requestedHost}:${port} matches no egress rule` };
  if (platform.by !== 'public' && !candidates.some((rule) => namesAddress(rule, address))) {
    return {
      allowed: false,
      reason: `${requestedHost} resolved to ${platform.category} address ${platform.address}, which a rule must name explicitly (IP host or CIDR)`,
    };
  }
  return { allowed: true, rule: match };
}
