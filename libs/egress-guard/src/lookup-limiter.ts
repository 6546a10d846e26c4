/** The addresses a name resolved to, as a resolver returns them. */
export type LookupAnswers = readonly { address: string; family?: number }[];

/** What the limiter tells the lookup it runs: until when anyone waits for its answer (the latest of their deadlines). */
export interface LookupQuery {
  /** Epoch milliseconds; a lookup should end by then (one that does not keeps its slot until it ends). */
  readonly deadline: number;
}

/**
 * The code with which a lookup says it ran out of time (c-ares' ETIMEOUT): its callers are refused as
 * `timeout_running`, and one that joined it for a later deadline than it ran for is looked up again.
 */
export const LOOKUP_TIMED_OUT = 'ETIMEOUT';

/** What a caller tells a resolver about one lookup: whose it is (fairness) and until when it waits. */
export interface LookupContext {
  /** Whose lookup this is (the tenant): one owner cannot take every slot. */
  readonly owner?: string;
  /** Epoch milliseconds after which the caller stops waiting. */
  readonly deadline?: number;
}

export interface LookupLimits {
  /**
   * Lookups in flight at once in this process. A lookup holds its slot until it ends: a DNS query (c-ares) by its
   * deadline, then (a name DNS says does not exist) a read of the hosts file.
   */
  readonly maxInFlight: number;
  /** Of those, how many one owner (tenant) may have started. */
  readonly maxInFlightPerOwner: number;
  /** Lookups waiting for a slot, all owners together; one more is refused at once. */
  readonly maxQueued: number;
  /** Lookups waiting for a slot for one owner. */
  readonly maxQueuedPerOwner: number;
}

/**
 * Limits from the two operator settings (EGRESS_DNS_MAX_IN_FLIGHT, EGRESS_DNS_MAX_QUEUED): one owner may hold
 * half of the slots (at least one) and a quarter of the queue (at least one place).
 */
export function lookupLimits(maxInFlight: number, maxQueued: number): LookupLimits {
  if (!Number.isInteger(maxInFlight) || maxInFlight < 1) throw new Error('lookup limits: maxInFlight must be a positive whole number');
  if (!Number.isInteger(maxQueued) || maxQueued < 0) throw new Error('lookup limits: maxQueued must be a whole number ≥ 0');
  return {
    maxInFlight,
    maxInFlightPerOwner: Math.max(1, Math.floor(maxInFlight / 2)),
    maxQueued,
    maxQueuedPerOwner: Math.max(maxQueued === 0 ? 0 : 1, Math.ceil(maxQueued / 4)),
  };
}

/**
 * 2 lookups at most, 1 per tenant: the DNS queries one process has out at once for tenant-given names.
 */
export const DEFAULT_LOOKUP_LIMITS: LookupLimits = lookupLimits(2, 64);

/** Why a lookup was refused: no place in the queue, or the caller's deadline passed while queued or while the lookup ran. */
export type LookupRefusal = 'queue_full' | 'timeout_queued' | 'timeout_running';

export const LOOKUP_REFUSALS: readonly LookupRefusal[] = ['queue_full', 'timeout_queued', 'timeout_running'];

export class LookupRefusedError extends Error {
  constructor(
    readonly reason: LookupRefusal,
    message: string,
  ) {
    super(message);
    this.name = 'LookupRefusedError';
  }
}

export interface LookupStats {
  /** Lookups holding a slot (a DNS query, or a getaddrinfo call on a threadpool thread), whether or not anyone still waits for them. */
  readonly inFlight: number;
  readonly queued: number;
  /** Refusals since the limiter was created, by reason. */
  readonly refused: Readonly<Record<LookupRefusal, number>>;
}

/** One caller waiting for an answer: queued, or attached to the lookup of its name. */
interface Waiter {
  readonly name: string;
  readonly owner: string;
  /** Epoch milliseconds after which it stops waiting. */
  readonly deadline: number;
  readonly resolve: (answers: LookupAnswers) => void;
  readonly reject: (error: Error) => void;
  timer: NodeJS.Timeout | undefined;
  /** Where it waits: a queue, or the running lookup of its name. */
  state: 'queued' | 'running' | 'done';
}

interface Running {
  readonly owner: string;
  readonly waiters: Set<Waiter>;
  /** The deadline the lookup was started with: the latest of its waiters' when it started. */
  readonly deadline: number;
}

const DEFAULT_DEADLINE_MS = 10_000;

/**
 * Bounds the host name lookups of a process. The lookup it runs is told the latest deadline of those waiting for it
 * (`LookupQuery`); the system's (`DnsLookup`) asks DNS through c-ares and ends by that deadline (a lookup injected
 * in its place may run longer). Here:
 *
 * - at most `maxInFlight` lookups run at once, and a slot is freed only when the underlying lookup ends, never
 *   when a caller stops waiting (its query is still out);
 * - one owner (tenant) starts at most `maxInFlightPerOwner` of them; waiting lookups are served round-robin
 *   by owner, so one tenant's slow names do not stand ahead of another tenant's lookup;
 * - lookups of a name already being looked up join that lookup instead of taking another slot;
 * - a lookup waits in a bounded queue (`maxQueued`, `maxQueuedPerOwner`) within its caller's own deadline and is
 *   refused (`LookupRefusedError`) when the queue is full or the deadline passes.
 */
export class LookupLimiter {
  private readonly running = new Map<string, Running>();
  private readonly inFlightByOwner = new Map<string, number>();
  /** Waiting lookups per owner; the Map's order is the round-robin order (an owner just served moves to the end). */
  private readonly queues = new Map<string, Waiter[]>();
  private queuedCount = 0;
  private readonly refusals: Record<LookupRefusal, number> = { queue_full: 0, timeout_queued: 0, timeout_running: 0 };
  private limits: LookupLimits;

  /** The limited resolver: `(host, context) => answers`, through the limiter. */
  readonly resolver: (host: string, context?: LookupContext) => Promise<LookupAnswers>;

  constructor(
    private readonly lookup: (host: string, query: LookupQuery) => Promise<LookupAnswers>,
    limits: LookupLimits = DEFAULT_LOOKUP_LIMITS,
  ) {
    this.limits = limits;
    this.resolver = (host, context) => this.resolve(host, context);
  }

  /** New limits (from the process's configuration); lookups already running keep their slots. */
  configure(limits: LookupLimits): void {
    this.limits = limits;
    this.dispatch();
  }

  stats(): LookupStats {
    return { inFlight: this.inFlight, queued: this.queuedCount, refused: { ...this.refusals } };
  }

  private get inFlight(): number {
    return this.running.size;
  }

  resolve(name: string, context: LookupContext = {}): Promise<LookupAnswers> {
    const owner = context.owner ?? '';
    const deadline = context.deadline ?? Date.now() + DEFAULT_DEADLINE_MS;
    return new Promise<LookupAnswers>((resolve, reject) => {
      const waiter: Waiter = { name, owner, deadline, resolve, reject, timer: undefined, state: 'queued' };
      if (deadline <= Date.now()) {
        this.refuse(waiter, 'timeout_queued', `DNS lookup of ${name} not started: its deadline has passed`);
        return;
      }
      const running = this.running.get(name);
      if (running) {
        this.attach(waiter, running);
      } else if (this.inFlight < this.limits.maxInFlight && this.ownerInFlight(owner) < this.limits.maxInFlightPerOwner) {
        this.start(waiter);
      } else {
        const queue = this.queues.get(owner) ?? [];
        if (this.queuedCount >= this.limits.maxQueued || queue.length >= this.limits.maxQueuedPerOwner) {
          this.refuse(waiter, 'queue_full', `DNS lookup of ${name} refused: ${this.inFlight} lookups in flight and the lookup queue is full`);
          return;
        }
        queue.push(waiter);
        this.queues.set(owner, queue);
        this.queuedCount++;
      }
      if (waiter.state === 'done') return;
      waiter.timer = setTimeout(() => this.expire(waiter), Math.max(0, deadline - Date.now()));
      waiter.timer.unref();
    });
  }

  private ownerInFlight(owner: string): number {
    return this.inFlightByOwner.get(owner) ?? 0;
  }

  private attach(waiter: Waiter, running: Running): void {
    waiter.state = 'running';
    running.waiters.add(waiter);
  }

  /**
   * Takes a slot for the waiter's name; queued waiters for the same name join it. The lookup runs until the latest
   * deadline among them.
   */
  private start(first: Waiter): void {
    const { name, owner } = first;
    const joining = [first];
    for (const [queueOwner, queue] of this.queues) {
      const same = queue.filter((w) => w.name === name);
      if (same.length === 0) continue;
      const rest = queue.filter((w) => w.name !== name);
      if (rest.length) this.queues.set(queueOwner, rest);
      else this.queues.delete(queueOwner);
      this.queuedCount -= same.length;
      joining.push(...same);
    }
    const running: Running = { owner, waiters: new Set(), deadline: Math.max(...joining.map((w) => w.deadline)) };
    this.running.set(name, running);
    this.inFlightByOwner.set(owner, this.ownerInFlight(owner) + 1);
    for (const w of joining) this.attach(w, running);
    let pending: Promise<LookupAnswers>;
    try {
      pending = this.lookup(name, { deadline: running.deadline });
    } catch (error) {
      pending = Promise.reject(error as Error);
    }
    // The slot is held until the lookup itself ends, whoever still waits for it.
    pending.then(
      (answers) =>
        this.finish(name, running, (w) => {
          this.done(w);
          w.resolve(answers);
        }),
      (error: Error) => this.finish(name, running, (w) => this.fail(w, running, error)),
    );
  }

  private finish(name: string, running: Running, settle: (w: Waiter) => void): void {
    this.running.delete(name);
    const left = this.ownerInFlight(running.owner) - 1;
    if (left > 0) this.inFlightByOwner.set(running.owner, left);
    else this.inFlightByOwner.delete(running.owner);
    const waiters = [...running.waiters];
    running.waiters.clear();
    for (const waiter of waiters) settle(waiter);
    this.dispatch();
  }

  /**
   * A lookup failed. One that ran out of time refuses its waiters as `timeout_running`, except those that joined it
   * for a later deadline than it ran for: they wait in the queue again (at the head of their owner's), for a lookup
   * of their own within their deadline. Any other failure is the waiters' answer.
   */
  private fail(waiter: Waiter, running: Running, error: Error): void {
    if ((error as NodeJS.ErrnoException).code !== LOOKUP_TIMED_OUT) {
      this.done(waiter);
      waiter.reject(error);
    } else if (waiter.deadline > running.deadline && waiter.deadline > Date.now()) {
      waiter.state = 'queued';
      this.queues.set(waiter.owner, [waiter, ...(this.queues.get(waiter.owner) ?? [])]);
      this.queuedCount++;
    } else {
      this.refuse(waiter, 'timeout_running', `DNS lookup of ${waiter.name} timed out`);
    }
  }

  /** Starts queued lookups while slots are free, taking owners in turn and skipping those at their own limit. */
  private dispatch(): void {
    while (this.inFlight < this.limits.maxInFlight) {
      const next = this.nextQueued();
      if (!next) return;
      this.start(next);
    }
  }

  private nextQueued(): Waiter | undefined {
    for (const [owner, queue] of this.queues) {
      if (this.ownerInFlight(owner) >= this.limits.maxInFlightPerOwner) continue;
      const waiter = queue.shift()!;
      this.queues.delete(owner);
      // Served: to the back of the round.
      if (queue.length) this.queues.set(owner, queue);
      this.queuedCount--;
      return waiter;
    }
    return undefined;
  }

  /** The waiter's deadline passed: it stops waiting; a lookup it started keeps its slot until it ends. */
  private expire(waiter: Waiter): void {
    if (waiter.state === 'queued') {
      const queue = this.queues.get(waiter.owner) ?? [];
      const at = queue.indexOf(waiter);
      if (at >= 0) {
        queue.splice(at, 1);
        this.queuedCount--;
        if (queue.length === 0) this.queues.delete(waiter.owner);
      }
      this.refuse(waiter, 'timeout_queued', `DNS lookup of ${waiter.name} timed out waiting for a lookup slot`);
    } else if (waiter.state === 'running') {
      this.running.get(waiter.name)?.waiters.delete(waiter);
      this.refuse(waiter, 'timeout_running', `DNS lookup of ${waiter.name} timed out`);
    }
  }

  private refuse(waiter: Waiter, reason: LookupRefusal, message: string): void {
    this.done(waiter);
    this.refusals[reason]++;
    waiter.reject(new LookupRefusedError(reason, message));
  }

  private done(waiter: Waiter): void {
    waiter.state = 'done';
    clearTimeout(waiter.timer);
  }
}
