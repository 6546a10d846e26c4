import { lookup } from 'node:dns/promises';

import { type AddressCategory, formatAddress, type IpAddress, parseAddressLiteral } from './address';
import { type EgressPolicy, isLocalhostName, normaliseHostName } from './policy';

/** A resolver returning every address of a name (tests inject one; production uses getaddrinfo). */
export type Resolver = (host: string) => Promise<readonly { address: string; family?: number }[]>;

export const systemResolver: Resolver = (host) => lookup(host, { all: true, verbatim: true });

/**
 * A destination the policy refuses, or a name that does not resolve. `publicReason` is safe to show a tenant: for a name
 * it is the same whether the name did not resolve or resolved to a denied address (NAME_REFUSED), so what a tenant sees
 * never tells which internal names exist; `message` and `details` (the address, its category) are for the operator.
 */
export class EgressError extends Error {
  constructor(
    readonly code: 'DENIED' | 'UNRESOLVED' | 'CONNECT_FAILED',
    message: string,
    readonly publicReason: string,
    readonly details: { address?: string; category?: AddressCategory } = {},
  ) {
    super(message);
    this.name = 'EgressError';
  }
}

export interface ResolveOptions {
  resolver?: Resolver;
  /** Deadline of the DNS lookup. */
  timeoutMs?: number;
}

const LOCALHOST = ['127.0.0.1', '::1'];

/** What a tenant is told about a name the platform will not call, whether it did not resolve or resolved to a denied address. */
export const NAME_REFUSED = 'host does not resolve to an address the platform may call';

/**
 * Resolves a destination host exactly once and checks **every** address it resolves to against the
 * policy (a name with one denied address is refused as a whole, so no answer can smuggle an
 * internal address in). Literals in any spelling are normalised and never looked up; `localhost`
 * names are loopback without asking DNS. The caller connects to one of the returned addresses (never
 * to the name again), so a DNS rebinding between check and connect cannot happen.
 */
export async function resolveDestination(host: string, policy: EgressPolicy, options: ResolveOptions = {}): Promise<IpAddress[]> {
  const literal = parseAddressLiteral(host);
  const name = normaliseHostName(host);
  let addresses: IpAddress[];
  if (literal) addresses = [literal];
  else if (isLocalhostName(name)) addresses = LOCALHOST.map((a) => parseAddressLiteral(a)!);
  else addresses = await lookupAll(name, options);
  for (const address of addresses) {
    const decision = policy.checkAddress(address);
    if (!decision.allowed) {
      throw new EgressError(
        'DENIED',
        `${host} → ${decision.address} is ${decision.category} address space, denied by the platform egress policy`,
        literal ? 'destination not allowed' : NAME_REFUSED,
        {
          address: decision.address,
          category: decision.category,
        },
      );
    }
  }
  return addresses;
}

async function lookupAll(name: string, options: ResolveOptions): Promise<IpAddress[]> {
  const resolver = options.resolver ?? systemResolver;
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`DNS lookup of ${name} timed out`)), options.timeoutMs ?? 10_000);
    timer.unref();
  });
  let answers: readonly { address: string }[];
  try {
    answers = await Promise.race([resolver(name), timeout]);
  } catch (error) {
    throw new EgressError('UNRESOLVED', `${name} did not resolve: ${(error as Error).message}`, NAME_REFUSED);
  } finally {
    clearTimeout(timer);
  }
  const addresses = answers.map((a) => parseAddressLiteral(a.address));
  if (addresses.length === 0 || addresses.some((a) => a === null)) {
    throw new EgressError('UNRESOLVED', `${name} resolved to no usable address`, NAME_REFUSED);
  }
  // Deduplicated, in the resolver's order.
  const seen = new Set<string>();
  return (addresses as IpAddress[]).filter((a) => {
    const key = formatAddress(a);
    if (seen.has(key)) return false;
    seen.add(key);
    return true;
  });
}
