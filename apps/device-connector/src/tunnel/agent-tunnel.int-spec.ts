import { randomBytes, randomUUID } from 'node:crypto';
import { type AddressInfo, connect as connectTcp, type Socket } from 'node:net';

import type { INestApplication } from '@nestjs/common';
import request from 'supertest';
import { WebSocket } from 'ws';

import { connectorConfigSchema, loadConfig } from '@payorch/config';
import { createPrismaClient, type Database, type PrismaClient } from '@payorch/db';
import { issueToken, TOKEN_KINDS } from '@payorch/domain';
import { createLogger } from '@payorch/logging';
import { createTestDatabase, type TestDatabase, testRedisPrefix } from '@payorch/testing';
import { attachWebSocket, type ControlMessage, DEFAULT_MAX_FRAME_BYTES, FRAME_HEADER_BYTES, type LinkStatus, type TerminalEntry } from '@payorch/tunnel';

import { createConnectorApp } from '../bootstrap';
import { DATABASE } from '../tokens';
import { AgentTunnelServer } from './agent-tunnel.server';
import { DatabaseSlots } from './database-slots';

const MASTER = `k1:${Buffer.alloc(32, 7).toString('base64')}`;

/** A raw WebSocket upgrade of `credential` on a TCP socket of our own; resolves once answered 101. */
async function rawUpgrade(base: string, credential: string): Promise<Socket> {
  const raw = connectTcp(Number(new URL(base).port), '127.0.0.1');
  raw.on('error', () => undefined);
  const upgraded = new Promise<void>((resolve) => raw.once('data', (chunk: Buffer) => chunk.toString('latin1').startsWith('HTTP/1.1 101') && resolve()));
  raw.write(
    [
      'GET /agent HTTP/1.1',
      'Host: 127.0.0.1',
      'Upgrade: websocket',
      'Connection: Upgrade',
      `Sec-WebSocket-Key: ${randomBytes(16).toString('base64')}`,
      'Sec-WebSocket-Version: 13',
      `Authorization: Bearer ${credential}`,
      'X-Payorch-Agent-Version: 0.1.0',
      '',
      '',
    ].join('\r\n'),
  );
  await upgraded;
  return raw;
}

/**
 * An agent-status CONTROL frame of exactly `frameBytes` (header included), as the agent encodes it (JSON after the
 * 12-byte header): links with full 512-character details until it is at least that long, then details shortened.
 */
function agentStatusOfFrameBytes(frameBytes: number): ControlMessage {
  const links: LinkStatus[] = [];
  const message: ControlMessage = { type: 'agent-status', software: 'payorch-agent/0.1.0', uptimeMs: 1, links };
  const bytes = () => FRAME_HEADER_BYTES + Buffer.byteLength(JSON.stringify(message));
  while (bytes() < frameBytes) links.push({ terminalId: randomUUID(), state: 'down', detail: 'x'.repeat(512) });
  for (let i = links.length - 1, excess = bytes() - frameBytes; excess > 0; i -= 1) {
    const cut = Math.min(excess, links[i]!.detail!.length);
    links[i]!.detail = links[i]!.detail!.slice(cut);
    excess -= cut;
  }
  expect(bytes()).toBe(frameBytes);
  return message;
}

describe('device-connector: agent enrollment and tunnel authentication', () => {
  let testDb: TestDatabase;
  let owner: PrismaClient;
  let app: INestApplication;
  let base: string;

  async function newAgent() {
    const tenant = await owner.tenant.create({ data: { name: 'T' } });
    const store = await owner.store.create({ data: { tenantId: tenant.id, name: 'S', timeZone: 'UTC' } });
    const enrollment = issueToken(TOKEN_KINDS.enrollment);
    const agent = await owner.agent.create({
      data: {
        tenantId: tenant.id,
        storeId: store.id,
        name: 'till',
        enrollmentTokenHash: enrollment.hash,
        enrollmentTokenPrefix: enrollment.prefix,
        enrollmentExpiresAt: new Date(Date.now() + 60_000),
      },
    });
    return { agentId: agent.id, tenantId: tenant.id, storeId: store.id, token: enrollment.token };
  }

  const connect = (credential: string) =>
    new Promise<{ ws?: WebSocket; status?: number }>((resolve) => {
      const ws = new WebSocket(`${base.replace('http', 'ws')}/agent`, {
        headers: { Authorization: `Bearer ${credential}`, 'X-Payorch-Agent-Version': '0.1.0' },
      });
      ws.once('open', () => resolve({ ws }));
      ws.once('unexpected-response', (_req, res) => resolve({ status: res.statusCode }));
      ws.once('error', () => undefined);
    });

  beforeAll(async () => {
    testDb = await createTestDatabase();
    owner = createPrismaClient(testDb.adminUrl, { max: 2 });
    const config = loadConfig('device-connector', connectorConfigSchema, {
      DATABASE_APP_URL: testDb.appUrl,
      REDIS_KEY_PREFIX: testRedisPrefix('conn'),
      PAYORCH_MASTER_KEY: MASTER,
      CONNECTOR_INSTANCE_ID: 'test-1',
      LOG_LEVEL: 'silent',
    });
    app = await createConnectorApp(config, createLogger({ name: 'test', level: 'silent' }));
    await app.listen(0, '127.0.0.1');
    base = `http://127.0.0.1:${(app.getHttpServer().address() as AddressInfo).port}`;
  });

  afterAll(async () => {
    await app.close();
    await owner.$disconnect();
    await testDb.drop();
  });

  it('exchanges an enrollment token once for a credential that opens the tunnel', async () => {
    const { agentId, tenantId, token } = await newAgent();
    const res = await request(base).post('/agent/enroll').send({ token, version: '0.1.0' });
    expect(res.status).toBe(200);
    expect(res.body).toMatchObject({ agentId, tenantId });
    expect(res.body.credential).toMatch(/^pac_/);

    const reuse = await request(base).post('/agent/enroll').send({ token });
    expect(reuse.status).toBe(401);
    expect(reuse.body.error.code).toBe('UNAUTHENTICATED');

    const row = await owner.agent.findUniqueOrThrow({ where: { id: agentId } });
    expect(row).toMatchObject({ status: 'ACTIVE', enrollmentTokenHash: null, version: '0.1.0' });
    expect(row.credentialHash).not.toContain(res.body.credential);

    const { ws } = await connect(res.body.credential);
    expect(ws?.readyState).toBe(WebSocket.OPEN);
    expect(app.get(AgentTunnelServer).connectedAgents).toContain(agentId);
    ws!.close();
  });

  it('lets only one of two concurrent exchanges of the same token win', async () => {
    const { token } = await newAgent();
    const results = await Promise.all([1, 2, 3].map(() => request(base).post('/agent/enroll').send({ token })));
    expect(results.map((r) => r.status).sort()).toEqual([200, 401, 401]);
  });

  it('rejects forged, unknown and revoked credentials with 401 before any frame', async () => {
    expect((await connect('pac_aaaaaaaaaaaa_' + 'A'.repeat(43))).status).toBe(401);
    expect((await connect('not-a-credential')).status).toBe(401);
    const { agentId, token } = await newAgent();
    const credential = (await request(base).post('/agent/enroll').send({ token })).body.credential as string;
    const forged = credential.slice(0, -3) + 'xyz';
    expect((await connect(forged)).status).toBe(401);
    await owner.agent.update({ where: { id: agentId }, data: { status: 'REVOKED', credentialHash: null, credentialPrefix: null } });
    expect((await connect(credential)).status).toBe(401);
  });

  it('answers an upgrade whose request target URL cannot parse 400, and one to another path 404; the connector stays up', async () => {
    // Node's parser accepts `//[/`; `new URL` threw in the async upgrade handler, an unhandled rejection that ended the
    // process (until 2026-12-07).
    const answer = (target: string) =>
      new Promise<string>((resolve, reject) => {
        const raw = connectTcp(Number(new URL(base).port), '127.0.0.1');
        let text = '';
        raw.on('data', (chunk: Buffer) => (text += chunk.toString('latin1')));
        raw.on('error', reject);
        raw.on('close', () => resolve(text));
        raw.write(
          `GET ${target} HTTP/1.1\r\nHost: 127.0.0.1\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Key: ${randomBytes(16).toString('base64')}\r\nSec-WebSocket-Version: 13\r\n\r\n`,
        );
      });
    expect(await answer('//[/')).toMatch(/^HTTP\/1\.1 400 /);
    expect(await answer('//[/../agent')).toMatch(/^HTTP\/1\.1 400 /);
    expect(await answer('/elsewhere')).toMatch(/^HTTP\/1\.1 404 /);
    expect((await request(base).get('/health/live')).status).toBe(200);
  });

  it('answers a doctor probe with the handshake and the terminal list, without replacing the live tunnel', async () => {
    const { agentId, tenantId, storeId, token } = await newAgent();
    const terminal = await owner.terminal.create({
      data: { tenantId, storeId, agentId, name: 'Till A', protocol: 'JPAY', connection: { kind: 'tcp', host: '127.0.0.1', port: 7001 } },
    });
    const credential = (await request(base).post('/agent/enroll').send({ token })).body.credential as string;
    const { ws: live } = await connect(credential);
    expect(app.get(AgentTunnelServer).connectedAgents).toContain(agentId);

    const probe = new WebSocket(`${base.replace('http', 'ws')}/agent`, {
      headers: { Authorization: `Bearer ${credential}`, 'X-Payorch-Agent-Version': '0.1.0', 'X-Payorch-Agent-Probe': 'doctor' },
    });
    const mux = attachWebSocket(probe, { role: 'agent', software: 'payorch-agent/0.1.0', heartbeat: false });
    const listed = await new Promise<TerminalEntry[]>((resolve) => mux.onControl((m) => m.type === 'terminal-list' && resolve(m.terminals)));
    expect(listed).toEqual([{ terminalId: terminal.id, protocol: 'jpay', label: 'Till A', link: { kind: 'tcp-connect', host: '127.0.0.1', port: 7001 } }]);
    const closed = new Promise<number>((resolve) => probe.once('close', (code) => resolve(code)));
    mux.close('doctor done');
    expect(await closed).toBe(1000);
    // The live tunnel was neither replaced (4000) nor touched; no presence was written for the probe.
    expect(live!.readyState).toBe(WebSocket.OPEN);
    expect(app.get(AgentTunnelServer).session(agentId)).toBeDefined();
    live!.close();
  });

  it('cuts a replaced tunnel whose client never answers the close within about a second', async () => {
    const { token } = await newAgent();
    const credential = (await request(base).post('/agent/enroll').send({ token })).body.credential as string;
    // The older connection: a raw upgrade from a client that then never writes (nor answers a close handshake), as a
    // second machine holding a copied credential might.
    const raw = await rawUpgrade(base, credential);
    const cut = new Promise<number>((resolve) => raw.once('close', () => resolve(Date.now())));

    const { ws: newer } = await connect(credential);
    const replacedAt = Date.now();
    // Before: the server waited for the close handshake until ws's own timeout (30 s), the tunnel still reading.
    const closedAt = await Promise.race([cut, new Promise<number>((resolve) => setTimeout(() => resolve(Number.POSITIVE_INFINITY), 5_000))]);
    expect(closedAt - replacedAt).toBeLessThan(5_000);
    expect(newer!.readyState).toBe(WebSocket.OPEN);
    newer!.close();
  });

  it('authenticates upgrades that arrive together with one read, and answers them while every set-up slot is taken', async () => {
    const credentials: string[] = [];
    for (let i = 0; i < 3; i += 1) {
      const { token } = await newAgent();
      credentials.push((await request(base).post('/agent/enroll').send({ token })).body.credential as string);
    }
    // Every set-up slot busy (a reconnect storm's set-ups): upgrades used to wait here for their authentication
    // until the agents' 15 s opening-handshake timeout (issue 19: 646 timed-out dials at 5,000 agents).
    const slots = app.get(DatabaseSlots);
    let openSlots!: () => void;
    const held = new Promise<void>((resolve) => (openSlots = resolve));
    const holders = Array.from({ length: 64 }, () => slots.run(() => held));
    expect(slots.queued).toBeGreaterThan(0);
    // The first read is held until the three upgrades have all arrived: the ones behind it are read together.
    const db = app.get<Database>(DATABASE);
    const original = db.findAgentsByCredentialPrefixes.bind(db);
    let arrived = 0;
    let allArrived!: () => void;
    const all = new Promise<void>((resolve) => (allArrived = resolve));
    const onUpgrade = () => (arrived += 1) === 3 && allArrived();
    app.getHttpServer().on('upgrade', onUpgrade);
    const reads: string[][] = [];
    const spy = jest.spyOn(db, 'findAgentsByCredentialPrefixes').mockImplementation(async (prefixes) => {
      reads.push([...prefixes]);
      if (reads.length === 1) await all;
      return original(prefixes);
    });
    try {
      const results = await Promise.all(credentials.map((credential) => connect(credential)));
      expect(results.map((r) => r.ws?.readyState)).toEqual([WebSocket.OPEN, WebSocket.OPEN, WebSocket.OPEN]);
      expect(reads.length).toBeLessThanOrEqual(2);
      expect(reads.flat()).toHaveLength(3);
      for (const r of results) r.ws!.close();
    } finally {
      spy.mockRestore();
      app.getHttpServer().off('upgrade', onUpgrade);
      openSlots();
      await Promise.all(holders);
    }
  });

  it('refuses a WebSocket message one byte longer than a frame may be (1009) from its header, before reading its payload', async () => {
    const { token } = await newAgent();
    const credential = (await request(base).post('/agent/enroll').send({ token })).body.credential as string;
    const raw = await rawUpgrade(base, credential);
    const closeFrame = new Promise<number>((resolve) => {
      // The server's frames are unmasked: 0x88 (FIN, close), a 7-bit length, then the status code.
      raw.on('data', (chunk: Buffer) => chunk[0] === 0x88 && chunk.length >= 4 && resolve(chunk.readUInt16BE(2)));
    });
    // Only the header of a binary message of TUNNEL_MAX_FRAME_BYTES + 1 bytes (FIN, binary; masked, 16-bit length): not
    // one byte of its payload is ever sent. Before, ws accepted messages up to 1 MiB and waited here for this one's bytes.
    const header = Buffer.alloc(8);
    header.writeUInt8(0x82, 0);
    header.writeUInt8(0x80 | 126, 1);
    header.writeUInt16BE(DEFAULT_MAX_FRAME_BYTES + 1, 2);
    randomBytes(4).copy(header, 4);
    raw.write(header);
    const code = await Promise.race([closeFrame, new Promise<string>((resolve) => setTimeout(() => resolve('no close within 3 s'), 3_000))]);
    expect(code).toBe(1009);
    raw.destroy();
  });

  it('passes a frame of exactly TUNNEL_MAX_FRAME_BYTES to the tunnel, and closes the socket at one byte more (1009)', async () => {
    const { agentId, token } = await newAgent();
    const credential = (await request(base).post('/agent/enroll').send({ token })).body.credential as string;
    const { ws } = await connect(credential);
    const agent = attachWebSocket(ws!, { role: 'agent', software: 'payorch-agent/0.1.0', heartbeat: false });
    await new Promise<void>((resolve) => agent.onReady(() => resolve()));
    const session = app.get(AgentTunnelServer).session(agentId)!;
    const received = new Promise<ControlMessage>((resolve) => session.mux.onControl((message) => message.type === 'agent-status' && resolve(message)));
    // The agent's own encoder sends it: a frame within the maxFrameBytes of the connector's HELLO_ACK.
    const largest = agentStatusOfFrameBytes(DEFAULT_MAX_FRAME_BYTES);
    expect(agent.sendControl(largest)).toBe(true);
    expect(await received).toEqual(largest);
    expect(ws!.readyState).toBe(WebSocket.OPEN);

    const closed = new Promise<number>((resolve) => ws!.once('close', (code) => resolve(code)));
    ws!.send(Buffer.alloc(DEFAULT_MAX_FRAME_BYTES + 1), { binary: true });
    expect(await closed).toBe(1009);
  });

  it('rejects expired and malformed enrollment requests', async () => {
    const { agentId, token } = await newAgent();
    await owner.agent.update({ where: { id: agentId }, data: { enrollmentExpiresAt: new Date(Date.now() - 1000) } });
    expect((await request(base).post('/agent/enroll').send({ token })).status).toBe(401);
    const bad = await request(base).post('/agent/enroll').send({ nope: 1 });
    expect(bad.status).toBe(400);
  });

  it('reports health and the connected-agents gauge', async () => {
    const res = await request(base).get('/health');
    expect(res.status).toBe(200);
    expect(res.body).toMatchObject({ status: 'ok', instance: 'test-1', checks: { database: 'ok' } });
    const metrics = await request(base).get('/metrics');
    expect(metrics.text).toContain('payorch_connector_agents_connected');
  });
});
