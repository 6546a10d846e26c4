import { type AddressCategory, classifyAddress, formatAddress, inRange, type IpAddress, parseAddressLiteral, parseCidr, SPECIAL_RANGES } from './address';

/**
 * `operator`: inside EGRESS_ALLOW_CIDRS (open to every tenant and channel); `grant`: inside a range the operator
 * granted to this tenant for this channel (EgressGrant).
 */
export type AddressDecision =
  | { allowed: true; address: string; by: 'public' }
  | { allowed: true; address: string; by: 'operator' | 'grant'; category: AddressCategory }
  | { allowed: false; address: string; category: AddressCategory };

/** The channels a tenant directs connections through; an operator grant opens a range for one of them. */
export type EgressChannel = 'webhook' | 'assist' | 'relay';

export const EGRESS_CHANNELS: readonly EgressChannel[] = ['webhook', 'assist', 'relay'];

/** A range the operator granted one tenant for one channel (an EgressGrant row): a CIDR, and a port when limited to one. */
export interface EgressGrantLike {
  readonly cidr: string;
  readonly port: number | null;
}

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
  /** `operator`: EGRESS_ALLOW_CIDRS; `grant`: one tenant's grant for one channel. */
  readonly by: 'operator' | 'grant';
  /** The only port it opens; null: every port. */
  readonly port: number | null;
}

/**
 * The platform's egress policy: the one check above every tenant rule, for every connection the
 * platform opens on a tenant's behalf (Joinproto relay, webhooks, Assist). Ordinary global unicast
 * addresses pass; every special-purpose address (loopback, RFC 1918, CGNAT, link-local and cloud
 * metadata, multicast, reserved, NAT64, ULA, …; `SPECIAL_RANGES`) is denied unless the operator
 * listed a range containing it: `EGRESS_ALLOW_CIDRS` opens a range to every tenant and channel, an
 * operator grant (`withGrants`, EgressGrant rows) to one tenant for one channel (e.g. the on-premises
 * processing host of one chain, for its relay only). Tenants cannot change either.
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
      return { ...cidr, by: 'operator' as const, port: null };
    });
    return new EgressPolicy(allowances);
  }

  /**
   * This policy plus the ranges the operator granted one tenant for one channel: the caller passes only the grants of
   * the tenant in context and of the channel about to connect (read under row-level security). A grant that does not
   * parse opens nothing (grants are checked when the operator creates them).
   */
  withGrants(grants: readonly EgressGrantLike[]): EgressPolicy {
    if (grants.length === 0) return this;
    const granted = grants.flatMap((grant) => {
      const cidr = parseCidr(grant.cidr);
      return cidr ? [{ ...cidr, by: 'grant' as const, port: grant.port ?? null }] : [];
    });
    return new EgressPolicy([...this.allowances, ...granted]);
  }

  /**
   * The decision for the address a socket is about to connect to, on `port` (an allowance limited to a port never
   * matches when the port is not given). EGRESS_ALLOW_CIDRS is preferred in the answer when both allow.
   */
  checkAddress(address: IpAddress, port?: number): AddressDecision {
    const text = formatAddress(address);
    const category = classifyAddress(address);
    if (category === null) return { allowed: true, address: text, by: 'public' };
    const matching = this.allowances.filter((a) => opensPort(a, port) && inRange(address, a.network, a.bits));
    if (matching.length) return { allowed: true, address: text, by: matching.some((a) => a.by === 'operator') ? 'operator' : 'grant', category };
    return { allowed: false, address: text, category };
  }

  /** Whether the whole network lies inside one allowance that opens `port`. */
  private allowsNetwork(network: IpAddress, bits: number, port?: number): boolean {
    return this.allowances.some((a) => opensPort(a, port) && a.bits <= bits && inRange(network, a.network, a.bits));
  }

  /**
   * Validates a tenant's CIDR rule (for `port`) against the policy: not wider than /8 (IPv4) or /32 (IPv6), and
   * overlapping no denied range unless the operator allows all of it (on that port). Null when acceptable.
   */
  refuseCidr(value: string, port?: number): DestinationRefusal | null {
    const cidr = parseCidr(value);
    if (!cidr) return { reason: 'too_wide', message: `${value} is not a CIDR` };
    const kind = cidr.network.kind() as 'ipv4' | 'ipv6';
    if (cidr.bits < MIN_PREFIX[kind]) {
      return {
        reason: 'too_wide',
        message: `${cidr.text} is wider than the platform allows (at most /${MIN_PREFIX[kind]} for ${kind === 'ipv4' ? 'IPv4' : 'IPv6'})`,
      };
    }
    if (this.allowsNetwork(cidr.network, cidr.bits, port)) return null;
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
  refuseHost(host: string, port?: number): DestinationRefusal | null {
    const literal = parseAddressLiteral(host);
    if (literal) {
      const decision = this.checkAddress(literal, port);
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
      return this.checkAddress(parseAddressLiteral('127.0.0.1')!, port).allowed
        ? null
        : { reason: 'denied_host', category: 'loopback', message: `${host} names this machine, which the platform's egress policy denies` };
    }
    if (name === '*' || (name.startsWith('*.') && !name.slice(2).includes('.'))) {
      return { reason: 'too_wide', message: `${host} matches a whole top-level domain` };
    }
    return null;
  }
}

/**
 * Checks a range the operator is about to grant a tenant: a CIDR (or one address) no wider than a tenant rule may be
 * (/8 for IPv4, /32 for IPv6), and a port 1..65535 or none. Returns the normalised grant, or why it is refused.
 */
export function normaliseGrant(input: { cidr: string; port?: number | null }): { cidr: string; port: number | null } | { refused: string } {
  const cidr = parseCidr(input.cidr);
  if (!cidr) return { refused: `${input.cidr} is not a CIDR or IP address` };
  const kind = cidr.network.kind() as 'ipv4' | 'ipv6';
  if (cidr.bits < MIN_PREFIX[kind]) return { refused: `${cidr.text} is wider than a grant may be (at most /${MIN_PREFIX[kind]})` };
  const port = input.port ?? null;
  if (port !== null && (!Number.isInteger(port) || port < 1 || port > 65_535)) return { refused: `port ${port} is not 1..65535` };
  return { cidr: cidr.text, port };
}

function opensPort(allowance: OperatorAllowance, port: number | undefined): boolean {
  return allowance.port === null || allowance.port === port;
}

/** Lower case, no trailing dot(s). */
export function normaliseHostName(host: string): string {
  return host.trim().toLowerCase().replace(/\.+$/, '');
}

/** `localhost` and `*.localhost` always mean this machine (RFC 6761), whatever DNS says. */
export function isLocalhostName(name: string): boolean {
  return name === 'localhost' || name.endsWith('.localhost');
}
