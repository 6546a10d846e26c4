import { Redis } from 'ioredis';

import type { TerminalCommand } from '@payorch/domain';
import { OwnedRedis, waitFor } from '@payorch/testing';

import { CommandConsumer } from './consumer';
import { RedisTerminalCommandDispatcher } from './dispatcher';
import { busKeys } from './keys';
import { AgentOwnership } from './ownership';

const TENANT = '11111111-1111-4111-8111-111111111111';
const TERMINAL = '22222222-2222-4222-8222-222222222222';
const AGENT = '33333333-3333-4333-8333-333333333333';
const refresh: TerminalCommand = { kind: 'terminal.refresh_info', tenantId: TENANT, terminalId: TERMINAL };
const PREFIX = 'bus-restart';

/** The fault of issue 15: Redis restarts empty (SIGKILL, no persistence) under a running bus. */
describe('command bus across a Redis restart (owned redis-server)', () => {
  jest.setTimeout(20_000);
  const server = new OwnedRedis();
  let redis: Redis;
  let dispatcherRedis: Redis;
  let consumer: CommandConsumer;
  let dispatcher: RedisTerminalCommandDispatcher;
  let ownership: AgentOwnership;
  const recovered: string[] = [];
  const reasserted: string[] = [];
  const lost: string[] = [];
  let executed = 0;

  beforeAll(async () => {
    await server.start();
    // As the connector and the worker build theirs: bounded retries per command, reconnect forever.
    redis = new Redis(server.url, { maxRetriesPerRequest: 3 });
    redis.on('error', () => undefined);
    dispatcherRedis = new Redis(server.url, { maxRetriesPerRequest: 3 });
    dispatcherRedis.on('error', () => undefined);
    consumer = new CommandConsumer({
      redis,
      prefix: PREFIX,
      instanceId: 'c1',
      blockMs: 200,
      handler: async () => ((executed += 1), { ok: true, result: 'c1' }),
      onRecovered: (reason) => recovered.push(reason),
    });
    await consumer.start();
    ownership = new AgentOwnership({
      redis,
      prefix: PREFIX,
      instanceId: 'c1',
      ttlMs: 30_000,
      onLost: (id) => lost.push(id),
      onReasserted: (ids) => reasserted.push(...ids),
    });
    await ownership.claim(AGENT);
    ownership.start();
    dispatcher = new RedisTerminalCommandDispatcher({
      redis: dispatcherRedis,
      prefix: PREFIX,
      resolveAgent: async () => ({ agentId: AGENT }),
      blockMs: 200,
      timeoutsMs: { 'terminal.refresh_info': 5000 },
    });
  });

  afterAll(async () => {
    ownership?.stop();
    await dispatcher?.close();
    await consumer?.stop();
    redis?.disconnect();
    dispatcherRedis?.disconnect();
    await server.stop();
  });

  it('answers commands again within 5 s of Redis answering, re-asserting ownership and the group', async () => {
    expect(await dispatcher.dispatch(refresh)).toEqual({ ok: true, result: 'c1' });

    await server.restart();
    const back = Date.now();
    const probe = new Redis(server.url);
    expect(await probe.exists(busKeys(PREFIX).requests('c1'))).toBe(0); // Redis really lost the bus

    // The first command after the restart, sent as soon as the owner key is back, is answered in time.
    await waitFor(async () => (await probe.get(busKeys(PREFIX).agentOwner(AGENT))) === 'c1', { timeoutMs: 5_000, what: 'ownership re-asserted' });
    const reply = await dispatcher.dispatch(refresh);
    expect(reply).toEqual({ ok: true, result: 'c1' });
    expect(Date.now() - back).toBeLessThan(5000);
    expect(executed).toBe(2);
    expect(reasserted).toEqual([AGENT]);
    expect(lost).toEqual([]);
    expect(recovered.length).toBeGreaterThanOrEqual(1);
    expect(await probe.pttl(busKeys(PREFIX).agentOwner(AGENT))).toBeGreaterThan(0);
    expect(consumer.status()).toMatchObject({ running: true, problem: null });
    expect(await consumer.backlog()).toEqual({ pending: 0, lag: 0 });
    probe.disconnect();
  });

  it('recreates the group on NOGROUP without a reconnect (FLUSHALL)', async () => {
    const probe = new Redis(server.url);
    const before = recovered.length;
    await probe.flushall();
    await waitFor(async () => recovered.length > before && (await probe.exists(busKeys(PREFIX).requests('c1'))) === 1, {
      timeoutMs: 5_000,
      what: 'group recreated',
    });
    expect(recovered.slice(before)).toContain('NOGROUP');
    await ownership.refresh();
    expect(await dispatcher.dispatch(refresh)).toEqual({ ok: true, result: 'c1' });
    probe.disconnect();
  });

  it('answers TIMEOUT, never late, for a command whose request Redis lost', async () => {
    const before = executed;
    const probe = new Redis(server.url);
    // A dispatch that is already waiting for its reply when Redis dies: the request entry is lost.
    await consumer.stop();
    const pending = new RedisTerminalCommandDispatcher({
      redis: dispatcherRedis,
      prefix: PREFIX,
      resolveAgent: async () => ({ agentId: AGENT }),
      blockMs: 200,
      timeoutsMs: { 'terminal.refresh_info': 1500 },
    });
    const reply = pending.dispatch(refresh);
    await waitFor(async () => (await probe.xlen(busKeys(PREFIX).requests('c1'))) === 1, { timeoutMs: 5_000, what: 'request queued' });
    probe.disconnect();
    await server.restart();
    await consumer.start();
    expect(await reply).toMatchObject({ ok: false, code: 'TIMEOUT' });
    expect(executed).toBe(before);
    await pending.close();
  });
});
