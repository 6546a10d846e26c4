import ipaddr from 'ipaddr.js';

export type IpAddress = ipaddr.IPv4 | ipaddr.IPv6;

/**
 * Why an address is not an ordinary public destination. Every category is denied unless the
 * operator's policy allows the address (docs/security.md, "Egress policy").
 */
export type AddressCategory =
  | 'unspecified'
  | 'this_network'
  | 'loopback'
  | 'private'
  | 'carrier_grade_nat'
  | 'link_local'
  | 'multicast'
  | 'broadcast'
  | 'reserved'
  | 'benchmarking'
  | 'documentation'
  | 'protocol_assignments'
  | 'unique_local'
  | 'site_local'
  | 'ipv4_compatible'
  | 'nat64'
  | 'discard'
  | 'orchid'
  | 'not_global_unicast';

interface Range {
  readonly cidr: string;
  readonly category: AddressCategory;
  readonly network: IpAddress;
  readonly bits: number;
}

function range(cidr: string, category: AddressCategory): Range {
  const [network, bits] = ipaddr.parseCIDR(cidr);
  return { cidr, category, network, bits };
}

/**
 * The special-purpose ranges (IANA IPv4/IPv6 Special-Purpose Address Registries, RFC 6890 and
 * successors) that a tenant-directed connection may never reach by default. Order matters only for
 * the category reported; a hit anywhere denies.
 */
export const SPECIAL_RANGES: readonly Range[] = [
  range('0.0.0.0/32', 'unspecified'),
  range('0.0.0.0/8', 'this_network'),
  range('10.0.0.0/8', 'private'),
  range('100.64.0.0/10', 'carrier_grade_nat'),
  range('127.0.0.0/8', 'loopback'),
  range('169.254.0.0/16', 'link_local'),
  range('172.16.0.0/12', 'private'),
  range('192.0.0.0/24', 'protocol_assignments'),
  range('192.0.2.0/24', 'documentation'),
  range('192.88.99.0/24', 'reserved'),
  range('192.168.0.0/16', 'private'),
  range('198.18.0.0/15', 'benchmarking'),
  range('198.51.100.0/24', 'documentation'),
  range('203.0.113.0/24', 'documentation'),
  range('224.0.0.0/4', 'multicast'),
  range('255.255.255.255/32', 'broadcast'),
  range('240.0.0.0/4', 'reserved'),
  range('::/128', 'unspecified'),
  range('::1/128', 'loopback'),
  range('::/96', 'ipv4_compatible'),
  range('64:ff9b::/96', 'nat64'),
  range('64:ff9b:1::/48', 'nat64'),
  range('100::/64', 'discard'),
  range('2001:2::/48', 'benchmarking'),
  range('2001:10::/28', 'orchid'),
  range('2001:20::/28', 'orchid'),
  range('2001:db8::/32', 'documentation'),
  // RFC 9637 (2024): the second IPv6 documentation prefix, never routed.
  range('3fff::/20', 'documentation'),
  range('fc00::/7', 'unique_local'),
  range('fe80::/10', 'link_local'),
  range('fec0::/10', 'site_local'),
  range('ff00::/8', 'multicast'),
];

const GLOBAL_UNICAST_V6 = ipaddr.parseCIDR('2000::/3');
const TEREDO = ipaddr.parseCIDR('2001::/32');
const SIX_TO_FOUR = ipaddr.parseCIDR('2002::/16');
/** The rest of the IETF protocol assignments block 2001::/23 (Teredo, benchmarking and ORCHID are listed above). */
const IETF_V6 = ipaddr.parseCIDR('2001::/23');

export function inRange(address: IpAddress, network: IpAddress, bits: number): boolean {
  return address.kind() === network.kind() && address.match(network, bits);
}

/**
 * Parses every spelling of an IP address a resolver or a socket would accept: dotted quad,
 * shorthand (`127.1`), decimal (`2130706433`), octal (`0177.0.0.1`), hex (`0x7f.1`), bracketed IPv6,
 * zone ids (`fe80::1%eth0`, dropped), and IPv4-mapped IPv6 (`::ffff:7f00:1` → `127.0.0.1`).
 * Returns null for anything that is not an IP literal (a DNS name).
 */
export function parseAddressLiteral(spelling: string): IpAddress | null {
  let value = spelling.trim();
  if (value.startsWith('[') && value.endsWith(']')) value = value.slice(1, -1);
  const zone = value.indexOf('%');
  if (zone >= 0 && value.includes(':')) value = value.slice(0, zone);
  if (value === '' || !ipaddr.isValid(value)) return null;
  try {
    const parsed = ipaddr.parse(value);
    // IPv4-mapped IPv6 is the IPv4 address; the socket would reach exactly that.
    return parsed.kind() === 'ipv6' && (parsed as ipaddr.IPv6).isIPv4MappedAddress() ? (parsed as ipaddr.IPv6).toIPv4Address() : parsed;
  } catch {
    return null;
  }
}

/** The IPv4 address a 6to4 (2002:V4ADDR::/48) or Teredo (client address, obfuscated) IPv6 address carries. */
export function embeddedIPv4(address: ipaddr.IPv6): ipaddr.IPv4 | null {
  const bytes = address.toByteArray();
  if (inRange(address, SIX_TO_FOUR[0], SIX_TO_FOUR[1])) return new ipaddr.IPv4(bytes.slice(2, 6));
  if (inRange(address, TEREDO[0], TEREDO[1])) return new ipaddr.IPv4(bytes.slice(12, 16).map((b) => b ^ 0xff));
  return null;
}

/**
 * The special-purpose category of an address, or null for an ordinary global unicast address.
 * IPv6 outside 2000::/3 is never global; 6to4 and Teredo are judged by the IPv4 address they embed.
 */
export function classifyAddress(address: IpAddress): AddressCategory | null {
  for (const r of SPECIAL_RANGES) {
    if (inRange(address, r.network, r.bits)) return r.category;
  }
  if (address.kind() === 'ipv6') {
    const v6 = address as ipaddr.IPv6;
    if (!inRange(v6, GLOBAL_UNICAST_V6[0], GLOBAL_UNICAST_V6[1])) return 'not_global_unicast';
    const embedded = embeddedIPv4(v6);
    if (embedded) return classifyAddress(embedded);
    if (inRange(v6, IETF_V6[0], IETF_V6[1])) return 'protocol_assignments';
  }
  return null;
}

/** The canonical text of an address: IPv4 dotted quad, IPv6 RFC 5952 form. */
export function formatAddress(address: IpAddress): string {
  return address.kind() === 'ipv6' ? (address as ipaddr.IPv6).toRFC5952String() : address.toString();
}

/** Parses a CIDR (`10.0.0.0/8`, `fd00::/8`, or a bare address as a host route) into its network. */
export function parseCidr(value: string): { network: IpAddress; bits: number; text: string } | null {
  const text = value.trim();
  try {
    if (!text.includes('/')) {
      const address = parseAddressLiteral(text);
      if (!address) return null;
      const bits = address.kind() === 'ipv4' ? 32 : 128;
      return { network: address, bits, text: `${formatAddress(address)}/${bits}` };
    }
    if (!ipaddr.isValidCIDR(text)) return null;
    let [network, bits] = ipaddr.parseCIDR(text);
    if (network.kind() === 'ipv6' && (network as ipaddr.IPv6).isIPv4MappedAddress() && bits >= 96) {
      network = (network as ipaddr.IPv6).toIPv4Address();
      bits -= 96;
    }
    const base =
      network.kind() === 'ipv4'
        ? ipaddr.IPv4.networkAddressFromCIDR(`${network.toString()}/${bits}`)
        : ipaddr.IPv6.networkAddressFromCIDR(`${network.toString()}/${bits}`);
    return { network: base, bits, text: `${formatAddress(base)}/${bits}` };
  } catch {
    return null;
  }
}
