import { randomBytes } from 'node:crypto';
import type { AddressInfo } from 'node:net';

import type { INestApplication } from '@nestjs/common';
import { Client } from 'pg';
import { WebSocket } from 'ws';

import { connectorConfigSchema, loadConfig } from '@payorch/config';
import { issueToken, TOKEN_KINDS } from '@payorch/domain';
import { createLogger } from '@payorch/logging';
import { createTestDatabase, type TestDatabase, testRedisPrefix, waitFor } from '@payorch/testing';
import { attachWebSocket } from '@payorch/tunnel';

import { createConnectorApp } from '../bootstrap';
import { TerminalHub } from './terminal-hub';

/**
 * The access re-check enforces what it read unless a read that started after it was enforced on the tunnel meanwhile
 * (review of issue 19's batched re-check). It counted enforcements instead: a set-up whose read had started before the
 * re-check's but was enforced after the re-check began made the re-check skip a revocation it had read, and the tunnel
 * of a disabled tenant lived until the next re-check (30 s), when its announcement had been lost.
 */
describe('device-connector: access re-check against a set-up in flight', () => {
  let testDb: TestDatabase;
  let admin: Client;
  let locker: Client;
  let app: INestApplication;
  let base: string;

  beforeAll(async () => {
    testDb = await createTestDatabase();
    admin = new Client({ connectionString: testDb.adminUrl });
    await admin.connect();
    locker = new Client({ connectionString: testDb.adminUrl });
    locker.on('error', () => undefined);
    await locker.connect();
    const config = loadConfig('device-connector', connectorConfigSchema, {
      DATABASE_APP_URL: testDb.appUrl,
      REDIS_KEY_PREFIX: testRedisPrefix('recheck'),
      PAYORCH_MASTER_KEY: `k1:${randomBytes(32).toString('base64')}`,
      CONNECTOR_INSTANCE_ID: 'recheck-1',
      EGRESS_ALLOW_CIDRS: '127.0.0.0/8',
      LOG_LEVEL: 'silent',
    });
    app = await createConnectorApp(config, createLogger({ name: 'test', level: 'silent' }), { driverFactory: null });
    await app.listen(0, '127.0.0.1');
    base = `http://127.0.0.1:${(app.getHttpServer().address() as AddressInfo).port}`;
  });

  afterAll(async () => {
    await app.close();
    await locker.end();
    await admin.end();
    await testDb.drop();
  });

  it("cuts the tunnel of a tenant disabled while the tunnel's set-up was in flight, when the re-check read it", async () => {
    const tenantId = (await admin.query<{ id: string }>(`INSERT INTO "Tenant" (id, name, "updatedAt") VALUES (gen_random_uuid(), 'T', now()) RETURNING id`))
      .rows[0]!.id;
    const storeId = (
      await admin.query<{ id: string }>(
        `INSERT INTO "Store" (id, "tenantId", name, "timeZone", "updatedAt") VALUES (gen_random_uuid(), $1, 'S', 'UTC', now()) RETURNING id`,
        [tenantId],
      )
    ).rows[0]!.id;
    const credential = issueToken(TOKEN_KINDS.agentCredential);
    const agentId = (
      await admin.query<{ id: string }>(
        `INSERT INTO "Agent" (id, "tenantId", "storeId", name, status, "credentialHash", "credentialPrefix", "updatedAt")
         VALUES (gen_random_uuid(), $1, $2, 'till', 'ACTIVE', $3, $4, now()) RETURNING id`,
        [tenantId, storeId, credential.hash, credential.prefix],
      )
    ).rows[0]!.id;

    // The set-up reads the agent's access (active), then waits for the Agent row, locked here.
    await locker.query('BEGIN');
    await locker.query(`SELECT 1 FROM "Agent" WHERE id = $1 FOR UPDATE`, [agentId]);
    const ws = new WebSocket(`${base.replace('http', 'ws')}/agent`, {
      headers: { Authorization: `Bearer ${credential.token}`, 'X-Payorch-Agent-Version': '0.1.0' },
    });
    ws.on('error', () => undefined);
    const mux = attachWebSocket(ws, { role: 'agent', software: 'payorch-agent/0.1.0', heartbeat: false });
    mux.setOpenHandler((request) => void request.accept());
    let closed: string | undefined;
    ws.once('close', (code, reason) => (closed = `${code} ${reason.toString()}`));
    await waitFor(
      async () => {
        const { rows } = await admin.query(
          `SELECT 1 FROM pg_stat_activity WHERE usename <> current_user AND wait_event_type = 'Lock' AND query LIKE '%UPDATE "Agent"%'`,
        );
        return rows.length > 0;
      },
      { what: "the set-up waits for the agent's row" },
    );

    // The tenant is disabled meanwhile and its announcement is lost (nothing is published here); the re-check reads it.
    await admin.query(`UPDATE "Tenant" SET status = 'DISABLED' WHERE id = $1`, [tenantId]);
    const recheck = app.get(TerminalHub).reconcileAll();
    // The set-up goes on (it had read the tenant active) and is enforced first, in the agent's chain; then the re-check.
    await locker.query('COMMIT');
    await recheck;
    // Before, the re-check skipped what it had read, and the tunnel stayed up.
    expect(await waitFor(() => closed, { what: 'the tunnel cut by the re-check', timeoutMs: 3_000 })).toMatch(/tenant_disabled/i);
  });
});
