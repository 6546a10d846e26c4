import { type LookupAnswers, LookupLimiter, lookupLimits, type LookupQuery, LookupRefusedError } from './lookup-limiter';

/** A resolver whose lookups this test answers by hand (a slow DNS server), counting those in flight. */
function slowResolver() {
  const pending = new Map<string, { answer: (address: string) => void; fail: (code: string) => void }>();
  const started: string[] = [];
  /** The deadline each lookup was started with, in order. */
  const deadlines: number[] = [];
  let inFlight = 0;
  let maxInFlight = 0;
  const fn = (host: string, query: LookupQuery) =>
    new Promise<LookupAnswers>((resolve, reject) => {
      started.push(host);
      deadlines.push(query.deadline);
      maxInFlight = Math.max(maxInFlight, ++inFlight);
      const end = () => {
        inFlight--;
        pending.delete(host);
      };
      pending.set(host, {
        answer: (address) => {
          end();
          resolve([{ address }]);
        },
        fail: (code) => {
          end();
          reject(Object.assign(new Error(`getaddrinfo ${code} ${host}`), { code }));
        },
      });
    });
  return {
    fn,
    started,
    deadlines,
    answer: (host: string, address = '93.184.216.34') => pending.get(host)!.answer(address),
    fail: (host: string, code = 'EAI_AGAIN') => pending.get(host)!.fail(code),
    get inFlight() {
      return inFlight;
    },
    get maxInFlight() {
      return maxInFlight;
    },
    get pending() {
      return [...pending.keys()];
    },
  };
}

/** A promise's outcome, readable without awaiting it. */
function watch<T>(promise: Promise<T>) {
  const outcome: { value?: T; error?: Error } = {};
  const done = promise.then(
    (value) => (outcome.value = value),
    (error: Error) => (outcome.error = error),
  );
  return { outcome, done };
}

describe(LookupLimiter.name, () => {
  beforeEach(() => jest.useFakeTimers({ doNotFake: ['nextTick', 'setImmediate', 'queueMicrotask'] }));
  afterEach(() => jest.useRealTimers());

  const settle = () => jest.advanceTimersByTimeAsync(0);
  const at = (ms: number) => Date.now() + ms;

  it('never runs more lookups than its limit, and a caller that gave up keeps its slot until the lookup itself ends', async () => {
    const dns = slowResolver();
    const sut = new LookupLimiter(dns.fn, lookupLimits(2, 16));
    const callers = ['a', 'b', 'c', 'd'].map((owner, i) => watch(sut.resolve(`h${i}.test`, { owner, deadline: at(100) })));
    await settle();
    expect(dns.started).toEqual(['h0.test', 'h1.test']);
    expect(sut.stats()).toMatchObject({ inFlight: 2, queued: 2 });

    await jest.advanceTimersByTimeAsync(100);
    await Promise.all(callers.map((c) => c.done));
    expect(callers.map((c) => (c.outcome.error as LookupRefusedError).reason)).toEqual([
      'timeout_running',
      'timeout_running',
      'timeout_queued',
      'timeout_queued',
    ]);
    // Nobody waits any more, yet both lookups still hold their slots (their threads).
    expect(sut.stats()).toEqual({ inFlight: 2, queued: 0, refused: { queue_full: 0, timeout_queued: 2, timeout_running: 2 } });

    const later = watch(sut.resolve('later.test', { owner: 'e', deadline: at(1_000) }));
    await settle();
    expect(dns.started).toHaveLength(2);
    dns.fail('h1.test');
    await settle();
    expect(dns.started).toEqual(['h0.test', 'h1.test', 'later.test']);
    dns.answer('later.test');
    await later.done;
    expect(later.outcome.value).toEqual([{ address: '93.184.216.34' }]);
    dns.answer('h0.test');
    await settle();
    expect(dns.maxInFlight).toBe(2);
    expect(sut.stats()).toMatchObject({ inFlight: 0, queued: 0 });
  });

  it('answers every waiting caller of a name from one lookup, each within its own deadline', async () => {
    const dns = slowResolver();
    const sut = new LookupLimiter(dns.fn, lookupLimits(2, 16));
    const impatient = watch(sut.resolve('pay.test', { owner: 'a', deadline: at(50) }));
    const patient = watch(sut.resolve('pay.test', { owner: 'b', deadline: at(500) }));
    await jest.advanceTimersByTimeAsync(50);
    expect(impatient.outcome.error).toBeInstanceOf(LookupRefusedError);
    dns.answer('pay.test');
    await patient.done;
    expect(patient.outcome.value).toEqual([{ address: '93.184.216.34' }]);
    expect(dns.started).toEqual(['pay.test']);
  });

  it('lets one owner hold at most half of the slots, and serves waiting owners in turn', async () => {
    const dns = slowResolver();
    const sut = new LookupLimiter(dns.fn, lookupLimits(2, 16));
    const a = [0, 1, 2, 3].map((i) => watch(sut.resolve(`a${i}.test`, { owner: 'tenant-a', deadline: at(10_000) })));
    await settle();
    expect(dns.started).toEqual(['a0.test']);
    const b = [0, 1].map((i) => watch(sut.resolve(`b${i}.test`, { owner: 'tenant-b', deadline: at(10_000) })));
    await settle();
    expect(dns.started).toEqual(['a0.test', 'b0.test']);
    // As slots free, the owners alternate: tenant-b's second lookup does not wait behind all of tenant-a's.
    dns.answer('a0.test');
    await settle();
    dns.answer('b0.test');
    await settle();
    dns.answer('a1.test');
    await settle();
    expect(dns.started).toEqual(['a0.test', 'b0.test', 'a1.test', 'b1.test', 'a2.test']);
    for (const host of dns.pending) dns.answer(host);
    await settle();
    dns.answer('a3.test');
    await Promise.all([...a, ...b].map((c) => c.done));
    expect([...a, ...b].every((c) => c.outcome.value)).toBe(true);
  });

  it('runs a lookup until the latest deadline of those waiting for it when it starts', async () => {
    const dns = slowResolver();
    const sut = new LookupLimiter(dns.fn, lookupLimits(1, 16));
    const t0 = Date.now();
    watch(sut.resolve('busy.test', { owner: 'x', deadline: t0 + 1_000 }));
    const short = watch(sut.resolve('pay.test', { owner: 'a', deadline: t0 + 100 }));
    const long = watch(sut.resolve('pay.test', { owner: 'b', deadline: t0 + 500 }));
    await settle();
    dns.answer('busy.test');
    await settle();
    expect(dns.started).toEqual(['busy.test', 'pay.test']);
    expect(dns.deadlines).toEqual([t0 + 1_000, t0 + 500]);
    dns.answer('pay.test');
    await Promise.all([short.done, long.done]);
    expect([short.outcome.value, long.outcome.value]).toEqual([[{ address: '93.184.216.34' }], [{ address: '93.184.216.34' }]]);
  });

  it('refuses the callers of a lookup that ran out of time as timeout_running, and looks the name up again for one that joined it for a later deadline', async () => {
    const dns = slowResolver();
    const sut = new LookupLimiter(dns.fn, lookupLimits(2, 16));
    const impatient = watch(sut.resolve('pay.test', { owner: 'a', deadline: at(100) }));
    await settle();
    // Joins the running lookup, which was started for tenant a's deadline only.
    const patient = watch(sut.resolve('pay.test', { owner: 'b', deadline: at(1_000) }));
    await jest.advanceTimersByTimeAsync(90);
    dns.fail('pay.test', 'ETIMEOUT');
    await settle();
    expect(impatient.outcome.error).toMatchObject({ reason: 'timeout_running' });
    // Before: tenant b got tenant a's timeout, 900 ms before its own deadline.
    expect(patient.outcome).toEqual({});
    expect(dns.started).toEqual(['pay.test', 'pay.test']);
    expect(dns.deadlines[1]).toBe(dns.deadlines[0]! + 900);
    dns.answer('pay.test');
    await patient.done;
    expect(patient.outcome.value).toEqual([{ address: '93.184.216.34' }]);
    expect(sut.stats()).toEqual({ inFlight: 0, queued: 0, refused: { queue_full: 0, timeout_queued: 0, timeout_running: 1 } });
  });

  it('refuses at once when the queue, or the queue of one owner, is full', async () => {
    const dns = slowResolver();
    const sut = new LookupLimiter(dns.fn, lookupLimits(1, 4)); // 1 waiting per owner, 4 in all
    watch(sut.resolve('run.test', { owner: 'x', deadline: at(1_000) }));
    const first = watch(sut.resolve('q0.test', { owner: 'a', deadline: at(1_000) }));
    const second = watch(sut.resolve('q1.test', { owner: 'a', deadline: at(1_000) }));
    const others = ['b', 'c', 'd', 'e'].map((owner) => watch(sut.resolve(`${owner}.test`, { owner, deadline: at(1_000) })));
    await settle();
    expect(second.outcome.error).toMatchObject({ reason: 'queue_full' });
    expect(others.map((o) => (o.outcome.error as LookupRefusedError | undefined)?.reason)).toEqual([undefined, undefined, undefined, 'queue_full']);
    expect(first.outcome).toEqual({});
    expect(sut.stats()).toMatchObject({ inFlight: 1, queued: 4, refused: { queue_full: 2 } });
    await jest.advanceTimersByTimeAsync(1_000);
    dns.answer('run.test');
    await settle();
    expect(dns.started).toEqual(['run.test']);
  });

  it('refuses a lookup whose deadline has already passed without starting it', async () => {
    const dns = slowResolver();
    const sut = new LookupLimiter(dns.fn, lookupLimits(2, 4));
    await expect(sut.resolve('late.test', { owner: 'a', deadline: Date.now() })).rejects.toMatchObject({ reason: 'timeout_queued' });
    expect(dns.started).toEqual([]);
  });

  it('frees the slot of a lookup that throws at once, and starts waiting lookups when the limits are raised', async () => {
    let calls = 0;
    const sut = new LookupLimiter(
      (host) => {
        calls++;
        if (host === 'bad.test') throw new Error('boom');
        return new Promise<never>(() => undefined);
      },
      lookupLimits(1, 4),
    );
    await expect(sut.resolve('bad.test', { deadline: at(100) })).rejects.toThrow('boom');
    await settle();
    const hung = [0, 1, 2].map((i) => watch(sut.resolve(`hung${i}.test`, { owner: `o${i}`, deadline: at(100) })));
    await settle();
    expect(calls).toBe(2);
    sut.configure(lookupLimits(2, 4));
    await settle();
    expect(calls).toBe(3);
    await jest.advanceTimersByTimeAsync(100);
    await Promise.all(hung.map((h) => h.done));
    expect(sut.stats()).toMatchObject({ inFlight: 2, queued: 0 });
  });

  it('derives per-owner limits from the two settings', () => {
    expect(lookupLimits(2, 64)).toEqual({ maxInFlight: 2, maxInFlightPerOwner: 1, maxQueued: 64, maxQueuedPerOwner: 16 });
    expect(lookupLimits(1, 0)).toEqual({ maxInFlight: 1, maxInFlightPerOwner: 1, maxQueued: 0, maxQueuedPerOwner: 0 });
    expect(() => lookupLimits(0, 1)).toThrow('maxInFlight');
  });
});
