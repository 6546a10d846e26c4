import dns from 'node:dns/promises';

import { DnsLookup } from './dns-lookup';
import type { LookupAnswers } from './lookup-limiter';
import { DEFAULT_LOOKUP_LIMITS, LookupLimiter } from './lookup-limiter';
import { EgressPolicy } from './policy';
import { EgressError, NAME_REFUSED, resolveDestination, systemDns, systemLookups, systemResolver } from './resolve';

/**
 * The process's lookups as `systemLookups` builds them (DnsLookup behind the limiter, default limits), with lookups that
 * outlive their callers: here no DNS server is configured, so every name goes to the fallback, replaced by lookups
 * this test answers by hand. A lookup keeps its slot until it ends, whatever its caller's deadline: a caller that
 * stopped waiting must not free its slot for another lookup while its own still runs.
 */
describe('the system lookups when a lookup outlives its caller', () => {
  const strict = EgressPolicy.strict();
  /** Lookups started and not answered yet, in order. */
  let pending: { host: string; answer: (address: string) => void; fail: () => void }[] = [];
  let started: string[] = [];
  let inFlight = 0;
  let maxInFlight = 0;
  let lookups: LookupLimiter;

  beforeEach(() => {
    jest.useFakeTimers({ doNotFake: ['nextTick', 'setImmediate', 'queueMicrotask'] });
    pending = [];
    started = [];
    inFlight = 0;
    maxInFlight = 0;
    const slowLookup = (host: string): Promise<LookupAnswers> => {
      started.push(host);
      maxInFlight = Math.max(maxInFlight, ++inFlight);
      return new Promise((resolve, reject) => {
        const end = () => {
          inFlight--;
          pending = pending.filter((p) => p !== entry);
        };
        const entry = {
          host,
          answer: (address: string) => {
            end();
            resolve([{ address, family: address.includes(':') ? 6 : 4 }]);
          },
          fail: () => {
            end();
            reject(Object.assign(new Error(`lookup of ${host} failed`), { code: 'ETIMEOUT' }));
          },
        };
        pending.push(entry);
      });
    };
    lookups = new LookupLimiter(new DnsLookup({ servers: [], fallback: slowLookup }).lookup, DEFAULT_LOOKUP_LIMITS);
  });

  afterEach(async () => {
    // Every lookup this test started ends, so no slot stays taken for the next test.
    while (pending.length) {
      pending[0]!.fail();
      await jest.advanceTimersByTimeAsync(0);
    }
    jest.useRealTimers();
    jest.restoreAllMocks();
  });

  const settle = () => jest.advanceTimersByTimeAsync(0);
  const resolveLater = (host: string, owner: string, timeoutMs = 1_000) => {
    const outcome: { value?: string[]; error?: EgressError } = {};
    const done = resolveDestination(host, strict, { resolver: lookups.resolver, timeoutMs, owner }).then(
      (addresses) => (outcome.value = addresses.map(String)),
      (error: EgressError) => (outcome.error = error),
    );
    return { outcome, done };
  };

  it('runs at most 2 lookups at once; callers that gave up keep their slots until their lookups end; others proceed once a slot frees', async () => {
    // A tenant's webhooks name six hosts a slow DNS server serves, from three tenants' worth of deliveries.
    const slow = Array.from({ length: 6 }, (_, i) => resolveLater(`h${i}.slow-dns.test`, `tenant-${i % 3}`));
    await settle();
    expect(started).toHaveLength(2);

    await jest.advanceTimersByTimeAsync(1_000);
    await Promise.all(slow.map((s) => s.done));
    for (const { outcome } of slow) expect(outcome.error).toMatchObject({ code: 'UNRESOLVED', publicReason: NAME_REFUSED });
    // Every caller gave up, but the two lookups still run: their slots are still taken.
    expect(inFlight).toBe(2);
    expect(maxInFlight).toBe(2);

    // Another tenant's lookup waits for a slot: it does not start a third lookup.
    const other = resolveLater('pay.other-tenant.test', 'tenant-9', 5_000);
    await settle();
    expect(started).toHaveLength(2);

    // One slow lookup ends at last: the waiting lookup takes the slot and is answered.
    pending[0]!.fail();
    await settle();
    expect(started).toEqual(['h0.slow-dns.test', 'h1.slow-dns.test', 'pay.other-tenant.test']);
    pending.find((p) => p.host === 'pay.other-tenant.test')!.answer('93.184.216.34');
    await other.done;
    expect(other.outcome).toEqual({ value: ['93.184.216.34'] });
    expect(maxInFlight).toBe(2);
  });

  it('looks a name up once for every caller waiting for it', async () => {
    const callers = Array.from({ length: 5 }, (_, i) => resolveLater('hooks.example.test', `tenant-${i}`));
    await settle();
    expect(started).toEqual(['hooks.example.test']);
    pending[0]!.answer('93.184.216.34');
    await Promise.all(callers.map((c) => c.done));
    for (const c of callers) expect(c.outcome).toEqual({ value: ['93.184.216.34'] });
  });

  it("does not let one tenant's slow names take every slot from another tenant", async () => {
    const hog = Array.from({ length: 4 }, (_, i) => resolveLater(`n${i}.slow-dns.test`, 'tenant-a', 10_000));
    await settle();
    expect(started).toEqual(['n0.slow-dns.test']);
    const fair = resolveLater('pay.tenant-b.test', 'tenant-b');
    await settle();
    expect(started).toEqual(['n0.slow-dns.test', 'pay.tenant-b.test']);
    pending.find((p) => p.host === 'pay.tenant-b.test')!.answer('93.184.216.35');
    await fair.done;
    expect(fair.outcome).toEqual({ value: ['93.184.216.35'] });
    await jest.advanceTimersByTimeAsync(10_000);
    await Promise.all(hog.map((h) => h.done));
    expect(hog.map((h) => h.outcome.error?.details.lookup)).toEqual(['timeout_running', 'timeout_queued', 'timeout_queued', 'timeout_queued']);
  });

  it('is the one the process uses: its resolver, through the lookup limiter, asking DNS first', () => {
    expect(systemResolver).toBe(systemLookups.resolver);
    expect(systemDns).toBeInstanceOf(DnsLookup);
  });

  it('never calls getaddrinfo: without DNS servers a name is looked up in the hosts file only', async () => {
    jest.useRealTimers();
    const getaddrinfo = jest.spyOn(dns, 'lookup');
    const hostsOnly = new LookupLimiter(new DnsLookup({ servers: [] }).lookup, DEFAULT_LOOKUP_LIMITS);
    const missing = await resolveDestination('not-in-the-hosts-file.payorch.test', strict, { resolver: hostsOnly.resolver, owner: 'tenant-a' }).then(
      () => undefined,
      (error: EgressError) => error,
    );
    expect(missing).toMatchObject({ code: 'UNRESOLVED', publicReason: NAME_REFUSED });
    expect(getaddrinfo).not.toHaveBeenCalled();
  });
});
