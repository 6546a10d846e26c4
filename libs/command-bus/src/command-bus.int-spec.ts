import { Redis } from 'ioredis';

import type { TerminalCommand } from '@payorch/domain';
import { deleteRedisPrefix, testRedisPrefix, testRedisUrl, waitFor } from '@payorch/testing';

import { CommandConsumer } from './consumer';
import { RedisTerminalCommandDispatcher } from './dispatcher';
import { busKeys } from './keys';
import { AgentOwnership } from './ownership';

const TENANT = '11111111-1111-4111-8111-111111111111';
const TERMINAL = '22222222-2222-4222-8222-222222222222';
const AGENT = '33333333-3333-4333-8333-333333333333';
const refresh: TerminalCommand = { kind: 'terminal.refresh_info', tenantId: TENANT, terminalId: TERMINAL };

describe('command bus (real Redis)', () => {
  const redis = new Redis(testRedisUrl());
  const prefix = testRedisPrefix('bus');
  const closers: Array<() => Promise<unknown>> = [];
  const dispatcher = (timeoutMs = 2000) => {
    const d = new RedisTerminalCommandDispatcher({
      redis,
      prefix,
      resolveAgent: async () => ({ agentId: AGENT }),
      blockMs: 100,
      timeoutsMs: { 'terminal.refresh_info': timeoutMs },
    });
    closers.push(() => d.close());
    return d;
  };
  const consumer = (instanceId: string, handler: ConstructorParameters<typeof CommandConsumer>[0]['handler']) => {
    const c = new CommandConsumer({ redis, prefix, instanceId, handler, blockMs: 100 });
    closers.push(() => c.stop());
    return c;
  };

  afterAll(async () => {
    for (const close of closers.reverse()) await close();
    await deleteRedisPrefix(redis, prefix);
    await redis.quit();
  });

  it('answers TERMINAL_OFFLINE without queueing when no instance owns the agent', async () => {
    expect(await dispatcher().dispatch(refresh)).toMatchObject({ ok: false, code: 'TERMINAL_OFFLINE' });
    expect(await redis.keys(`${prefix}:bus:req:*`)).toEqual([]);
  });

  it('delivers each command once, to the owning instance only', async () => {
    const seen: Record<string, number> = { i1: 0, i2: 0 };
    await consumer('i1', async () => ((seen.i1! += 1), { ok: true, result: 'i1' })).start();
    await consumer('i2', async () => ((seen.i2! += 1), { ok: true, result: 'i2' })).start();
    const own1 = new AgentOwnership({ redis, prefix, instanceId: 'i1', ttlMs: 5000 });
    const own2 = new AgentOwnership({ redis, prefix, instanceId: 'i2', ttlMs: 5000 });
    await own1.claim(AGENT);
    const d = dispatcher();
    const replies = await Promise.all([1, 2, 3].map(() => d.dispatch(refresh)));
    expect(replies).toEqual([1, 2, 3].map(() => ({ ok: true, result: 'i1' })));
    expect(seen).toEqual({ i1: 3, i2: 0 });

    // The agent reconnects to i2: i2 takes the key over; i1 learns it on its next refresh.
    const lost: string[] = [];
    const watcher = new AgentOwnership({ redis, prefix, instanceId: 'i1', ttlMs: 5000, onLost: (id) => lost.push(id) });
    await watcher.claim(AGENT);
    await own2.claim(AGENT);
    await watcher.refresh();
    expect(lost).toEqual([AGENT]);
    expect(await own1.release(AGENT)).toBe(false);
    expect(await d.dispatch(refresh)).toEqual({ ok: true, result: 'i2' });
    expect(seen).toEqual({ i1: 3, i2: 1 });
    expect(await own2.release(AGENT)).toBe(true);
    expect(await own2.owner(AGENT)).toBeNull();
  });

  it('never executes a command whose dispatcher already timed out (owner down, then back)', async () => {
    let executed = 0;
    const own = new AgentOwnership({ redis, prefix, instanceId: 'sleepy', ttlMs: 5000 });
    await own.claim(AGENT);
    const late = consumer('sleepy', async () => ((executed += 1), { ok: true }));
    // The stream exists (as for an instance that crashed mid-read) but nobody reads it yet.
    await redis.xgroup('CREATE', `${prefix}:bus:req:sleepy`, 'connector', '$', 'MKSTREAM');
    expect(await dispatcher(150).dispatch(refresh)).toMatchObject({ ok: false, code: 'TIMEOUT' });
    await late.start();
    // A fresh command queued behind the expired one: once it is answered, the consumer has read past the expired one.
    expect(await dispatcher().dispatch(refresh)).toEqual({ ok: true });
    expect(executed).toBe(1);
    expect(await redis.xlen(`${prefix}:bus:req:sleepy`)).toBe(0);
    await own.release(AGENT);
  });

  it('never executes an entry twice when the group position goes back (a Cluster failover to a lagging replica)', async () => {
    const executed = new Map<string, number>();
    const redelivered: string[] = [];
    let release!: () => void;
    const held = new Promise<void>((resolve) => (release = resolve));
    const own = new AgentOwnership({ redis, prefix, instanceId: 'rolled', ttlMs: 5000 });
    await own.claim(AGENT);
    const c = new CommandConsumer({
      redis,
      prefix,
      instanceId: 'rolled',
      blockMs: 100,
      handler: async (command) => {
        const id = (command as { operationId: string }).operationId;
        executed.set(id, (executed.get(id) ?? 0) + 1);
        await held;
        return { ok: true };
      },
      onRedelivered: (requestId) => redelivered.push(requestId),
    });
    closers.push(() => c.stop());
    await c.start();
    const cancel: TerminalCommand = { kind: 'operation.cancel', tenantId: TENANT, terminalId: TERMINAL, operationId: '44444444-4444-4444-8444-444444444444' };
    const reply = dispatcher().dispatch(cancel);
    await waitFor(() => executed.size === 1, { what: 'the command running' });
    // What a promoted replica that missed the XREADGROUP looks like: the group has not delivered the entry yet.
    await redis.xgroup('SETID', `${prefix}:bus:req:rolled`, 'connector', '0');
    await waitFor(() => redelivered.length === 1, { what: 'the entry delivered again' });
    release();
    expect(await reply).toEqual({ ok: true });
    expect([...executed.values()]).toEqual([1]);
    await own.release(AGENT);
  });

  it("refreshes many agents' keys in one script call per 500 on one Redis: kept, re-asserted and lost ones each told apart", async () => {
    const ids = Array.from({ length: 1_200 }, (_, i) => `44444444-4444-4444-8444-${String(i).padStart(12, '0')}`);
    const lost: string[] = [];
    const reasserted: string[][] = [];
    const mine = new AgentOwnership({ redis, prefix, instanceId: 'many', ttlMs: 5000, onLost: (id) => lost.push(id), onReasserted: (r) => reasserted.push(r) });
    for (const id of ids) await mine.claim(id);
    const other = new AgentOwnership({ redis, prefix, instanceId: 'other', ttlMs: 5000 });
    await other.claim(ids[7]!); // reconnected to another instance
    await redis.del(busKeys(prefix).agentOwner(ids[900]!)); // vanished (Redis lost it)
    await redis.pexpire(busKeys(prefix).agentOwner(ids[0]!), 50);

    const calls = jest.spyOn(redis, 'evalsha');
    try {
      await mine.refresh();
      expect(calls).toHaveBeenCalledTimes(3); // 1,200 keys: 500 + 500 + 200
    } finally {
      calls.mockRestore();
    }
    expect(lost).toEqual([ids[7]]);
    expect(reasserted).toEqual([[ids[900]]]);
    expect(await redis.pttl(busKeys(prefix).agentOwner(ids[0]!))).toBeGreaterThan(1000); // refreshed
    expect(await mine.owner(ids[900]!)).toBe('many');
    expect(await mine.owner(ids[7]!)).toBe('other');
    for (const id of ids) await mine.release(id);
    await other.release(ids[7]!);
  });

  it("keeps an agent claimed again while a heartbeat's answer that another instance owned it was on its way", async () => {
    // The agent's tunnel went to instance B and came back to A within one heartbeat: A's refresh left while the key
    // named B, and A's claim (its SET behind the refresh) came before the refresh's answer. Until 2026-12-07 that stale
    // answer dropped the agent just claimed: the key named A, which no longer refreshed it.
    const id = '55555555-5555-4555-8555-000000000001';
    const lost: string[] = [];
    const mine = new AgentOwnership({ redis, prefix, instanceId: 'flap-a', ttlMs: 5000, onLost: (agentId) => lost.push(agentId) });
    const other = new AgentOwnership({ redis, prefix, instanceId: 'flap-b', ttlMs: 5000 });
    await mine.claim(id);
    await other.claim(id);
    const heartbeat = mine.refresh();
    const back = mine.claim(id);
    await Promise.all([heartbeat, back]);
    expect(lost).toEqual([]);
    expect(mine.agents).toContain(id);
    expect(await mine.owner(id)).toBe('flap-a');
    // The next heartbeat refreshes it as its own; a real loss is still told.
    await mine.refresh();
    expect(lost).toEqual([]);
    await other.claim(id);
    await mine.refresh();
    expect(lost).toEqual([id]);
    await other.release(id);
  });

  it('lets an ownership key expire when its instance stops refreshing (crash)', async () => {
    const own = new AgentOwnership({ redis, prefix, instanceId: 'crashy', ttlMs: 1000 });
    await own.claim(AGENT);
    expect(await own.owner(AGENT)).toBe('crashy');
    const claimedAt = Date.now();
    // Nothing refreshes the key: Redis expires it after its TTL.
    await waitFor(async () => (await own.owner(AGENT)) === null, { timeoutMs: 5_000, intervalMs: 50, what: 'the ownership key to expire' });
    expect(Date.now() - claimedAt).toBeGreaterThanOrEqual(900);
    expect(await dispatcher().dispatch(refresh)).toMatchObject({ ok: false, code: 'TERMINAL_OFFLINE' });
  });
});
