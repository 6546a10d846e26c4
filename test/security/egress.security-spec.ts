import { type AddressInfo, createServer, type Server } from 'node:net';

import { SecretBox } from '@payorch/domain';
import { publishEvent } from '@payorch/db';
import { NAME_REFUSED, type Resolver } from '@payorch/egress-guard';
import { workerConfigSchema, loadConfig } from '@payorch/config';

import { EgressRelayPort, type RelayOwner } from '../../apps/device-connector/src/relay/egress-relay-port';
import { RelayPortFactory } from '../../apps/device-connector/src/relay/relay-port.factory';
import { WebhookDeliveryService } from '../../apps/settlement-worker/src/webhooks/webhook-delivery.service';
import { GatewaySession, idem } from '../e2e/support/gateway-session';
import { type RunningConnector, silent, TunnelHarness } from '../e2e/support/tunnel-harness';

/**
 * Issue 13, findings 2 and 3: a tenant cannot make the platform open a connection to anything the
 * operator did not allow — not through relay egress rules, not through webhook URLs. Only loopback
 * listeners of this test are ever dialled; private, metadata and public addresses are only decided on.
 */

/** A loopback listener that counts the connections it accepted (a stand-in for our own PostgreSQL/Redis). */
/** Tests never resolve real names: a name nobody mapped is not found. */
const noNames: Resolver = async (host) => {
  throw Object.assign(new Error(`getaddrinfo ENOTFOUND ${host}`), { code: 'ENOTFOUND' });
};

async function listener(host = '127.0.0.1'): Promise<{ port: number; accepted: () => number; server: Server }> {
  let accepted = 0;
  const server = createServer((socket) => {
    accepted++;
    socket.on('error', () => undefined);
    socket.end();
  });
  await new Promise<void>((resolve) => server.listen(0, host, resolve));
  return { port: (server.address() as AddressInfo).port, accepted: () => accepted, server };
}

const close = (server: Server) => new Promise<void>((resolve) => server.close(() => resolve()));

describe('relay egress: the platform policy above tenant rules', () => {
  const h = new TunnelHarness();
  let connector: RunningConnector;
  let platform: Awaited<ReturnType<typeof listener>>;
  let onPrem: Awaited<ReturnType<typeof listener>>;
  let owner: RelayOwner;

  beforeAll(async () => {
    await h.start();
    // The operator allows one on-premises processing host (127.0.0.2 stands in for 10.20.0.5); 127.0.0.1 is "the platform".
    connector = await h.connector('sec-relay', { EGRESS_ALLOW_CIDRS: '127.0.0.2/32' });
    platform = await listener('127.0.0.1');
    onPrem = await listener('127.0.0.2');
    const agent = await h.enrolledAgent(connector.url);
    const terminalId = await h.terminal(agent, { kind: 'tcp', host: '127.0.0.1', port: 9 });
    owner = { tenantId: agent.tenantId, agentId: agent.agentId, terminalId };
    // Rules written straight into the database, as if the API had let them through: the connector must still refuse.
    for (const cidr of ['0.0.0.0/0', '::/0', '127.0.0.0/8', '169.254.169.254/32', '10.0.0.0/8']) {
      await h.owner.egressRule.createMany({ data: [platform.port, onPrem.port, 80].map((port) => ({ tenantId: agent.tenantId, cidr, port })) });
    }
  });

  afterAll(async () => {
    await h.stop();
    await close(platform.server);
    await close(onPrem.server);
  });

  const port = (resolver?: (host: string) => Promise<{ address: string }[]>) =>
    new EgressRelayPort(owner, h.appDb, connector.app.get(RelayPortFactory).limits, silent, connector.app.get(RelayPortFactory).policy, resolver);

  it.each(['127.0.0.1', '2130706433', '0177.0.0.1', '0x7f.1', '127.1', '[::ffff:7f00:1]', '::ffff:127.0.0.1', 'localhost', 'localhost.', '0.0.0.0'])(
    'never connects to the platform itself, whatever the spelling (%s), even with a /0 rule',
    async (host) => {
      const relay = port(async () => [{ address: '127.0.0.1' }]);
      await expect(relay.open({ protocol: 'tcp', host, port: platform.port, address: `${host}:${platform.port}` })).rejects.toMatchObject({ code: 'DENIED' });
      await relay.closeAll();
      expect(platform.accepted()).toBe(0);
      const row = await h.owner.relaySession.findFirstOrThrow({ where: { terminalId: owner.terminalId, host }, orderBy: { startedAt: 'desc' } });
      expect(row.outcome).toBe('denied');
      // A literal is refused as spelled; a name reads the same whatever the platform's DNS answered, with no address.
      if (host.startsWith('localhost')) expect(row).toMatchObject({ reason: expect.stringContaining('does not resolve to an address'), resolvedAddress: null });
      else expect(row.reason).toContain('denied by the platform egress policy');
    },
  );

  it('denies the cloud metadata address and private ranges without dialling them', async () => {
    const relay = port();
    for (const host of ['169.254.169.254', '0xa9fea9fe', '10.1.2.3', '[fd00:ec2::254]']) {
      await expect(relay.open({ protocol: 'tcp', host, port: 80, address: `${host}:80` })).rejects.toMatchObject({ code: 'DENIED' });
    }
    const rows = await h.owner.relaySession.findMany({ where: { terminalId: owner.terminalId, port: 80 } });
    expect(rows.map((r) => r.outcome)).toEqual(['denied', 'denied', 'denied', 'denied']);
    expect(rows.map((r) => r.reason).join(' ')).toMatch(/link_local.*link_local.*private.*unique_local/s);
  });

  it('checks every resolved address and dials the checked one (DNS rebinding fails)', async () => {
    await h.owner.egressRule.create({ data: { tenantId: owner.tenantId, host: 'proc.shop.test', port: onPrem.port } });
    await h.owner.egressRule.create({ data: { tenantId: owner.tenantId, cidr: '127.0.0.2/32', port: onPrem.port } });
    const answers = [['127.0.0.2'], ['127.0.0.1']];
    const calls: string[] = [];
    const relay = port(async (host) => {
      calls.push(host);
      return (answers.shift() ?? ['127.0.0.1']).map((address) => ({ address }));
    });
    const id = await relay.open({ protocol: 'tcp', host: 'proc.shop.test', port: onPrem.port, address: `proc.shop.test:${onPrem.port}` });
    await relay.close(id);
    expect(calls).toEqual(['proc.shop.test']);
    expect(onPrem.accepted()).toBe(1);
    expect(platform.accepted()).toBe(0);

    // A name that resolves to an allowed and a denied address is refused as a whole.
    const mixed = port(async () => [{ address: '127.0.0.2' }, { address: '127.0.0.1' }]);
    await expect(mixed.open({ protocol: 'tcp', host: 'proc.shop.test', port: onPrem.port, address: 'x' })).rejects.toMatchObject({ code: 'DENIED' });
    expect(onPrem.accepted()).toBe(1);
    await relay.closeAll();
    await mixed.closeAll();
  });

  it('does not even resolve a name no tenant rule could allow', async () => {
    const calls: string[] = [];
    const relay = port(async (host) => {
      calls.push(host);
      return [{ address: '127.0.0.2' }];
    });
    await expect(relay.open({ protocol: 'tcp', host: 'exfil.attacker.test', port: 4444, address: 'exfil.attacker.test:4444' })).rejects.toMatchObject({
      code: 'DENIED',
    });
    expect(calls).toEqual([]);
  });
});

describe('egress rules API: nothing wider than the platform policy', () => {
  const session = new GatewaySession();
  let auth: Record<string, string>;

  beforeAll(async () => {
    await session.start({ EGRESS_ALLOW_CIDRS: '' });
    auth = { Authorization: `Bearer ${(await session.tenant()).apiKey}` };
  });
  afterAll(() => session.stop());

  const create = (body: object) => session.http().post('/v1/egress-rules').set(auth).set('Idempotency-Key', idem()).send(body);

  it.each([
    [{ cidr: '0.0.0.0/0', port: 443 }, 'too_wide', null],
    [{ cidr: '::/0', port: 443 }, 'too_wide', null],
    [{ cidr: '127.0.0.1/32', port: 5432 }, 'denied_range', 'loopback'],
    [{ cidr: '10.0.0.0/8', port: 443 }, 'denied_range', 'private'],
    [{ cidr: '169.254.169.254/32', port: 80 }, 'denied_range', 'link_local'],
    [{ cidr: 'fd00:ec2::254/128', port: 80 }, 'denied_range', 'unique_local'],
    [{ host: '127.0.0.1', port: 6379 }, 'denied_host', 'loopback'],
    [{ host: '2130706433', port: 6379 }, 'denied_host', 'loopback'],
    [{ host: '0x7f.1', port: 6379 }, 'denied_host', 'loopback'],
    [{ host: 'localhost.', port: 6379 }, 'denied_host', 'loopback'],
    [{ host: '169.254.169.254', port: 80 }, 'denied_host', 'link_local'],
  ])('refuses %j with 400 EGRESS_DENIED (%s)', async (body, reason, category) => {
    const res = await create(body);
    expect(res.status).toBe(400);
    expect(res.body.error).toMatchObject({ code: 'EGRESS_DENIED', details: { reason, category } });
    expect(typeof res.body.error.requestId).toBe('string');
  });

  it('accepts a public processing host', async () => {
    expect((await create({ host: 'processing.example.com', port: 443 })).status).toBe(201);
    expect((await create({ cidr: '203.0.114.0/24', port: 443 })).status).toBe(201);
  });

  it('refuses a PATCH that widens a rule past the policy', async () => {
    const rule = await create({ host: 'processing.example.com', port: 8443 });
    const res = await session.http().patch(`/v1/egress-rules/${rule.body.id}`).set(auth).set('Idempotency-Key', idem()).send({ host: null, cidr: '0.0.0.0/0' });
    expect(res.status).toBe(400);
    expect(res.body.error.code).toBe('EGRESS_DENIED');
  });
});

describe('webhooks: no SSRF, no port scanner', () => {
  const strict = new GatewaySession();
  const loose = new GatewaySession();
  let strictAuth: Record<string, string>;
  let looseAuth: Record<string, string>;
  let looseTenant: string;

  beforeAll(async () => {
    await strict.start({ EGRESS_ALLOW_CIDRS: '' });
    strictAuth = { Authorization: `Bearer ${(await strict.tenant()).apiKey}` };
    // A development operator: http and loopback allowed (so endpoints can be created), to test delivery under other policies.
    await loose.start({ EGRESS_ALLOW_CIDRS: '127.0.0.0/8', WEBHOOK_ALLOW_HTTP: 'true' });
    const t = await loose.tenant();
    looseAuth = { Authorization: `Bearer ${t.apiKey}` };
    looseTenant = t.tenantId;
  });
  afterAll(async () => {
    await strict.stop();
    await loose.stop();
  });

  it.each([
    ['http://127.0.0.1:5432/', 'https_required'],
    ['https://127.0.0.1:5432/', 'denied_host'],
    ['https://169.254.169.254/latest/meta-data/', 'denied_host'],
    ['https://[::ffff:a9fe:a9fe]/', 'denied_host'],
    ['https://2130706433/', 'denied_host'],
    ['https://0x7f.1/', 'denied_host'],
    ['https://localhost./', 'denied_host'],
    ['https://10.0.0.1/', 'denied_host'],
    ['https://[fd00:ec2::254]/', 'denied_host'],
    ['https://metadata.internal.test/', 'denied_host'],
    ['https://nowhere.invalid/', 'denied_host'],
  ])('refuses %s at creation (%s)', async (url, reason) => {
    const res = await strict
      .http()
      .post('/v1/webhooks')
      .set(strictAuth)
      .set('Idempotency-Key', idem())
      .send({ url, eventTypes: ['*'] });
    expect(res.status).toBe(400);
    expect(res.body.error).toMatchObject({ code: 'EGRESS_DENIED', details: { field: 'url', reason } });
  });

  it('accepts a public https receiver', async () => {
    const res = await strict
      .http()
      .post('/v1/webhooks')
      .set(strictAuth)
      .set('Idempotency-Key', idem())
      .send({ url: 'https://hooks.example.com/payorch', eventTypes: ['*'] });
    expect(res.status).toBe(201);
  });

  /** A delivery service as the worker builds it, under the given operator policy. */
  function deliveryService(env: Record<string, string>, resolver: Resolver = noNames) {
    const config = loadConfig('settlement-worker', workerConfigSchema, {
      DATABASE_APP_URL: loose.testDb.appUrl,
      REDIS_URL: loose.config.REDIS_URL,
      REDIS_KEY_PREFIX: loose.config.REDIS_KEY_PREFIX,
      PAYORCH_MASTER_KEY: loose.config.PAYORCH_MASTER_KEY,
      LOG_LEVEL: 'silent',
      WEBHOOK_ATTEMPTS: '1',
      WEBHOOK_TIMEOUT_MS: '500',
      ...env,
    });
    return new WebhookDeliveryService(loose.appDb, config, SecretBox.fromConfig(config.PAYORCH_MASTER_KEY, []), silent, resolver);
  }

  /** Creates an endpoint at `url` and a delivery of one event to it; returns the delivery job data. */
  async function deliveryTo(url: string) {
    const hook = await loose
      .http()
      .post('/v1/webhooks')
      .set(looseAuth)
      .set('Idempotency-Key', idem())
      .send({ url, eventTypes: ['*'] });
    expect(hook.status).toBe(201);
    const event = await loose.appDb.withTenant(looseTenant, (tx) =>
      publishEvent(tx, looseTenant, { type: 'terminal.updated', subjectType: 'terminal', subjectId: hook.body.id, data: { probe: true } }),
    );
    const jobs: { deliveryId: string }[] = [];
    await deliveryService({}).fanout({ tenantId: looseTenant, eventId: (event as { id: string }).id }, {
      add: async (_n: string, data: { deliveryId: string }) => jobs.push(data),
    } as never);
    const mine = [];
    for (const job of jobs) {
      const d = await loose.owner.webhookDelivery.findUniqueOrThrow({ where: { id: job.deliveryId } });
      if (d.endpointId === hook.body.id) mine.push({ tenantId: looseTenant, deliveryId: job.deliveryId });
    }
    expect(mine).toHaveLength(1);
    return mine[0]!;
  }

  it('re-checks the destination at delivery: an endpoint the policy now denies is never dialled', async () => {
    const target = await listener('127.0.0.1');
    try {
      const job = await deliveryTo(`http://127.0.0.1:${target.port}/hook`);
      const step = await deliveryService({ EGRESS_ALLOW_CIDRS: '', WEBHOOK_ALLOW_HTTP: 'true' }).attempt(job);
      expect(step).toMatchObject({ kind: 'failed', error: 'destination not allowed' });
      expect(target.accepted()).toBe(0);
      const row = await loose.owner.webhookDelivery.findUniqueOrThrow({ where: { id: job.deliveryId } });
      expect(row.lastError).toBe('destination not allowed');
    } finally {
      await close(target.server);
    }
  });

  it("resolves the endpoint's name at each delivery through the worker's resolver and checks every address it got (DNS rebinding is refused, never dialled)", async () => {
    const hits: string[] = [];
    const { createServer: createHttpServer } = await import('node:http');
    const server = createHttpServer((req, res) => {
      hits.push(req.url ?? '');
      res.writeHead(200).end();
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    const port = (server.address() as AddressInfo).port;
    try {
      const job = await deliveryTo(`http://127.0.0.1:${port}/hook`);
      // The endpoint names a host; what that name resolves to changes between deliveries.
      const { endpointId } = await loose.owner.webhookDelivery.findUniqueOrThrow({ where: { id: job.deliveryId } });
      await loose.owner.webhookEndpoint.update({ where: { id: endpointId }, data: { url: `http://hooks.rebind.test:${port}/hook` } });
      const answers: Record<string, { address: string }[]> = {};
      const resolver: Resolver = async (host) => answers[host] ?? noNames(host);
      const worker = deliveryService({ EGRESS_ALLOW_CIDRS: '127.0.0.0/8', WEBHOOK_ALLOW_HTTP: 'true', WEBHOOK_ATTEMPTS: '5' }, resolver);

      // What the tenant's delivery log says of a name is the same whatever it resolved to (NAME_REFUSED).
      answers['hooks.rebind.test'] = [{ address: '169.254.169.254' }];
      expect(await worker.attempt(job)).toMatchObject({ error: NAME_REFUSED });
      answers['hooks.rebind.test'] = [{ address: '127.0.0.1' }, { address: '10.0.0.7' }];
      expect(await worker.attempt(job)).toMatchObject({ error: NAME_REFUSED });
      expect(hits).toEqual([]);

      answers['hooks.rebind.test'] = [{ address: '127.0.0.1' }];
      expect(await worker.attempt(job)).toMatchObject({ kind: 'delivered' });
      expect(hits).toEqual(['/hook']);
    } finally {
      await new Promise<void>((resolve) => server.close(() => resolve()));
    }
  });

  it('reports closed and silent ports with the same generic reason (no port scan oracle)', async () => {
    const closed = await listener('127.0.0.1');
    await close(closed.server);
    const silentServer = createServer(() => undefined);
    await new Promise<void>((resolve) => silentServer.listen(0, '127.0.0.1', resolve));
    try {
      const worker = deliveryService({ EGRESS_ALLOW_CIDRS: '127.0.0.0/8', WEBHOOK_ALLOW_HTTP: 'true' });
      const a = await worker.attempt(await deliveryTo(`http://127.0.0.1:${closed.port}/`));
      const b = await worker.attempt(await deliveryTo(`http://127.0.0.1:${(silentServer.address() as AddressInfo).port}/`));
      expect(a).toMatchObject({ kind: 'failed', error: 'no HTTP response' });
      expect(b).toMatchObject({ kind: 'failed', error: 'no HTTP response' });
      const rows = await loose.owner.webhookDelivery.findMany({ where: { lastError: { contains: 'ECONN' } } });
      expect(rows).toEqual([]);
    } finally {
      silentServer.close();
    }
  });

  it('does not follow redirects (to the metadata service or anywhere else)', async () => {
    const hits: string[] = [];
    const { createServer: createHttpServer } = await import('node:http');
    const server = createHttpServer((req, res) => {
      hits.push(req.url ?? '');
      res.writeHead(302, { location: 'http://169.254.169.254/latest/meta-data/' }).end();
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    try {
      const worker = deliveryService({ EGRESS_ALLOW_CIDRS: '127.0.0.0/8', WEBHOOK_ALLOW_HTTP: 'true' });
      const step = await worker.attempt(await deliveryTo(`http://127.0.0.1:${(server.address() as AddressInfo).port}/hook`));
      expect(step).toMatchObject({ kind: 'failed', error: 'HTTP 302' });
      expect(hits).toEqual(['/hook']);
    } finally {
      await new Promise<void>((resolve) => server.close(() => resolve()));
    }
  });

  it('refuses plain http delivery unless the operator allows it', async () => {
    const target = await listener('127.0.0.1');
    try {
      const job = await deliveryTo(`http://127.0.0.1:${target.port}/hook`);
      const step = await deliveryService({ EGRESS_ALLOW_CIDRS: '127.0.0.0/8', WEBHOOK_ALLOW_HTTP: 'false' }).attempt(job);
      expect(step).toMatchObject({ kind: 'failed', error: 'https required' });
      expect(target.accepted()).toBe(0);
    } finally {
      await close(target.server);
    }
  });
});
