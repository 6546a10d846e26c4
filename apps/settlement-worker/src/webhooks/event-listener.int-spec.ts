import { randomUUID } from 'node:crypto';

import type { Queue } from 'bullmq';
import type { Redis } from 'ioredis';

import type { WorkerConfig } from '@payorch/config';
import { createPrismaClient, Database, type PrismaClient } from '@payorch/db';
import type { Logger } from '@payorch/logging';
import { webhooksChangedChannel } from '@payorch/operations';
import { createTestDatabase, type TestDatabase } from '@payorch/testing';

import { WebhookEventListener } from './event-listener';

/**
 * Issue 19 (docs/scaling.md, "what breaks first" 2): every domain event of every tenant became a `webhook.fanout` job
 * and a fan-out transaction, webhooks or not. The listener now enqueues only events some enabled endpoint of the
 * tenant subscribes to, and forgets a tenant's subscriptions when the gateway announces a change.
 */
describe(`${WebhookEventListener.name} (which events become fan-out jobs)`, () => {
  const PREFIX = 'listener-test';
  let testDb: TestDatabase;
  let owner: PrismaClient;
  let db: Database;
  let tenantId: string;
  const added: Array<{ jobId?: string; data: unknown }> = [];
  const queue = {
    add: async (_name: string, data: unknown, opts: { jobId?: string }) => {
      added.push({ jobId: opts.jobId, data });
      return {};
    },
  } as unknown as Queue;
  const config = { REDIS_KEY_PREFIX: PREFIX } as WorkerConfig;
  const logger = { warn: () => undefined } as unknown as Logger;
  const subscriber = {} as Redis;

  beforeAll(async () => {
    testDb = await createTestDatabase();
    owner = createPrismaClient(testDb.adminUrl, { max: 1 });
    db = Database.connect(testDb.appUrl, 2);
    tenantId = (await owner.tenant.create({ data: { name: 'T' } })).id;
  });

  afterAll(async () => {
    await db.close();
    await owner.$disconnect();
    await testDb.drop();
  });

  /** Hands the listener one published event, as its pattern subscription would, and waits until it is handled. */
  const deliver = async (listener: WebhookEventListener, type: string): Promise<string> => {
    const id = randomUUID();
    const message = JSON.stringify({ id, tenantId, type, subjectType: 'operation', subjectId: null, data: {}, createdAt: new Date().toISOString() });
    await (listener as unknown as { onMessage(channel: string, message: string): Promise<void> }).onMessage(`${PREFIX}:events:${tenantId}`, message);
    return id;
  };
  const announce = (listener: WebhookEventListener) =>
    (listener as unknown as { onChannelMessage(channel: string, message: string): void }).onChannelMessage(webhooksChangedChannel(PREFIX), tenantId);

  it('enqueues nothing for a tenant without endpoints, then, once a change is announced, only the subscribed types', async () => {
    const listener = new WebhookEventListener(config, logger, db, queue, subscriber);
    added.length = 0;
    await deliver(listener, 'operation.completed');
    await deliver(listener, 'terminal.online');
    expect(added).toEqual([]);

    await owner.webhookEndpoint.create({
      data: { tenantId, url: 'https://example.test/hook', eventTypes: ['operation.completed'], secretEncrypted: 'x', enabled: true },
    });
    announce(listener);
    const completed = await deliver(listener, 'operation.completed');
    await deliver(listener, 'terminal.online');
    expect(added).toEqual([{ jobId: completed, data: { tenantId, eventId: completed } }]);

    // A disabled endpoint subscribes to nothing; `*` to everything.
    await owner.webhookEndpoint.updateMany({ where: { tenantId }, data: { enabled: false } });
    await owner.webhookEndpoint.create({ data: { tenantId, url: 'https://example.test/all', eventTypes: ['*'], secretEncrypted: 'x', enabled: true } });
    announce(listener);
    const online = await deliver(listener, 'terminal.online');
    expect(added.at(-1)).toEqual({ jobId: online, data: { tenantId, eventId: online } });
  });

  it('lets every event through while the subscriptions cannot be read (the fan-out job decides)', async () => {
    const failing = { withTenant: () => Promise.reject(new Error('database away')) } as unknown as Database;
    const listener = new WebhookEventListener(config, logger, failing, queue, subscriber);
    added.length = 0;
    const id = await deliver(listener, 'agent.online');
    expect(added).toEqual([{ jobId: id, data: { tenantId, eventId: id } }]);
  });

  it('drops a message that is JSON of no object (null, an array, a number, a string): no rejection, nothing enqueued', async () => {
    // Whoever can PUBLISH on Redis chooses the message: `null` rejected the listener's unawaited promise, which ended
    // every worker's process (until 2026-12-07).
    const listener = new WebhookEventListener(config, logger, db, queue, subscriber);
    added.length = 0;
    const onMessage = (listener as unknown as { onMessage(channel: string, message: string): Promise<void> }).onMessage.bind(listener);
    for (const message of ['null', '[]', '1', '"x"', 'true', '{']) await expect(onMessage(`${PREFIX}:events:${tenantId}`, message)).resolves.toBeUndefined();
    expect(added).toEqual([]);
  });
});
