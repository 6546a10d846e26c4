import nodeDns from 'node:dns/promises';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';

import { waitFor } from '@payorch/testing';

import { DnsLookup, type DnsLookupOptions } from './dns-lookup';
import { type LookupAnswers, LookupLimiter, lookupLimits } from './lookup-limiter';
import { EgressPolicy } from './policy';
import { type EgressError, NAME_REFUSED, resolveDestination } from './resolve';
import { closedDnsAddress, FakeDnsServer } from './testing/fake-dns-server';

/**
 * The process's lookups as production builds them (c-ares queries behind the lookup limiter, with the default limits:
 * 2 in flight, one per tenant), pointed at a fake DNS server on 127.0.0.1 instead of the system's servers. Every
 * address the fake server knows is loopback, private or documentation space, and nothing here dials any of them.
 */
describe('DnsLookup (c-ares) behind the lookup limiter', () => {
  let dns: FakeDnsServer;
  /** What the injected hosts-file lookup knows, and the names it was asked. */
  const hostsFile: Record<string, string[]> = { 'printer.hosts-file.test': ['127.0.0.9'] };
  const fallbackCalls: string[] = [];
  const fallback = (host: string): Promise<LookupAnswers> => {
    fallbackCalls.push(host);
    const addresses = hostsFile[host];
    if (!addresses) return Promise.reject(Object.assign(new Error(`getaddrinfo ENOTFOUND ${host}`), { code: 'ENOTFOUND' }));
    return Promise.resolve(addresses.map((address) => ({ address, family: address.includes(':') ? 6 : 4 })));
  };
  /** Loopback and the IPv6 documentation range are allowed here, so answers in them resolve; 10/8 and ULA stay denied. */
  const policy = EgressPolicy.fromList('127.0.0.0/8, ::1, 2001:db8::/32');

  beforeAll(async () => {
    dns = await FakeDnsServer.start({
      'hooks.dead-a.test': 'silent',
      'hooks.dead-b.test': 'silent',
      'pay.tenant-c.test': { a: ['127.0.0.7'] },
      'dual.tenant-c.test': { a: ['127.0.0.5'], aaaa: ['2001:db8::1'] },
      'mixed-v4.tenant-c.test': { a: ['127.0.0.5', '10.0.0.1'] },
      'mixed-v6.tenant-c.test': { a: ['127.0.0.5'], aaaa: ['fd00:ec2::254'] },
      'no-records.tenant-c.test': {},
      'v4-only-answered.test': { a: ['127.0.0.8'], aaaa: ['2001:db8::8'], silent: ['AAAA'] },
      'broken.test': 'servfail',
      'refused.test': 'refused',
      'slow.shared.test': { a: ['127.0.0.10'], hold: true },
    });
  });
  afterAll(() => dns.close());
  beforeEach(() => fallbackCalls.splice(0));

  const system = (options: DnsLookupOptions = {}) =>
    new LookupLimiter(new DnsLookup({ servers: [dns.address], fallback, ...options }).lookup, lookupLimits(2, 64));
  const outcome = (resolving: Promise<unknown[]>) =>
    resolving.then(
      (addresses) => ({ value: addresses.map(String) }),
      (error: EgressError) => ({ error }),
    );

  it("two tenants' names that a DNS server never answers end at their deadline and hold nothing afterwards: a third tenant's lookup is then answered at once", async () => {
    const lookups = system();
    const dead = await Promise.all(
      (['a', 'b'] as const).map((t) =>
        outcome(resolveDestination(`hooks.dead-${t}.test`, policy, { resolver: lookups.resolver, owner: `tenant-${t}`, timeoutMs: 300 })),
      ),
    );
    for (const d of dead) expect(d).toMatchObject({ error: { code: 'UNRESOLVED', publicReason: NAME_REFUSED, details: { lookup: 'timeout_running' } } });

    // Before: both getaddrinfo-like lookups kept their slots until the resolver gave up (~20 s), and this lookup was
    // queued behind them and refused when its own deadline passed (timeout_queued).
    const third = await outcome(resolveDestination('pay.tenant-c.test', policy, { resolver: lookups.resolver, owner: 'tenant-c', timeoutMs: 1_000 }));
    expect(third).toEqual({ value: ['127.0.0.7'] });
    await waitFor(() => lookups.stats().inFlight === 0, { timeoutMs: 1_000, what: 'no lookup in flight' });
    expect(lookups.stats()).toMatchObject({ queued: 0, refused: { queue_full: 0, timeout_queued: 0, timeout_running: 2 } });
    // Each dead name was asked once for A and once for AAAA, and a timeout never falls back to getaddrinfo.
    expect(dns.queriesFor('hooks.dead-a.test').map((q) => q.type)).toEqual(expect.arrayContaining(['A', 'AAAA']));
    expect(dns.queriesFor('hooks.dead-a.test')).toHaveLength(2);
    expect(fallbackCalls).toEqual([]);
  });

  it('resolves A and AAAA to every address, and refuses a name with one denied address among them as a whole', async () => {
    const { resolver } = system();
    await expect(resolveDestination('dual.tenant-c.test', policy, { resolver, owner: 'tenant-c' }).then((a) => a.map(String))).resolves.toEqual([
      '127.0.0.5',
      '2001:db8::1',
    ]);
    await expect(resolveDestination('mixed-v4.tenant-c.test', policy, { resolver, owner: 'tenant-c' })).rejects.toMatchObject({
      code: 'DENIED',
      publicReason: NAME_REFUSED,
      details: { address: '10.0.0.1', category: 'private' },
    });
    await expect(resolveDestination('mixed-v6.tenant-c.test', policy, { resolver, owner: 'tenant-c' })).rejects.toMatchObject({
      code: 'DENIED',
      publicReason: NAME_REFUSED,
      details: { address: 'fd00:ec2::254', category: 'unique_local' },
    });
    expect(fallbackCalls).toEqual([]);
  });

  it('falls back to the hosts-file lookup for a name DNS says does not exist (NXDOMAIN, or no A/AAAA records)', async () => {
    const { resolver } = system();
    await expect(resolveDestination('printer.hosts-file.test', policy, { resolver, owner: 'tenant-c' }).then((a) => a.map(String))).resolves.toEqual([
      '127.0.0.9',
    ]);
    await expect(resolveDestination('no-records.tenant-c.test', policy, { resolver, owner: 'tenant-c' })).rejects.toMatchObject({
      code: 'UNRESOLVED',
      publicReason: NAME_REFUSED,
    });
    expect(fallbackCalls).toEqual(['printer.hosts-file.test', 'no-records.tenant-c.test']);
    expect(dns.queriesFor('printer.hosts-file.test')).toHaveLength(2);
  });

  it('never falls back to getaddrinfo when DNS did not say the name does not exist: a server that fails, refuses or is down', async () => {
    const { resolver } = system();
    for (const host of ['broken.test', 'refused.test']) {
      await expect(resolveDestination(host, policy, { resolver, owner: 'tenant-c' })).rejects.toMatchObject({ code: 'UNRESOLVED', publicReason: NAME_REFUSED });
    }
    // The hosts file knows this name, but the DNS server is down (port unreachable): no answer is not "does not exist".
    const down = system({ servers: [await closedDnsAddress()] });
    await expect(resolveDestination('printer.hosts-file.test', policy, { resolver: down.resolver, owner: 'tenant-c' })).rejects.toMatchObject({
      code: 'UNRESOLVED',
    });
    expect(fallbackCalls).toEqual([]);
  });

  it("looks a name DNS says does not exist up in the hosts file itself, never with getaddrinfo: a server that answers NXDOMAIN and then stalls getaddrinfo's own queries holds no slot", async () => {
    // getaddrinfo (dns.lookup) as such a server makes it: it never returns. Before, the fallback was dns.lookup: both
    // lookups below held their slots (and threadpool threads) after their callers gave up, and the third waited.
    const lookup = jest.spyOn(nodeDns, 'lookup').mockImplementation((() => new Promise(() => undefined)) as never);
    try {
      const dir = mkdtempSync(path.join(tmpdir(), 'payorch-hosts-'));
      const hostsFile = path.join(dir, 'hosts');
      writeFileSync(hostsFile, '# operator entries\n127.0.0.9 printer.hosts-file.test printer # the shop printer\n::1 printer.hosts-file.test\n');
      const lookups = new LookupLimiter(new DnsLookup({ servers: [dns.address], hostsFile }).lookup, lookupLimits(2, 64));
      // NODATA (the name exists, without A or AAAA records) and NXDOMAIN (a name the server does not know).
      const missing = await Promise.all(
        [
          ['no-records.tenant-c.test', 'tenant-a'],
          ['nowhere.tenant-b.test', 'tenant-b'],
        ].map(([host, owner]) => outcome(resolveDestination(host!, policy, { resolver: lookups.resolver, owner, timeoutMs: 2_000 }))),
      );
      for (const m of missing) expect(m).toMatchObject({ error: { code: 'UNRESOLVED', publicReason: NAME_REFUSED } });
      expect(lookups.stats().inFlight).toBe(0);
      expect(
        await outcome(resolveDestination('printer.hosts-file.test.', policy, { resolver: lookups.resolver, owner: 'tenant-c', timeoutMs: 2_000 })),
      ).toEqual({
        value: ['127.0.0.9', '::1'],
      });
      // A short name is not completed with the resolver's search domains: only the hosts file knows it.
      expect(await outcome(resolveDestination('printer', policy, { resolver: lookups.resolver, owner: 'tenant-c', timeoutMs: 2_000 }))).toEqual({
        value: ['127.0.0.9'],
      });
      expect(lookup).not.toHaveBeenCalled();
    } finally {
      lookup.mockRestore();
    }
  });

  it('keeps the slot of a fallback lookup until it returns, after its caller gave up', async () => {
    const hung: (() => void)[] = [];
    const stuck = (): Promise<LookupAnswers> => new Promise((resolve) => hung.push(() => resolve([{ address: '127.0.0.11', family: 4 }])));
    const lookups = system({ fallback: stuck });
    const gaveUp = await Promise.all(
      (['a', 'b'] as const).map((t) =>
        outcome(resolveDestination(`unknown-${t}.test`, policy, { resolver: lookups.resolver, owner: `tenant-${t}`, timeoutMs: 200 })),
      ),
    );
    for (const g of gaveUp) expect(g).toMatchObject({ error: { details: { lookup: 'timeout_running' } } });
    expect(lookups.stats().inFlight).toBe(2);
    const third = outcome(resolveDestination('pay.tenant-c.test', policy, { resolver: lookups.resolver, owner: 'tenant-c', timeoutMs: 5_000 }));
    await waitFor(() => lookups.stats().queued === 1, { timeoutMs: 1_000, what: "tenant-c's lookup waiting for a slot" });
    hung[0]!();
    expect(await third).toEqual({ value: ['127.0.0.7'] });
    hung[1]!();
    await waitFor(() => lookups.stats().inFlight === 0, { timeoutMs: 1_000, what: 'no lookup in flight' });
  });

  it('ends a query at its own timeout (EGRESS_DNS_TIMEOUT_MS) even when its caller would wait longer', async () => {
    const lookups = system({ timeoutMs: 200 });
    const started = Date.now();
    const dead = await outcome(resolveDestination('hooks.dead-a.test', policy, { resolver: lookups.resolver, owner: 'tenant-a', timeoutMs: 30_000 }));
    expect(dead).toMatchObject({ error: { code: 'UNRESOLVED', details: { lookup: 'timeout_running' } } });
    // Well before the caller's own 30 s.
    expect(Date.now() - started).toBeLessThan(10_000);
    expect(lookups.stats().inFlight).toBe(0);
  });

  it('answers with the addresses of one type when the server never answers the other', async () => {
    const { resolver } = system({ partialAnswerWaitMs: 50 });
    await expect(
      resolveDestination('v4-only-answered.test', policy, { resolver, owner: 'tenant-c', timeoutMs: 5_000 }).then((a) => a.map(String)),
    ).resolves.toEqual(['127.0.0.8']);
  });

  it('looks a name up again for a caller who joined a lookup started for a shorter deadline, when that lookup runs out of time', async () => {
    const lookups = system();
    const impatient = outcome(resolveDestination('slow.shared.test', policy, { resolver: lookups.resolver, owner: 'tenant-a', timeoutMs: 200 }));
    await waitFor(() => dns.queriesFor('slow.shared.test').length === 2, { timeoutMs: 1_000, what: 'the first query' });
    const patient = outcome(resolveDestination('slow.shared.test', policy, { resolver: lookups.resolver, owner: 'tenant-b', timeoutMs: 5_000 }));
    expect(await impatient).toMatchObject({ error: { details: { lookup: 'timeout_running' } } });
    // The first query ran out of its (tenant-a's) time: tenant-b's lookup is asked again, and answered.
    await waitFor(() => dns.queriesFor('slow.shared.test').length === 4, { timeoutMs: 2_000, what: 'the second query' });
    expect(dns.release('slow.shared.test')).toBeGreaterThan(0);
    expect(await patient).toEqual({ value: ['127.0.0.10'] });
  });

  it('never asks DNS about localhost names or IP literals', async () => {
    const { resolver } = system();
    const before = dns.queries.length;
    await expect(resolveDestination('localhost', policy, { resolver }).then((a) => a.map(String))).resolves.toEqual(['127.0.0.1', '::1']);
    await expect(resolveDestination('127.0.0.5', policy, { resolver }).then((a) => a.map(String))).resolves.toEqual(['127.0.0.5']);
    expect(dns.queries.length).toBe(before);
    expect(fallbackCalls).toEqual([]);
  });
});
