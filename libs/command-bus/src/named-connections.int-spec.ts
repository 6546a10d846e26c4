import { Redis } from 'ioredis';

import type { TerminalCommand } from '@payorch/domain';
import { RedisConnections } from '@payorch/redis';
import { OwnedRedis, waitFor } from '@payorch/testing';

import { CommandConsumer } from './consumer';
import { RedisTerminalCommandDispatcher } from './dispatcher';
import { busKeys } from './keys';
import { AgentOwnership } from './ownership';

const TENANT = '11111111-1111-4111-8111-111111111111';
const TERMINAL = '22222222-2222-4222-8222-222222222222';
const AGENT = '33333333-3333-4333-8333-333333333333';
const refresh: TerminalCommand = { kind: 'terminal.refresh_info', tenantId: TENANT, terminalId: TERMINAL };
const PREFIX = 'bus-named';

/** Names of the connections in CLIENT LIST that start with `prefix`. */
async function clientNames(probe: Redis, prefix: string): Promise<string[]> {
  const list = (await probe.client('LIST')) as string;
  return list
    .trim()
    .split('\n')
    .map((line) => /\bname=(\S*)/.exec(line)?.[1] ?? '')
    .filter((name) => name.startsWith(prefix))
    .sort();
}

/**
 * The bus as the apps wire it (@payorch/redis): the consumer and the dispatcher get the process's
 * `command` and `blocking` connections instead of opening duplicates, and never close them.
 */
describe('command bus on the named connections of its processes (owned redis-server)', () => {
  jest.setTimeout(20_000);
  const server = new OwnedRedis();
  let connector: RedisConnections;
  let gateway: RedisConnections;
  let consumer: CommandConsumer;
  let dispatcher: RedisTerminalCommandDispatcher;
  let ownership: AgentOwnership;
  let probe: Redis;
  const recovered: string[] = [];

  beforeAll(async () => {
    await server.start();
    probe = new Redis(server.url, { connectionName: 'probe' });
    // As the connector and the gateway declare theirs (bootstrap.ts).
    connector = new RedisConnections({
      url: server.url,
      clientName: 'connector',
      connections: { command: { enableOfflineQueue: true, maxRetriesPerRequest: 3 }, blocking: {} },
    });
    gateway = new RedisConnections({ url: server.url, clientName: 'gateway', connections: { command: {}, blocking: {} } });
    await waitFor(() => gateway.get('command').status === 'ready', { what: 'gateway command connection' });
    consumer = new CommandConsumer({
      redis: connector.get('command'),
      blocking: connector.get('blocking'),
      prefix: PREFIX,
      instanceId: 'c1',
      blockMs: 200,
      handler: async () => ({ ok: true, result: 'c1' }),
      onRecovered: (reason) => recovered.push(reason),
    });
    await consumer.start();
    ownership = new AgentOwnership({ redis: connector.get('command'), prefix: PREFIX, instanceId: 'c1', ttlMs: 30_000 });
    await ownership.claim(AGENT);
    ownership.start();
    dispatcher = new RedisTerminalCommandDispatcher({
      redis: gateway.get('command'),
      blocking: gateway.get('blocking'),
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
    await connector?.close();
    await gateway?.close();
    probe?.disconnect();
    await server.stop();
  });

  it('answers over the shared connections without opening any of its own', async () => {
    expect(await dispatcher.dispatch(refresh)).toEqual({ ok: true, result: 'c1' });
    expect(await clientNames(probe, '')).toEqual(['connector:blocking', 'connector:command', 'gateway:blocking', 'gateway:command', 'probe']);
  });

  it('recovers from a Redis restart on the shared blocking connection: group recreated, commands answered', async () => {
    await server.restart();
    const back = Date.now();
    await waitFor(async () => (await probe.get(busKeys(PREFIX).agentOwner(AGENT)).catch(() => null)) === 'c1', {
      timeoutMs: 5_000,
      what: 'ownership re-asserted',
    });
    await waitFor(async () => (await dispatcher.dispatch(refresh)).ok, { timeoutMs: 5_000, what: 'a command answered after the restart' });
    expect(Date.now() - back).toBeLessThan(5000);
    expect(recovered.length).toBeGreaterThanOrEqual(1);
    expect(consumer.status()).toMatchObject({ running: true, problem: null });
  });

  it('with Redis down, the fail-fast dispatcher is unavailable and answers at once; stopping leaves the shared connections to their owner', async () => {
    await server.kill();
    await waitFor(() => !dispatcher.isAvailable(), { what: 'dispatcher unavailable' });
    const started = Date.now();
    expect(await dispatcher.dispatch(refresh)).toMatchObject({ ok: false, code: 'INTERNAL', message: expect.stringContaining('command bus unavailable') });
    expect(Date.now() - started).toBeLessThan(1000);

    // Stopping does not wait for a read stuck on the dead server, and closes nothing it does not own.
    const stopping = Date.now();
    await consumer.stop();
    await dispatcher.close();
    expect(Date.now() - stopping).toBeLessThan(2000);
    expect(connector.get('blocking').status).not.toBe('end');
    expect(gateway.get('blocking').status).not.toBe('end');
    await server.start();
    await waitFor(() => gateway.get('command').status === 'ready' && connector.get('blocking').status === 'ready', {
      timeoutMs: 5_000,
      what: 'shared connections back',
    });
  });
});
