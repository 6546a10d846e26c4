import { type AddressCategory, classifyAddress, formatAddress, inRange, type IpAddress, parseAddressLiteral, parseCidr, SPECIAL_RANGES } from './address';

export type AddressDecision =
  | { allowed: true; address: string; by: 'public' }
  | { allowed: true; address: string; by: 'operator'; category: AddressCategory }
  | { allowed: false; address: string; category: AddressCategory };

/** Why a tenant's egress destination (relay rule, webhook URL…) is refused at creation. */
export type DestinationRefusal =
  | { reason: 'too_wide'; message: string }
  | { reason: 'denied_range'; category: AddressCategory; message: string }
  | { reason: 'denied_host'; category: AddressCategory; message: string };

/** Shortest prefix a tenant may name in a CIDR rule: an IPv4 /8, an IPv6 /32. */
const MIN_PREFIX = { ipv4: 8, ipv6: 32 } as const;

export interface OperatorAllowance {
  readonly network: IpAddress;
  readonly bits: number;
  readonly text: string;
}

/**
 * The platform's egress policy: the one check above every tenant rule, for every connection the
 * platform opens on a tenant's behalf (Joinproto relay, webhooks, Assist). Ordinary global unicast
 * addresses pass; every special-purpose address (loopback, RFC 1918, CGNAT, link-local and cloud
 * metadata, multicast, reserved, NAT64, ULA, …; `SPECIAL_RANGES`) is denied unless the operator
 * listed a range containing it (`EGRESS_ALLOW_CIDRS`, e.g. an on-premises processing host).
 * Tenants cannot change it.
 */
export class EgressPolicy {
  private constructor(readonly allowances: readonly OperatorAllowance[]) {}

  /** The default: nothing special-purpose is reachable. */
  static strict(): EgressPolicy {
    return new EgressPolicy([]);
  }

  /** From the operator's list (comma or whitespace separated CIDRs or addresses); throws naming a bad entry. */
  static fromList(list: string | readonly string[]): EgressPolicy {
    const entries = (typeof list === 'string' ? list.split(/[\s,]+/) : list).map((e) => e.trim()).filter(Boolean);
    const allowances = entries.map((entry) => {
      const cidr = parseCidr(entry);
      if (!cidr) throw new Error(`egress policy: "${entry}" is not a CIDR or IP address`);
      return cidr;
    });
    return new EgressPolicy(allowances);
  }

  /** The decision for the address a socket is about to connect to. */
  checkAddress(address: IpAddress): AddressDecision {
    const text = formatAddress(address);
    const category = classifyAddress(address);
    if (category === null) return { allowed: true, address: text, by: 'public' };
    if (this.allowances.some((a) => inRange(address, a.network, a.bits))) return { allowed: true, address: text, by: 'operator', category };
    return { allowed: false, address: text, category };
  }

  /** Whether the whole network lies inside one operator allowance. */
  private allowsNetwork(network: IpAddress, bits: number): boolean {
    return this.allowances.some((a) => a.bits <= bits && inRange(network, a.network, a.bits));
  }

  /**
   * Validates a tenant's CIDR rule against the policy: not wider than /8 (IPv4) or /32 (IPv6), and
   * overlapping no denied range unless the operator allows all of it. Null when acceptable.
   */
  refuseCidr(value: string): DestinationRefusal | null {
    const cidr = parseCidr(value);
    if (!cidr) return { reason: 'too_wide', message: `${value} is not a CIDR` };
    const kind = cidr.network.kind() as 'ipv4' | 'ipv6';
    if (cidr.bits < MIN_PREFIX[kind]) {
      return {
        reason: 'too_wide',
        message: `${cidr.text} is wider than the platform allows (at most /${MIN_PREFIX[kind]} for ${kind === 'ipv4' ? 'IPv4' : 'IPv6'})`,
      };
    }
    if (this.allowsNetwork(cidr.network, cidr.bits)) return null;
    for (const r of SPECIAL_RANGES) {
      if (r.network.kind() !== kind) continue;
      const overlaps = inRange(cidr.network, r.network, r.bits) || inRange(r.network, cidr.network, cidr.bits);
      if (overlaps)
        return {
          reason: 'denied_range',
          category: r.category,
          message: `${cidr.text} overlaps ${r.cidr} (${r.category}), which the platform's egress policy denies`,
        };
    }
    const category = classifyAddress(cidr.network);
    if (category) return { reason: 'denied_range', category, message: `${cidr.text} is ${category} address space, which the platform's egress policy denies` };
    return null;
  }

  /**
   * Validates a tenant-given host (IP literal in any spelling, DNS name, `*.domain`): literals are
   * checked like addresses; `localhost` names are loopback; a wildcard must keep two labels
   * (`*.example.com`, not `*.com`). DNS names are otherwise checked at connect time, on the
   * address they resolve to.
   */
  refuseHost(host: string): DestinationRefusal | null {
    const literal = parseAddressLiteral(host);
    if (literal) {
      const decision = this.checkAddress(literal);
      return decision.allowed
        ? null
        : {
            reason: 'denied_host',
            category: decision.category,
            message: `${host} is a ${decision.category} address, which the platform's egress policy denies`,
          };
    }
    const name = normaliseHostName(host);
    if (isLocalhostName(name)) {
      return this.checkAddress(parseAddressLiteral('127.0.0.1')!).allowed
        ? null
        : { reason: 'denied_host', category: 'loopback', message: `${host} names this machine, which the platform's egress policy denies` };
    }
    if (name === '*' || (name.startsWith('*.') && !name.slice(2).includes('.'))) {
      return { reason: 'too_wide', message: `${host} matches a whole top-level domain` };
    }
    return null;
  }
}

/** Lower case, no trailing dot(s). */
export function normaliseHostName(host: string): string {
  return host.trim().toLowerCase().replace(/\.+$/, '');
}

/** `localhost` and `*.localhost` always mean this machine (RFC 6761), whatever DNS says. */
export function isLocalhostName(name: string): boolean {
  return name === 'localhost' || name.endsWith('.localhost');
}
