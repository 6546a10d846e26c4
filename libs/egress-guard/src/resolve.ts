import { type AddressCategory, formatAddress, type IpAddress, parseAddressLiteral } from './address';
import { DnsLookup } from './dns-lookup';
import {
  DEFAULT_LOOKUP_LIMITS,
  type LookupAnswers,
  type LookupContext,
  LookupLimiter,
  type LookupLimits,
  type LookupRefusal,
  LookupRefusedError,
} from './lookup-limiter';
import { type EgressPolicy, isLocalhostName, normaliseHostName } from './policy';

/**
 * A resolver returning every address of a name (tests inject one; production uses `systemResolver`). `context` says
 * whose lookup it is and until when its caller waits; a resolver may ignore it.
 */
export type Resolver = (host: string, context?: LookupContext) => Promise<LookupAnswers>;

/**
 * The process's DNS queries: c-ares to the system's DNS servers (not on the threadpool), each ending by its deadline
 * (the caller's, at most EGRESS_DNS_TIMEOUT_MS); a name DNS says does not exist is looked up in the hosts file.
 */
export const systemDns = new DnsLookup();

/**
 * The process's host name lookups (`systemDns`), bounded: at most EGRESS_DNS_MAX_IN_FLIGHT at once, a slot held
 * until the lookup itself ends (a DNS query by its deadline), waiting lookups served round-robin by tenant
 * (LookupLimiter). One per process: every channel (webhooks, Assist, relay, URL checks) shares it.
 */
export const systemLookups = new LookupLimiter(systemDns.lookup, DEFAULT_LOOKUP_LIMITS);

/**
 * Applies the operator's limits (EGRESS_DNS_MAX_IN_FLIGHT, EGRESS_DNS_MAX_QUEUED) and the longest DNS query
 * (EGRESS_DNS_TIMEOUT_MS) to the process's lookups; once, at start-up.
 */
export function configureSystemLookups(limits: LookupLimits, dns: { timeoutMs?: number } = {}): void {
  systemLookups.configure(limits);
  if (dns.timeoutMs !== undefined) systemDns.configure({ timeoutMs: dns.timeoutMs });
}

export const systemResolver: Resolver = systemLookups.resolver;

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
    readonly details: { address?: string; category?: AddressCategory; lookup?: LookupRefusal } = {},
  ) {
    super(message);
    this.name = 'EgressError';
  }
}

export interface ResolveOptions {
  resolver?: Resolver;
  /** Deadline of the DNS lookup (default 10 s); the system's DNS queries also end by EGRESS_DNS_TIMEOUT_MS. */
  timeoutMs?: number;
  /** Whose destination this is (the tenant id): the lookup limiter serves tenants in turn. */
  owner?: string;
  /** The port about to be dialled: an operator grant limited to a port allows only that port. */
  port?: number;
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
    const decision = policy.checkAddress(address, options.port);
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
  const timeoutMs = options.timeoutMs ?? 10_000;
  const deadline = Date.now() + timeoutMs;
  let timer: NodeJS.Timeout | undefined;
  let answers: LookupAnswers;
  try {
    const answering = resolver(name, { deadline, owner: options.owner });
    // A resolver that ignores the deadline (an injected one) is still bounded here; a limited one refuses by itself
    // first (its timer was set before this one, for no later), saying whether the lookup waited or ran.
    const timeout = new Promise<never>((_, reject) => {
      timer = setTimeout(() => reject(new LookupRefusedError('timeout_running', `DNS lookup of ${name} timed out`)), timeoutMs);
      timer.unref();
    });
    answers = await Promise.race([answering, timeout]);
  } catch (error) {
    const refusal = error instanceof LookupRefusedError ? { lookup: error.reason } : {};
    throw new EgressError('UNRESOLVED', `${name} did not resolve: ${(error as Error).message}`, NAME_REFUSED, refusal);
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
