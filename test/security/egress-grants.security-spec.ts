import { createServer as createHttpServer, type Server as HttpServer } from 'node:http';
import type { AddressInfo } from 'node:net';

import { loadConfig, workerConfigSchema } from '@payorch/config';
import { publishEvent } from '@payorch/db';
import { SecretBox } from '@payorch/domain';
import { EgressPolicy, guardedFetch, LookupLimiter, lookupLimits, NAME_REFUSED, parseAddressLiteral, type Resolver } from '@payorch/egress-guard';

import { DestinationGuard } from '../../apps/api-gateway/src/common/destination.guard';
import { EgressRelayPort, type RelayOwner } from '../../apps/device-connector/src/relay/egress-relay-port';
import { WebhookDeliveryService } from '../../apps/settlement-worker/src/webhooks/webhook-delivery.service';
import { GatewaySession, idem } from '../e2e/support/gateway-session';
import { silent } from '../e2e/support/tunnel-harness';

/**
 * Operator egress grants (docs/security.md, "Operator grants"): a range the operator opens to ONE tenant for ONE
 * channel. Before, the only knob was EGRESS_ALLOW_CIDRS: opening 10.20.0.0/16 for one chain's on-premises
 * processing host opened it to every tenant's webhooks, Assist server URLs and relay.
 *
 * Nothing here connects to 10.20.0.0/16: those checks are decisions only (IP literals, never looked up; the gateway
 * refuses or accepts at creation without connecting). Where a connection is the point, 127.0.0.2 stands in for the
 * on-premises host (a loopback listener of this test; EGRESS_ALLOW_CIDRS is empty, so only a grant opens it).
 */

/** Tests never resolve names: every URL and relay target below is an IP literal. */
const noNames: Resolver = async (host) => {
  throw Object.assign(new Error(`getaddrinfo ENOTFOUND ${host}`), { code: 'ENOTFOUND' });
};

describe('operator egress grants: one tenant, one channel', () => {
  const session = new GatewaySession();
  let a: { tenantId: string; auth: Record<string, string> };
  let b: { tenantId: string; auth: Record<string, string> };
  /** The stand-in for chain A's on-premises host, counting the requests it got. */
  let onPrem: HttpServer;
  let onPremPort: number;
  const hits: string[] = [];

  beforeAll(async () => {
    // No operator-wide range at all: only grants open anything special-purpose.
    await session.start({ EGRESS_ALLOW_CIDRS: '', WEBHOOK_ALLOW_HTTP: 'true' });
    const tenantA = await session.tenant('Chain A');
    const tenantB = await session.tenant('Chain B');
    a = { tenantId: tenantA.tenantId, auth: { Authorization: `Bearer ${tenantA.apiKey}` } };
    b = { tenantId: tenantB.tenantId, auth: { Authorization: `Bearer ${tenantB.apiKey}` } };
    // The operator (CLI, owner connection) opens chain A's processing network to chain A's webhooks only.
    await session.admin.createEgressGrant({ tenantId: a.tenantId, channel: 'webhook', cidr: '10.20.0.0/16', description: 'on-premises processing' });
    await session.admin.createEgressGrant({ tenantId: a.tenantId, channel: 'webhook', cidr: '127.0.0.2' });
    onPrem = createHttpServer((req, res) => {
      hits.push(req.url ?? '');
      res.writeHead(200).end();
    });
    await new Promise<void>((resolve) => onPrem.listen(0, '127.0.0.2', resolve));
    onPremPort = (onPrem.address() as AddressInfo).port;
  });

  afterAll(async () => {
    await new Promise<void>((resolve) => onPrem.close(() => resolve()));
    await session.stop();
  });

  const post = (path: string, tenant: { auth: Record<string, string> }, body: object) =>
    session.http().post(path).set(tenant.auth).set('Idempotency-Key', idem()).send(body);

  it("opens the granted range to that tenant's webhook URLs, not to another tenant's, nor to its Assist server URLs or relay rules (decision only)", async () => {
    const granted = await post('/v1/webhooks', a, { url: 'https://10.20.0.5/hook', eventTypes: ['*'] });
    expect(granted.status).toBe(201);
    // Accepted is the decision under test; nothing may ever be delivered there (only loopback is dialled in tests).
    await session.owner.webhookEndpoint.update({ where: { id: granted.body.id }, data: { enabled: false } });
    const other = await post('/v1/webhooks', b, { url: 'https://10.20.0.5/hook', eventTypes: ['*'] });
    expect(other.status).toBe(400);
    expect(other.body.error).toMatchObject({ code: 'EGRESS_DENIED', details: { field: 'url', reason: 'denied_host', category: 'private' } });

    const assist = await post('/v1/assist-merchants', a, {
      name: 'm',
      merchantId: '1',
      serverUrl: 'https://10.20.0.5',
      login: 'merchant_a',
      password: 'Passw0rd1',
      salt: 'salt',
    });
    expect(assist.status).toBe(400);
    expect(assist.body.error).toMatchObject({ code: 'EGRESS_DENIED', details: { field: 'serverUrl', reason: 'denied_host', category: 'private' } });
    const rule = await post('/v1/egress-rules', a, { cidr: '10.20.1.0/24', port: 443 });
    expect(rule.status).toBe(400);
    expect(rule.body.error).toMatchObject({ code: 'EGRESS_DENIED', details: { reason: 'denied_range', category: 'private' } });

    // The guard's decision for each tenant and channel, from the grants in PostgreSQL (read under RLS).
    const guard = session.app.get(DestinationGuard);
    const decide = async (tenantId: string, channel: 'webhook' | 'assist' | 'relay', address: string, port = 443) =>
      (await guard.policyFor(tenantId, channel)).checkAddress(parseAddressLiteral(address)!, port);
    expect(await decide(a.tenantId, 'webhook', '10.20.0.5')).toMatchObject({ allowed: true, by: 'grant' });
    expect(await decide(a.tenantId, 'webhook', '10.21.0.5')).toMatchObject({ allowed: false, category: 'private' });
    expect(await decide(b.tenantId, 'webhook', '10.20.0.5')).toMatchObject({ allowed: false });
    expect(await decide(a.tenantId, 'assist', '10.20.0.5')).toMatchObject({ allowed: false });
    expect(await decide(a.tenantId, 'relay', '10.20.0.5')).toMatchObject({ allowed: false });
  });

  it("delivers chain A's webhooks to the granted host; chain B's delivery to the same address is refused without a connection", async () => {
    const url = `http://127.0.0.2:${onPremPort}/hook`;
    const created = await post('/v1/webhooks', a, { url, eventTypes: ['terminal.updated'] });
    expect(created.status).toBe(201);
    expect((await post('/v1/webhooks', b, { url, eventTypes: ['terminal.updated'] })).status).toBe(400);
    // B's endpoint written to point there anyway (as if the API had let it through): the worker must still refuse.
    const bHook = await post('/v1/webhooks', b, { url: 'https://hooks.example.com/b', eventTypes: ['terminal.updated'] });
    expect(bHook.status).toBe(201);
    await session.owner.webhookEndpoint.update({ where: { id: bHook.body.id }, data: { url } });

    const worker = deliveryService();
    const aJob = await deliveryOf(worker, a.tenantId, created.body.id);
    const bJob = await deliveryOf(worker, b.tenantId, bHook.body.id);
    expect(await worker.attempt(bJob)).toMatchObject({ kind: 'failed', error: 'destination not allowed' });
    expect(hits).toEqual([]);
    expect(await worker.attempt(aJob)).toMatchObject({ kind: 'delivered', status: 200 });
    expect(hits).toEqual(['/hook']);
  });

  it("does not open the range to chain A's Assist requests", async () => {
    const guard = session.app.get(DestinationGuard);
    const fetchLike = guardedFetch({
      policy: () => guard.policyFor(a.tenantId, 'assist'),
      owner: a.tenantId,
      allowHttp: true,
      timeoutMs: 2_000,
      resolver: noNames,
    });
    const before = hits.length;
    await expect(fetchLike(`http://127.0.0.2:${onPremPort}/orderstate/orderstate.cfm`, { method: 'POST', body: 'x' })).rejects.toMatchObject({
      code: 'DENIED',
      details: { category: 'loopback' },
    });
    expect(hits).toHaveLength(before);
  });

  it("opens chain A's relay only once the operator grants the relay channel, and only on the granted port", async () => {
    const relayHost = createHttpServer(() => undefined);
    let accepted = 0;
    relayHost.on('connection', (socket) => {
      accepted++;
      socket.destroy();
    });
    await new Promise<void>((resolve) => relayHost.listen(0, '127.0.0.2', resolve));
    const port = (relayHost.address() as AddressInfo).port;
    try {
      const ownerA = await terminalOf(a.tenantId);
      const ownerB = await terminalOf(b.tenantId);
      // Both tenants' rules name the host (written directly: the API refuses them without a relay grant).
      for (const tenantId of [a.tenantId, b.tenantId]) await session.owner.egressRule.create({ data: { tenantId, cidr: '127.0.0.2/32', port } });
      const open = (owner: RelayOwner, targetPort = port) =>
        relay(owner).open({ protocol: 'tcp', host: '127.0.0.2', port: targetPort, address: `127.0.0.2:${targetPort}` });

      // A's webhook grant for 127.0.0.2 is not a relay grant.
      await expect(open(ownerA)).rejects.toMatchObject({ code: 'DENIED' });
      expect(accepted).toBe(0);

      const grant = await session.admin.createEgressGrant({ tenantId: a.tenantId, channel: 'relay', cidr: '127.0.0.2/32', port });
      expect(grant).toMatchObject({ channel: 'relay', cidr: '127.0.0.2/32', port, tenantId: a.tenantId });
      const portA = relay(ownerA);
      const id = await portA.open({ protocol: 'tcp', host: '127.0.0.2', port, address: `127.0.0.2:${port}` });
      await portA.close(id);
      expect(accepted).toBe(1);
      await expect(open(ownerB)).rejects.toMatchObject({ code: 'DENIED' });
      // The rule API accepts the granted range on the granted port only.
      expect((await post('/v1/egress-rules', a, { cidr: '127.0.0.2/32', port })).status).toBe(201);
      expect((await post('/v1/egress-rules', a, { cidr: '127.0.0.2/32', port: port + 1 })).status).toBe(400);
      expect((await post('/v1/egress-rules', b, { cidr: '127.0.0.2/32', port })).status).toBe(400);

      // Revoked: closed again from the next open on.
      await session.admin.revokeEgressGrant(grant.id);
      await expect(open(ownerA)).rejects.toMatchObject({ code: 'DENIED' });
      expect(accepted).toBe(1);
      const denied = await session.owner.relaySession.findMany({ where: { tenantId: { in: [a.tenantId, b.tenantId] }, outcome: 'denied' } });
      expect(denied.map((r) => r.reason).join('\n')).toContain('denied by the platform egress policy');
    } finally {
      await new Promise<void>((resolve) => relayHost.close(() => resolve()));
    }
  });

  it('the tenant cannot grant itself a range: no API route, and its database role may read only its own grants', async () => {
    for (const path of ['/v1/egress-grants', '/v1/egress-rules/grants', `/v1/tenants/${b.tenantId}/egress-grants`]) {
      const res = await post(path, b, { channel: 'webhook', cidr: '10.20.0.0/16' });
      expect([path, res.status, res.body.error?.code]).toEqual([path, 404, 'NOT_FOUND']);
    }
    // Even a bug that let a request write through the application role: it has SELECT only, under RLS.
    await expect(
      session.appDb.withTenant(b.tenantId, (tx) =>
        tx.egressGrant.create({ data: { tenantId: b.tenantId, channel: 'WEBHOOK', cidr: '10.20.0.0/16', createdBy: 'tenant' } }),
      ),
    ).rejects.toThrow(/permission denied/);
    await expect(session.appDb.withTenant(b.tenantId, (tx) => tx.egressGrant.updateMany({ where: {}, data: { tenantId: b.tenantId } }))).rejects.toThrow(
      /permission denied/,
    );
    await expect(session.appDb.withTenant(a.tenantId, (tx) => tx.egressGrant.deleteMany({}))).rejects.toThrow(/permission denied/);
    expect(await session.appDb.withTenant(b.tenantId, (tx) => tx.egressGrant.findMany())).toEqual([]);
    const own = await session.appDb.withTenant(a.tenantId, (tx) => tx.egressGrant.findMany({ where: { channel: 'WEBHOOK' }, orderBy: { createdAt: 'asc' } }));
    expect(own.map((g) => [g.tenantId, g.cidr])).toEqual([
      [a.tenantId, '10.20.0.0/16'],
      [a.tenantId, '127.0.0.2/32'],
    ]);
    expect(await session.owner.egressGrant.count({ where: { tenantId: b.tenantId } })).toBe(0);
  });

  it('the operator CLI refuses a grant for every channel, a too wide range or a bad port, and audits what it grants', async () => {
    await expect(session.admin.createEgressGrant({ tenantId: b.tenantId, channel: 'all', cidr: '10.20.0.0/16' })).rejects.toMatchObject({
      code: 'VALIDATION_FAILED',
    });
    await expect(session.admin.createEgressGrant({ tenantId: b.tenantId, channel: 'webhook', cidr: '10.0.0.0/7' })).rejects.toThrow(/wider than a grant/);
    await expect(session.admin.createEgressGrant({ tenantId: b.tenantId, channel: 'webhook', cidr: 'intranet' })).rejects.toThrow(/not a CIDR/);
    await expect(session.admin.createEgressGrant({ tenantId: b.tenantId, channel: 'relay', cidr: '10.20.0.0/16', port: 70_000 })).rejects.toThrow(/port/);
    expect(await session.owner.egressGrant.count({ where: { tenantId: b.tenantId } })).toBe(0);
    const audit = await session.owner.auditLog.findMany({ where: { tenantId: a.tenantId, resourceType: 'egress_grant' }, orderBy: { createdAt: 'asc' } });
    expect(audit.map((row) => [row.action, row.actorType])).toEqual(expect.arrayContaining([['egress_grant.create', 'admin']]));
    expect(await session.admin.listEgressGrants(a.tenantId)).toEqual(
      expect.arrayContaining([expect.objectContaining({ channel: 'webhook', cidr: '10.20.0.0/16', port: null, description: 'on-premises processing' })]),
    );
  });

  it("one tenant's webhooks naming a slow DNS server do not hold up another tenant's lookups (deliveries are looked up as their tenant's)", async () => {
    // A DNS server that never answers chain A's names; chain B's name answers at once.
    const hanging = new Map<string, (address: string) => void>();
    const limiter = new LookupLimiter(
      (host) =>
        host.endsWith('.chain-a.test')
          ? new Promise((resolve) => hanging.set(host, (address) => resolve([{ address }])))
          : Promise.resolve([{ address: '169.254.169.254' }]),
      lookupLimits(2, 16),
    );
    const worker = deliveryService(limiter.resolver, '10000');
    const before = hits.length;
    const endpoint = async (tenant: typeof a, url: string) => {
      const hook = await post('/v1/webhooks', tenant, { url: 'https://hooks.example.com/x', eventTypes: ['terminal.updated'] });
      await session.owner.webhookEndpoint.update({ where: { id: hook.body.id }, data: { url } });
      return deliveryOf(worker, tenant.tenantId, hook.body.id);
    };
    const slow = [await endpoint(a, 'https://slow-1.chain-a.test/hook'), await endpoint(a, 'https://slow-2.chain-a.test/hook')];
    const fast = await endpoint(b, 'https://hooks.chain-b.test/hook');
    let aSettled = 0;
    const aAttempts = slow.map((job) => worker.attempt(job).finally(() => aSettled++));
    // Chain B's delivery is looked up and decided while both of chain A's lookups still hang (A holds one slot).
    expect(await worker.attempt(fast)).toMatchObject({ kind: 'failed', error: NAME_REFUSED });
    expect(aSettled).toBe(0);
    expect(hanging.size).toBe(1);
    expect(limiter.stats()).toMatchObject({ inFlight: 1, queued: 1 });
    // The slow server answers at last (a denied address: nothing is dialled).
    const [first] = [...hanging.keys()];
    hanging.get(first!)!('169.254.169.254');
    // Its slot then goes to chain A's second lookup.
    while (hanging.size < 2) await new Promise((resolve) => setImmediate(resolve));
    hanging.get([...hanging.keys()].find((host) => host !== first)!)!('169.254.169.254');
    expect(await Promise.all(aAttempts)).toEqual([
      expect.objectContaining({ kind: 'failed', error: NAME_REFUSED }),
      expect.objectContaining({ kind: 'failed', error: NAME_REFUSED }),
    ]);
    expect(hits).toHaveLength(before);
  });

  /** The worker's delivery service, as it builds it, with no operator-wide range. */
  function deliveryService(resolver: Resolver = noNames, timeoutMs = '2000') {
    const config = loadConfig('settlement-worker', workerConfigSchema, {
      DATABASE_APP_URL: session.testDb.appUrl,
      REDIS_URL: session.config.REDIS_URL,
      REDIS_KEY_PREFIX: session.config.REDIS_KEY_PREFIX,
      PAYORCH_MASTER_KEY: session.config.PAYORCH_MASTER_KEY,
      LOG_LEVEL: 'silent',
      EGRESS_ALLOW_CIDRS: '',
      WEBHOOK_ALLOW_HTTP: 'true',
      WEBHOOK_ATTEMPTS: '1',
      WEBHOOK_TIMEOUT_MS: timeoutMs,
    });
    return new WebhookDeliveryService(session.appDb, config, SecretBox.fromConfig(config.PAYORCH_MASTER_KEY, []), silent, resolver);
  }

  /** A delivery of a fresh event of `tenantId` to its endpoint `endpointId`. */
  async function deliveryOf(worker: WebhookDeliveryService, tenantId: string, endpointId: string) {
    const event = await session.appDb.withTenant(tenantId, (tx) =>
      publishEvent(tx, tenantId, { type: 'terminal.updated', subjectType: 'terminal', subjectId: endpointId, data: { probe: true } }),
    );
    const jobs: { deliveryId: string }[] = [];
    await worker.fanout({ tenantId, eventId: (event as { id: string }).id }, {
      add: async (_n: string, data: { deliveryId: string }) => jobs.push(data),
    } as never);
    const ids = [];
    for (const job of jobs) {
      const row = await session.owner.webhookDelivery.findUniqueOrThrow({ where: { id: job.deliveryId } });
      if (row.endpointId === endpointId) ids.push(job.deliveryId);
    }
    expect(ids).toHaveLength(1);
    return { tenantId, deliveryId: ids[0]! };
  }

  async function terminalOf(tenantId: string): Promise<RelayOwner> {
    const store = await session.owner.store.create({ data: { tenantId, name: 'Shop', timeZone: 'UTC' } });
    const agent = await session.owner.agent.create({ data: { tenantId, storeId: store.id, name: 'till' } });
    const terminal = await session.owner.terminal.create({
      data: { tenantId, storeId: store.id, agentId: agent.id, name: 'T1', protocol: 'JOINPROTO', connection: { kind: 'tcp', host: '127.0.0.1', port: 9 } },
    });
    return { tenantId, agentId: agent.id, terminalId: terminal.id };
  }

  /** The connector's relay port for one terminal, with no operator-wide range (as RelayPortFactory builds it). */
  function relay(owner: RelayOwner) {
    const limits = {
      connectTimeoutMs: 2_000,
      maxBytes: 1_024,
      maxDurationMs: 10_000,
      maxConnectionsPerTerminal: 2,
      maxBufferedBytes: 1_024,
      receiveTimeoutMs: 1_000,
    };
    return new EgressRelayPort(owner, session.appDb, limits, silent, EgressPolicy.fromList(''), noNames);
  }
});
