import { randomBytes } from 'node:crypto';
import type { AddressInfo } from 'node:net';

import type { INestApplication } from '@nestjs/common';
import { Client } from 'pg';
import { WebSocket } from 'ws';

import { connectorConfigSchema, loadConfig } from '@payorch/config';
import { issueToken, TOKEN_KINDS } from '@payorch/domain';
import { createLogger } from '@payorch/logging';
import { createTestDatabase, type TestDatabase, testRedisPrefix, waitFor } from '@payorch/testing';
import { AGENT_CLOSE_CODES, attachWebSocket } from '@payorch/tunnel';

import { createConnectorApp } from '../bootstrap';
import { PRESENCE_WRITE_ATTEMPTS } from './terminal-presence';

const silent = createLogger({ name: 'test', level: 'silent' });

/**
 * No silent loss of presence (issue 19): a terminal presence write that fails is retried, and when every
 * attempt fails the tunnel is refused with SETUP_FAILED (4503), counted in the metrics; the agent comes
 * back after its backoff and the presence is written then. PostgreSQL failures are injected with a
 * trigger on Terminal.status that fails the next `n` updates (a sequence: not rolled back with them).
 */
describe('device-connector: presence writes under failure', () => {
  let testDb: TestDatabase;
  let admin: Client;
  let app: INestApplication;
  let base: string;
  const agents: Array<{ stop(): void }> = [];

  /** The next `n` updates of a Terminal's status fail. */
  async function failNextStatusUpdates(n: number): Promise<void> {
    await admin.query(`SELECT setval('presence_fault_seq', 1, false)`);
    await admin.query(`UPDATE presence_fault SET failures = $1`, [n]);
  }

  async function agentWithTerminal() {
    const { rows } = await admin.query<{ id: string }>(`INSERT INTO "Tenant" (id, name, "updatedAt") VALUES (gen_random_uuid(), 'T', now()) RETURNING id`);
    const tenantId = rows[0]!.id;
    const store = await admin.query<{ id: string }>(
      `INSERT INTO "Store" (id, "tenantId", name, "timeZone", "updatedAt") VALUES (gen_random_uuid(), $1, 'S', 'UTC', now()) RETURNING id`,
      [tenantId],
    );
    const credential = issueToken(TOKEN_KINDS.agentCredential);
    const agent = await admin.query<{ id: string }>(
      `INSERT INTO "Agent" (id, "tenantId", "storeId", name, status, "credentialHash", "credentialPrefix", "updatedAt")
       VALUES (gen_random_uuid(), $1, $2, 'till', 'ACTIVE', $3, $4, now()) RETURNING id`,
      [tenantId, store.rows[0]!.id, credential.hash, credential.prefix],
    );
    const terminal = await admin.query<{ id: string }>(
      `INSERT INTO "Terminal" (id, "tenantId", "storeId", "agentId", name, protocol, connection, "updatedAt")
       VALUES (gen_random_uuid(), $1, $2, $3, 'T', 'JOINPROTO', $4, now()) RETURNING id`,
      [tenantId, store.rows[0]!.id, agent.rows[0]!.id, { kind: 'tcp', host: '127.0.0.1', port: 7001 }],
    );
    return { agentId: agent.rows[0]!.id, terminalId: terminal.rows[0]!.id, credential: credential.token };
  }

  /** An agent's tunnel that accepts the connector's link opens (the link itself is never dialled); `closed` resolves with the close code and reason. */
  function connectAgent(credential: string) {
    const ws = new WebSocket(`${base.replace('http', 'ws')}/agent`, { headers: { Authorization: `Bearer ${credential}`, 'X-Payorch-Agent-Version': '0.1.0' } });
    ws.on('error', () => undefined);
    const mux = attachWebSocket(ws, { role: 'agent', software: 'payorch-agent/0.1.0', heartbeat: false });
    mux.setOpenHandler((request) => void request.accept());
    const closed = new Promise<string>((resolve) => ws.once('close', (code, reason) => resolve(`${code} ${reason.toString()}`)));
    const agent = { ws, closed, isClosed: false, stop: () => ws.close() };
    void closed.then(() => (agent.isClosed = true));
    agents.push(agent);
    return agent;
  }

  const status = async (terminalId: string) =>
    (await admin.query<{ status: string }>(`SELECT status FROM "Terminal" WHERE id = $1`, [terminalId])).rows[0]!.status;

  async function metric(name: string): Promise<number> {
    const text = await (await fetch(`${base}/metrics`)).text();
    const line = text.split('\n').find((l) => l.startsWith(`${name} `) || l.startsWith(`${name}{`));
    return line ? Number(line.split(' ').pop()) : 0;
  }

  beforeAll(async () => {
    testDb = await createTestDatabase();
    admin = new Client({ connectionString: testDb.adminUrl });
    await admin.connect();
    await admin.query(`
      CREATE SEQUENCE presence_fault_seq;
      CREATE TABLE presence_fault (failures int NOT NULL);
      INSERT INTO presence_fault VALUES (0);
      CREATE FUNCTION presence_fault() RETURNS trigger LANGUAGE plpgsql SECURITY DEFINER AS $$
      BEGIN
        IF nextval('presence_fault_seq') <= (SELECT failures FROM presence_fault) THEN RAISE EXCEPTION 'injected presence failure'; END IF;
        RETURN NEW;
      END $$;
      CREATE TRIGGER presence_fault BEFORE UPDATE OF status ON "Terminal" FOR EACH ROW EXECUTE FUNCTION presence_fault();`);
    const config = loadConfig('device-connector', connectorConfigSchema, {
      DATABASE_APP_URL: testDb.appUrl,
      REDIS_KEY_PREFIX: testRedisPrefix('presence'),
      PAYORCH_MASTER_KEY: `k1:${randomBytes(32).toString('base64')}`,
      CONNECTOR_INSTANCE_ID: 'presence-1',
      EGRESS_ALLOW_CIDRS: '127.0.0.0/8',
      LOG_LEVEL: 'silent',
    });
    app = await createConnectorApp(config, silent, { driverFactory: null });
    await app.listen(0, '127.0.0.1');
    base = `http://127.0.0.1:${(app.getHttpServer().address() as AddressInfo).port}`;
  });

  afterAll(async () => {
    for (const agent of agents) agent.stop();
    await app.close();
    await admin.end();
    await testDb.drop();
  });

  it('retries a failed presence write: the terminal goes online and the tunnel stays up', async () => {
    const { terminalId, credential } = await agentWithTerminal();
    const retriesBefore = await metric('payorch_connector_presence_write_retries_total');
    await failNextStatusUpdates(1);
    const agent = connectAgent(credential);

    await waitFor(async () => (await status(terminalId)) === 'ONLINE', { timeoutMs: 10_000, intervalMs: 50, what: 'terminal online after a retry' });
    expect(await metric('payorch_connector_presence_write_retries_total')).toBe(retriesBefore + 1);
    expect(agent.isClosed).toBe(false);
    agent.stop();
    // Its offline write is done before the next test counts failures again.
    await waitFor(async () => (await status(terminalId)) === 'OFFLINE', { timeoutMs: 10_000, intervalMs: 50, what: 'terminal offline after the stop' });
  });

  it('refuses the tunnel with SETUP_FAILED when every attempt fails, counts it, and writes presence once the agent is back', async () => {
    const { terminalId, credential } = await agentWithTerminal();
    const refusedBefore = await metric('payorch_connector_tunnels_refused_total');
    const failuresBefore = await metric('payorch_connector_presence_write_failures_total');
    await failNextStatusUpdates(PRESENCE_WRITE_ATTEMPTS);
    const refused = connectAgent(credential);

    expect(await refused.closed).toMatch(
      new RegExp(`^${AGENT_CLOSE_CODES.SETUP_FAILED} SETUP_FAILED: presence: could not record presence after 3 attempts: injected presence failure$`),
    );
    expect(await metric('payorch_connector_tunnels_refused_total')).toBe(refusedBefore + 1);
    expect(await metric('payorch_connector_presence_write_failures_total')).toBe(failuresBefore + 1);

    // Nothing lost: the agent comes back (after its backoff, apps/agent TunnelClient) and this time the write succeeds.
    const back = connectAgent(credential);
    await waitFor(async () => (await status(terminalId)) === 'ONLINE', { timeoutMs: 15_000, intervalMs: 50, what: 'terminal online after the reconnect' });
    expect(back.isClosed).toBe(false);
    back.stop();
  });
});
