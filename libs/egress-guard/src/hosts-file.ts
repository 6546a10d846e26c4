import { readFile } from 'node:fs/promises';
import { isIP } from 'node:net';

import type { LookupAnswers } from './lookup-limiter';
import { normaliseHostName } from './policy';

/** How long a read of the hosts file is used before the next lookup reads it again. */
export const HOSTS_FILE_REFRESH_MS = 5_000;

export interface HostsFileOptions {
  /** Default `/etc/hosts`; tests name a file of their own. */
  readonly path?: string;
  /** Default HOSTS_FILE_REFRESH_MS. */
  readonly refreshMs?: number;
}

/**
 * The names of the hosts file, for the host name lookups of tenant-directed destinations (`DnsLookup`): a name the DNS
 * servers say does not exist is looked up here, not with getaddrinfo. getaddrinfo (`dns.lookup`) runs on libuv's
 * threadpool and asks the DNS servers again after the hosts file, with the C library's own timeouts, which no deadline
 * of ours can cancel: a server that answered NXDOMAIN to our query and then stalled getaddrinfo's held a thread and a
 * lookup slot for tens of seconds. Reading a local file takes a thread for a moment, once per `refreshMs` at most
 * (concurrent lookups share one read); a file that cannot be read knows no names.
 *
 * The resolver's search domains are not applied: a tenant-given name is taken as written (absolute), so a short name
 * resolves only through the hosts file — never to an internal service through the cluster's search list.
 */
export class HostsFile {
  private readonly path: string;
  private readonly refreshMs: number;
  private names: ReadonlyMap<string, readonly string[]> = new Map();
  private readAt = Number.NEGATIVE_INFINITY;
  private reading: Promise<ReadonlyMap<string, readonly string[]>> | undefined;

  /** The lookup, as a `DnsLookup` fallback: the addresses of `host` (IPv4 first), or an ENOTFOUND error. */
  readonly lookup = async (host: string): Promise<LookupAnswers> => {
    const addresses = (await this.table()).get(normaliseHostName(host)) ?? [];
    if (addresses.length === 0) throw Object.assign(new Error(`${host} is not in the hosts file`), { code: 'ENOTFOUND', hostname: host });
    return addresses.map((address) => ({ address, family: address.includes(':') ? 6 : 4 }));
  };

  constructor(options: HostsFileOptions = {}) {
    this.path = options.path ?? '/etc/hosts';
    this.refreshMs = options.refreshMs ?? HOSTS_FILE_REFRESH_MS;
  }

  private table(): Promise<ReadonlyMap<string, readonly string[]>> {
    if (performance.now() - this.readAt < this.refreshMs) return Promise.resolve(this.names);
    this.reading ??= readFile(this.path, 'utf8')
      .then(parseHostsFile, () => new Map<string, string[]>())
      .then((names) => {
        this.names = names;
        this.readAt = performance.now();
        return names;
      })
      .finally(() => (this.reading = undefined));
    return this.reading;
  }
}

/**
 * `address name [alias…]` per line, `#` to the end of a line a comment; names in lower case without a trailing dot;
 * a name's addresses in file order, IPv4 before IPv6 (as DnsLookup answers). Lines whose address is not an IP address
 * are skipped.
 */
export function parseHostsFile(text: string): Map<string, string[]> {
  const names = new Map<string, string[]>();
  for (const raw of text.split('\n')) {
    const [address, ...hostNames] = raw.replace(/#.*/, '').trim().split(/\s+/);
    if (!address || hostNames.length === 0 || isIP(address.replace(/%.*/, '')) === 0) continue;
    for (const hostName of hostNames) {
      const name = normaliseHostName(hostName);
      const list = names.get(name) ?? [];
      if (!list.includes(address)) list.push(address);
      names.set(name, list);
    }
  }
  for (const [name, list] of names) names.set(name, [...list.filter((a) => !a.includes(':')), ...list.filter((a) => a.includes(':'))]);
  return names;
}
