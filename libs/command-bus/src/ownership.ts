import { type RedisClient, RedisScript } from '@payorch/redis';

import { busKeys } from './keys';

/**
 * For each key, in order: refreshes the TTL while it still names this instance (1); re-asserts a key that vanished
 * (2: Redis restarted or was flushed while the tunnel stayed up); leaves another instance's key alone (0). A heartbeat
 * of many agents in one call on one Redis; one key per call on a Cluster.
 */
const REFRESH = new RedisScript(`local out = {}
for i, key in ipairs(KEYS) do
  local owner = redis.call('GET', key)
  if owner == ARGV[1] then redis.call('PEXPIRE', key, ARGV[2]) out[i] = 1
  elseif owner == false then redis.call('SET', key, ARGV[1], 'PX', ARGV[2]) out[i] = 2
  else out[i] = 0 end
end
return out`);
/** Keys per REFRESH call on one Redis: each call holds Redis for its whole run (~1 µs per key). */
const REFRESH_BATCH = 500;
/** Deletes only while the key still names this instance (a newer owner elsewhere is left alone). */
const RELEASE = new RedisScript(`if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) else return 0 end`);

export interface AgentOwnershipOptions {
  redis: RedisClient;
  prefix: string;
  instanceId: string;
  /** Key TTL; the heartbeat refreshes every third of it. */
  ttlMs: number;
  /** Called when a refresh finds another instance named (the agent reconnected elsewhere). */
  onLost?: (agentId: string) => void;
  /** Called with the agents whose keys had vanished (Redis restart) and were set again. */
  onReasserted?: (agentIds: string[]) => void;
}

/**
 * Which connector instance holds which agent: `${prefix}:owner:agent:<id>` = instanceId with a TTL.
 * The instance that accepts an agent's tunnel takes the key over unconditionally (the agent chose it;
 * the older instance loses the key and learns it on its next refresh). A crashed instance's keys
 * expire after `ttlMs`, so dispatchers answer TERMINAL_OFFLINE instead of queueing to a dead instance.
 * A key that vanished while this instance still holds the agent (Redis restarted empty) is set again by
 * the next heartbeat, and at once when the connection is ready again after a reconnect.
 */
export class AgentOwnership {
  private readonly keys: ReturnType<typeof busKeys>;
  private readonly held = new Set<string>();
  /**
   * Claims made, per agent held: a heartbeat's "another instance owns it" is about the key as it was when the heartbeat
   * left. A claim made since (the agent came back to this instance meanwhile, its SET behind the heartbeat's script)
   * makes that answer stale. Until 2026-12-07 it dropped the agent just claimed: the key named this instance, which no
   * longer refreshed it, and once it expired every command for the agent's terminals answered TERMINAL_OFFLINE.
   */
  private readonly claims = new Map<string, number>();
  private timer: NodeJS.Timeout | undefined;
  private readonly onReady = () => void this.refresh().catch(() => undefined);

  constructor(private readonly options: AgentOwnershipOptions) {
    this.keys = busKeys(options.prefix);
  }

  get agents(): string[] {
    return [...this.held];
  }

  async claim(agentId: string): Promise<void> {
    this.held.add(agentId);
    this.claims.set(agentId, (this.claims.get(agentId) ?? 0) + 1);
    await this.options.redis.set(this.keys.agentOwner(agentId), this.options.instanceId, 'PX', this.options.ttlMs);
  }

  /** Gives the agent up; resolves true when this instance was still the owner. */
  async release(agentId: string): Promise<boolean> {
    this.held.delete(agentId);
    this.claims.delete(agentId);
    const deleted = (await RELEASE.run(this.options.redis, [this.keys.agentOwner(agentId)], [this.options.instanceId])) as number;
    return deleted === 1;
  }

  /** Whether the key still names this instance. */
  async owns(agentId: string): Promise<boolean> {
    return (await this.options.redis.get(this.keys.agentOwner(agentId))) === this.options.instanceId;
  }

  owner(agentId: string): Promise<string | null> {
    return this.options.redis.get(this.keys.agentOwner(agentId));
  }

  start(): void {
    if (this.timer) return;
    this.timer = setInterval(this.onReady, Math.max(250, Math.floor(this.options.ttlMs / 3)));
    this.timer.unref();
    // After a reconnect, re-assert at once rather than up to a third of the TTL later.
    this.options.redis.on('ready', this.onReady);
  }

  stop(): void {
    if (this.timer) clearInterval(this.timer);
    this.timer = undefined;
    this.options.redis.off('ready', this.onReady);
  }

  /** One heartbeat: refresh every held key; report the ones another instance took. */
  async refresh(): Promise<void> {
    const agents = [...this.held];
    if (agents.length === 0) return;
    const claimed = agents.map((agentId) => this.claims.get(agentId));
    // On a Redis Cluster the owner keys hash to every slot and one script's keys must share one: a key per call, all
    // sent at once. On one Redis, REFRESH_BATCH keys per call (5,000 agents were ~1,000 calls a second, one per key).
    const batchSize = this.options.redis.isCluster ? 1 : REFRESH_BATCH;
    const batches: Array<Promise<Array<readonly [Error | null, unknown]>>> = [];
    for (let i = 0; i < agents.length; i += batchSize) {
      const batch = agents.slice(i, i + batchSize);
      const keys = batch.map((agentId) => this.keys.agentOwner(agentId));
      batches.push(
        REFRESH.run(this.options.redis, keys, [this.options.instanceId, this.options.ttlMs]).then(
          (values) => (values as unknown[]).map((value) => [null, value] as const),
          (error: Error) => batch.map(() => [error, null] as const),
        ),
      );
    }
    const results = (await Promise.all(batches)).flat();
    const reasserted: string[] = [];
    results.forEach(([error, value], index) => {
      const agentId = agents[index]!;
      if (error || value === 1) return;
      if (value === 2) {
        // Released while this heartbeat was in flight: undo the re-assertion.
        if (!this.held.has(agentId)) void RELEASE.run(this.options.redis, [this.keys.agentOwner(agentId)], [this.options.instanceId]).catch(() => undefined);
        else reasserted.push(agentId);
        return;
      }
      // Claimed again since this heartbeat left: the answer is about the key before that claim's SET.
      if (this.claims.get(agentId) !== claimed[index]) return;
      if (!this.held.delete(agentId)) return;
      this.claims.delete(agentId);
      this.options.onLost?.(agentId);
    });
    if (reasserted.length) this.options.onReasserted?.(reasserted);
  }
}
