import dns from 'node:dns/promises';

import { HostsFile } from './hosts-file';
import type { LookupAnswers, LookupQuery } from './lookup-limiter';

/** Longest a DNS query of a tenant-given name runs by default, whatever its caller's deadline (EGRESS_DNS_TIMEOUT_MS). */
export const DEFAULT_DNS_TIMEOUT_MS = 5_000;

/** Once one type (A or AAAA) has answered with addresses, how long the other may still take. */
const DEFAULT_PARTIAL_ANSWER_WAIT_MS = 1_000;

/** c-ares codes with which a DNS server said the name, or its A/AAAA records, do not exist (NXDOMAIN, NODATA). */
const DOES_NOT_EXIST: ReadonlySet<string> = new Set([dns.NOTFOUND, dns.NODATA]);

export interface DnsLookupOptions {
  /** DNS servers to ask (`host` or `host:port`); default: the system's (`dns.getServers()`, from /etc/resolv.conf). Tests name a fake one. */
  readonly servers?: readonly string[];
  /** Longest a query runs, whatever its caller's deadline (EGRESS_DNS_TIMEOUT_MS); default 5 s. */
  readonly timeoutMs?: number;
  /**
   * The lookup of a name the DNS servers say does not exist (and of every name when no DNS server is configured):
   * default, the hosts file (`HostsFile`, read by this process, never getaddrinfo); tests inject one.
   */
  readonly fallback?: (host: string) => Promise<LookupAnswers>;
  /** The hosts file the default fallback reads (default `/etc/hosts`). */
  readonly hostsFile?: string;
  /** Once A or AAAA has answered with addresses, how long the other may still take (default 1 s). */
  readonly partialAnswerWaitMs?: number;
}

/** A failed query of one type: the c-ares code (ENOTFOUND, ENODATA, ETIMEOUT, ESERVFAIL, ECONNREFUSED…). */
interface Failure {
  readonly code: string;
  readonly error: Error;
}

type Outcome = { readonly addresses: string[] } | Failure;

/**
 * Host name lookups through c-ares (`dns.Resolver`): DNS queries on the event loop, not on libuv's threadpool, so a
 * query a DNS server never answers ends at its deadline — the caller's, capped at `timeoutMs` — and holds nothing
 * afterwards (its resolver is cancelled). A and AAAA are asked together; the answer is every address of both (IPv4
 * first), and the policy then checks each. Only a name the DNS servers say does not exist (NXDOMAIN, or no A and no
 * AAAA records) is looked up again, in the hosts file (`HostsFile`: read by this process, a local file). A server that
 * does not answer, fails (SERVFAIL, REFUSED) or is unreachable never falls back.
 *
 * getaddrinfo (`dns.lookup`) is never called: it runs on libuv's threadpool and, after the hosts file, asks the DNS
 * servers again with the C library's timeouts, which no deadline cancels — a server that answered NXDOMAIN to our query
 * and then stalled getaddrinfo's held a thread and a lookup slot until the C library gave up. Unlike getaddrinfo, a DNS
 * query does not consult the hosts file first, nor append the resolver's search domains: a name in both the hosts file
 * and DNS resolves as DNS says, and a tenant-given name is taken as written (absolute).
 */
export class DnsLookup {
  private timeoutMs: number;
  private readonly fallback: (host: string) => Promise<LookupAnswers>;
  private readonly partialAnswerWaitMs: number;

  /** The lookup, for a `LookupLimiter`: `(host, { deadline }) => answers`. */
  readonly lookup: (host: string, query?: LookupQuery) => Promise<LookupAnswers>;

  constructor(private readonly options: DnsLookupOptions = {}) {
    this.timeoutMs = validTimeout(options.timeoutMs ?? DEFAULT_DNS_TIMEOUT_MS);
    this.fallback = options.fallback ?? new HostsFile({ path: options.hostsFile }).lookup;
    this.partialAnswerWaitMs = options.partialAnswerWaitMs ?? DEFAULT_PARTIAL_ANSWER_WAIT_MS;
    this.lookup = (host, query) => this.resolve(host, query?.deadline);
  }

  /** A new longest query time (EGRESS_DNS_TIMEOUT_MS); queries already running keep theirs. */
  configure(options: { timeoutMs: number }): void {
    this.timeoutMs = validTimeout(options.timeoutMs);
  }

  private async resolve(host: string, deadline = Number.POSITIVE_INFINITY): Promise<LookupAnswers> {
    const servers = this.options.servers ?? dns.getServers();
    // No DNS server to ask: only the hosts file.
    if (servers.length === 0) return this.fallback(host);
    const budgetMs = Math.min(this.timeoutMs, deadline - Date.now());
    if (budgetMs <= 0) throw timedOut(host);
    const [a, aaaa] = await this.query(host, servers, budgetMs);
    const addresses = [...('addresses' in a ? a.addresses : []), ...('addresses' in aaaa ? aaaa.addresses : [])];
    if (addresses.length > 0) return addresses.map((address) => ({ address, family: address.includes(':') ? 6 : 4 }));
    const failures = [a, aaaa].filter((o): o is Failure => 'code' in o);
    if (failures.length === 2 && failures.every((f) => DOES_NOT_EXIST.has(f.code))) return this.fallback(host);
    // A timeout first: the limiter refuses it as timeout_running (or asks again for a caller who waits longer).
    throw failures.find((f) => f.code === dns.TIMEOUT)?.error ?? failures.find((f) => !DOES_NOT_EXIST.has(f.code))?.error ?? failures[0]!.error;
  }

  /**
   * A and AAAA queries on a resolver of their own, to `servers`, each server tried once with an equal share of the
   * budget; at the end of the budget the resolver is cancelled, so no query outlives it. Once one type has answered
   * with addresses, the other gets at most `partialAnswerWaitMs` more (a server that drops AAAA questions).
   */
  private query(host: string, servers: readonly string[], budgetMs: number): Promise<[Outcome, Outcome]> {
    const resolver = new dns.Resolver({ timeout: Math.max(1, Math.floor(budgetMs / servers.length)), tries: 1 });
    resolver.setServers([...servers]);
    return new Promise((resolve) => {
      const outcomes: [Outcome | undefined, Outcome | undefined] = [undefined, undefined];
      let graceTimer: NodeJS.Timeout | undefined;
      let finished = false;
      const finish = () => {
        if (finished) return;
        finished = true;
        clearTimeout(budgetTimer);
        clearTimeout(graceTimer);
        resolver.cancel();
        resolve([outcomes[0] ?? timeoutFailure(host), outcomes[1] ?? timeoutFailure(host)]);
      };
      const budgetTimer = setTimeout(finish, budgetMs);
      const settle = (index: 0 | 1, outcome: Outcome) => {
        if (finished) return;
        outcomes[index] = outcome;
        if (outcomes[0] && outcomes[1]) finish();
        else if ('addresses' in outcome && outcome.addresses.length > 0 && !graceTimer) graceTimer = setTimeout(finish, this.partialAnswerWaitMs);
      };
      const ask = (index: 0 | 1, querying: Promise<string[]>) =>
        querying.then(
          (addresses) => settle(index, addresses.length > 0 ? { addresses } : { code: dns.NODATA, error: new Error(`DNS: ${host} has no records`) }),
          (error: NodeJS.ErrnoException) => settle(index, error.code === dns.CANCELLED ? timeoutFailure(host) : { code: error.code ?? 'EUNKNOWN', error }),
        );
      void ask(0, resolver.resolve4(host));
      void ask(1, resolver.resolve6(host));
    });
  }
}

function validTimeout(timeoutMs: number): number {
  if (!Number.isInteger(timeoutMs) || timeoutMs < 1) throw new Error('DNS lookup: timeoutMs must be a positive whole number');
  return timeoutMs;
}

function timedOut(host: string): Error {
  return Object.assign(new Error(`DNS lookup of ${host} timed out`), { code: dns.TIMEOUT });
}

function timeoutFailure(host: string): Failure {
  return { code: dns.TIMEOUT, error: timedOut(host) };
}
