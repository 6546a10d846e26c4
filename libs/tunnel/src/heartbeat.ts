import type { TimerApi } from './timers';

export interface HeartbeatOptions {
  /** A PING is sent every `intervalMs`. */
  intervalMs: number;
  /** The peer is dead after this many intervals in a row without any inbound frame. */
  maxMissed: number;
}

export interface HeartbeatHooks {
  heartbeatPing(timestamp: number): void;
  heartbeatLost(silentMs: number): void;
}

/**
 * PING scheduling and dead-peer detection (docs/tunnel.md §7). Any inbound frame proves the peer
 * alive, not only PONG: under heavy DATA a PONG may queue behind payload, and the peer is clearly
 * not dead. A dead peer is detected after at most (maxMissed + 1) x intervalMs of silence.
 *
 * Heartbeats have no timer of their own: every heartbeat with the same timers and interval turns on one
 * {@link HeartbeatWheel} (a connector holds thousands of idle tunnels; a Timeout and its closure per tunnel were
 * about a sixth of an idle tunnel's memory, issue 19).
 */
export class Heartbeat {
  private missed = 0;
  private lastAliveAt = 0;
  private rtt: number | undefined;
  private wheel: HeartbeatWheel | undefined;
  /** @internal HeartbeatWheel: the slot this heartbeat turns in while started. */
  slot = -1;

  constructor(
    private readonly options: HeartbeatOptions,
    private readonly timers: TimerApi,
    private readonly hooks: HeartbeatHooks,
  ) {}

  /** Round-trip time measured by the last PONG, in ms. */
  get rttMs(): number | undefined {
    return this.rtt;
  }

  start(): void {
    this.stop();
    this.lastAliveAt = this.timers.now();
    this.wheel = HeartbeatWheel.of(this.timers, this.options.intervalMs);
    this.wheel.add(this);
  }

  stop(): void {
    this.wheel?.remove(this);
    this.wheel = undefined;
  }

  markAlive(): void {
    this.missed = 0;
    this.lastAliveAt = this.timers.now();
  }

  handlePong(timestamp: number): void {
    const rtt = this.timers.now() - timestamp;
    if (rtt >= 0) this.rtt = rtt;
  }

  /** @internal HeartbeatWheel: one interval went by. */
  tick(now: number): void {
    if (this.missed >= this.options.maxMissed) {
      this.stop();
      this.hooks.heartbeatLost(now - this.lastAliveAt);
      return;
    }
    this.missed += 1;
    this.hooks.heartbeatPing(now);
  }
}

/** Slots of a wheel: its timer fires SLOTS times per interval, each time for the heartbeats of one slot. */
const SLOTS = 16;

/**
 * One timer for every heartbeat of an interval (per TimerApi, so fake timers in tests get their own): the interval
 * is cut in SLOTS slots and a heartbeat ticks once per turn, in the slot it was added to — the one the wheel reaches
 * last, so its first tick comes one interval (to within intervalMs / SLOTS) after its start, as a timer of its own
 * would. The PINGs of many tunnels are spread over the interval, not sent in one burst. The timer runs only while
 * the wheel has heartbeats.
 */
export class HeartbeatWheel {
  private static readonly wheels = new WeakMap<TimerApi, Map<number, HeartbeatWheel>>();

  static of(timers: TimerApi, intervalMs: number): HeartbeatWheel {
    let byInterval = HeartbeatWheel.wheels.get(timers);
    if (byInterval === undefined) HeartbeatWheel.wheels.set(timers, (byInterval = new Map()));
    let wheel = byInterval.get(intervalMs);
    if (wheel === undefined) byInterval.set(intervalMs, (wheel = new HeartbeatWheel(timers, intervalMs)));
    return wheel;
  }

  private readonly slots: Set<Heartbeat>[] = Array.from({ length: SLOTS }, () => new Set());
  /** The slot the next firing serves. */
  private cursor = 0;
  private size = 0;
  private timer: unknown;
  /** When the next firing is due (ms, the timers' clock): firings are SLOTS per interval exactly, without drift. */
  private nextAt = 0;

  private constructor(
    private readonly timers: TimerApi,
    private readonly intervalMs: number,
  ) {}

  add(heartbeat: Heartbeat): void {
    // The slot served last in a turn from now: the one before the cursor.
    heartbeat.slot = (this.cursor + SLOTS - 1) % SLOTS;
    this.slots[heartbeat.slot]!.add(heartbeat);
    const now = this.timers.now();
    if (this.size++ === 0 || now - this.nextAt > this.intervalMs) {
      // Started afresh (or its timer was lost: a fake clock uninstalled under it in a test): the turn begins now, so
      // this heartbeat's slot comes an interval from now.
      if (this.timer !== undefined) this.timers.clearTimeout(this.timer);
      this.cursor = (heartbeat.slot + 1) % SLOTS;
      this.nextAt = now;
      this.schedule();
    }
  }

  remove(heartbeat: Heartbeat): void {
    if (heartbeat.slot < 0 || !this.slots[heartbeat.slot]!.delete(heartbeat)) return;
    heartbeat.slot = -1;
    if (--this.size === 0 && this.timer !== undefined) {
      this.timers.clearTimeout(this.timer);
      this.timer = undefined;
    }
  }

  private schedule(): void {
    // Late (a busy event loop, a suspended process): the turn stretches, as separate timers would, instead of firing
    // the missed slots in a burst that would count intervals the peer had no chance to answer in.
    this.nextAt = Math.max(this.nextAt, this.timers.now() - 1) + this.intervalMs / SLOTS;
    this.timer = this.timers.setTimeout(() => this.fire(), Math.max(0, Math.round(this.nextAt) - this.timers.now()));
  }

  private fire(): void {
    this.timer = undefined;
    const slot = this.slots[this.cursor]!;
    this.cursor = (this.cursor + 1) % SLOTS;
    const now = this.timers.now();
    // A copy: a tick may stop its heartbeat (a dead peer) or another one (the tunnel closes others' streams).
    for (const heartbeat of [...slot]) if (heartbeat.slot >= 0) heartbeat.tick(now);
    if (this.size > 0 && this.timer === undefined) this.schedule();
  }
}
