import { isIP } from 'node:net';

import ipaddr from 'ipaddr.js';

/** An EgressRule row: `host` (DNS name or IP literal) or `cidr`, and a port. */
export interface EgressRuleLike {
  cidr: string | null;
  host: string | null;
  port: number;
}

export type EgressDecision = { allowed: true; rule: EgressRuleLike } | { allowed: false; reason: string };

/** Normalises an IP literal (IPv4-mapped IPv6 → IPv4), or returns null for a DNS name. */
export function normaliseAddress(value: string): ipaddr.IPv4 | ipaddr.IPv6 | null {
  const bare = value.replace(/^\[|\]$/g, '');
  if (isIP(bare) === 0) return null;
  return ipaddr.process(bare);
}

/** `public` for global unicast; otherwise ipaddr's range name (private, loopback, linkLocal, uniqueLocal…). */
export function addressClass(address: ipaddr.IPv4 | ipaddr.IPv6): string {
  const range = address.range();
  return range === 'unicast' ? 'public' : range;
}

function inCidr(address: ipaddr.IPv4 | ipaddr.IPv6, cidr: string): boolean {
  try {
    const [network, bits] = ipaddr.parseCIDR(cidr);
    return address.kind() === network.kind() && address.match(network, bits);
  } catch {
    return false;
  }
}

function hostMatches(ruleHost: string, requestedHost: string, requestedAddress: ipaddr.IPv4 | ipaddr.IPv6 | null): boolean {
  const literal = normaliseAddress(ruleHost);
  if (literal || requestedAddress) return Boolean(literal && requestedAddress && literal.toString() === requestedAddress.toString());
  const host = requestedHost.toLowerCase().replace(/\.$/, '');
  const rule = ruleHost.toLowerCase().replace(/\.$/, '');
  // `*.example.com` matches any sub-domain (not the apex).
  return rule.startsWith('*.') ? host.endsWith(rule.slice(1)) && host.length > rule.length - 1 : host === rule;
}

/** Whether the rule names this exact address (an IP `host`, or a CIDR containing it). */
function namesAddress(rule: EgressRuleLike, address: ipaddr.IPv4 | ipaddr.IPv6): boolean {
  if (rule.cidr) return inCidr(address, rule.cidr);
  const literal = rule.host ? normaliseAddress(rule.host) : null;
  return Boolean(literal && literal.toString() === address.toString());
}

/**
 * The egress decision for a relay to `requestedHost:port` whose name resolved (once) to `resolved`
 * (docs/relay.md):
 *  1. a rule with the same port must match: its `host` equals the requested host (or `*.suffix`),
 *     or its `cidr` contains the resolved address;
 *  2. a resolved address that is not global unicast (loopback, private, link-local, unique-local,
 *     CGNAT, multicast, unspecified…) is denied unless a rule of that port names the address itself
 *     (IP host or CIDR): a DNS name allowed by host can never be rebound to an internal address.
 */
export function checkEgress(rules: readonly EgressRuleLike[], requestedHost: string, port: number, resolved: string): EgressDecision {
  const address = normaliseAddress(resolved);
  if (!address) return { allowed: false, reason: `unusable resolved address ${resolved}` };
  const requestedAddress = normaliseAddress(requestedHost);
  const candidates = rules.filter((rule) => rule.port === port);
  if (candidates.length === 0) return { allowed: false, reason: `no egress rule for port ${port}` };
  const match = candidates.find(
    (rule) => (rule.host !== null && hostMatches(rule.host, requestedHost, requestedAddress)) || (rule.cidr !== null && inCidr(address, rule.cidr)),
  );
  if (!match) return { allowed: false, reason: `${requestedHost}:${port} matches no egress rule` };
  const kind = addressClass(address);
  if (kind !== 'public' && !candidates.some((rule) => namesAddress(rule, address))) {
    return { allowed: false, reason: `${requestedHost} resolved to ${kind} address ${address.toString()}, not explicitly allowed` };
  }
  return { allowed: true, rule: match };
}
