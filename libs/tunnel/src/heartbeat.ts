import type { TimerApi } from './timers';

export interface HeartbeatOptions {
  /** A PING is sent every `intervalMs`. */
  intervalMs: number;
  /** The peer is dead after this many intervals in a row without any inbound frame. */
  maxMissed: number;
}

export interface HeartbeatHooks {
  sendPing(timestamp: number): void;
  onDead(silentMs: number): void;
}

/**
 * PING scheduling and dead-peer detection (docs/tunnel.md §7). Any inbound frame proves the peer
 * alive, not only PONG: under heavy DATA a PONG may queue behind payload, and the peer is clearly
 * not dead. A dead peer is detected after at most (maxMissed + 1) x intervalMs of silence.
 */
export class Heartbeat {
  private timer: unknown;
  private missed = 0;
  private lastAliveAt = 0;
  private rtt: number | undefined;

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
    this.lastAliveAt = this.timers.now();
    this.schedule();
  }

  stop(): void {
    if (this.timer !== undefined) this.timers.clearTimeout(this.timer);
    this.timer = undefined;
  }

  markAlive(): void {
    this.missed = 0;
    this.lastAliveAt = this.timers.now();
  }

  handlePong(timestamp: number): void {
    const rtt = this.timers.now() - timestamp;
    if (rtt >= 0) this.rtt = rtt;
  }

  private schedule(): void {
    this.timer = this.timers.setTimeout(() => this.tick(), this.options.intervalMs);
  }

  private tick(): void {
    this.timer = undefined;
    const now = this.timers.now();
    if (this.missed >= this.options.maxMissed) {
      this.hooks.onDead(now - this.lastAliveAt);
      return;
    }
    this.missed += 1;
    this.hooks.sendPing(now);
    this.schedule();
  }
}
