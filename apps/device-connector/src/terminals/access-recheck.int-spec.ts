import { Client } from 'pg';

import { issueToken, TOKEN_KINDS } from '@payorch/domain';
import { testRedisPrefix, waitFor } from '@payorch/testing';

import { ConnectorHarness, dialAgent } from '../testing/connector-harness.testing';
import { TerminalHub } from './terminal-hub';

/**
 * The access re-check enforces what it read unless a read that started after it was enforced on the tunnel meanwhile
 * (review of issue 19's batched re-check). It counted enforcements instead: a set-up whose read had started before the
 * re-check's but was enforced after the re-check began made the re-check skip a revocation it had read, and the tunnel
 * of a disabled tenant lived until the next re-check (30 s), when its announcement had been lost.
 */
describe('device-connector: access re-check against a set-up in flight', () => {
  const h = new ConnectorHarness();
  let locker: Client;

  beforeAll(async () => {
    await h.start();
    locker = new Client({ connectionString: h.testDb.adminUrl });
    locker.on('error', () => undefined);
    await locker.connect();
    h.onStop(() => locker.end());
    await h.connector('recheck-1', testRedisPrefix('recheck'));
  });

  afterAll(() => h.stop());

  it("cuts the tunnel of a tenant disabled while the tunnel's set-up was in flight, when the re-check read it", async () => {
    const at = await h.tenantWithStore();
    const credential = issueToken(TOKEN_KINDS.agentCredential);
    const agentId = await h.agent(at, { credential });

    // The set-up reads the agent's access (active), then waits for the Agent row, locked here.
    await locker.query('BEGIN');
    await locker.query(`SELECT 1 FROM "Agent" WHERE id = $1 FOR UPDATE`, [agentId]);
    const { ws } = dialAgent(h.url, credential.token);
    let closed: string | undefined;
    ws.once('close', (code, reason) => (closed = `${code} ${reason.toString()}`));
    await waitFor(
      async () => {
        const { rows } = await h.admin.query(
          `SELECT 1 FROM pg_stat_activity WHERE usename <> current_user AND wait_event_type = 'Lock' AND query LIKE '%UPDATE "Agent"%'`,
        );
        return rows.length > 0;
      },
      { what: "the set-up waits for the agent's row" },
    );

    // The tenant is disabled meanwhile and its announcement is lost (nothing is published here); the re-check reads it.
    await h.admin.query(`UPDATE "Tenant" SET status = 'DISABLED' WHERE id = $1`, [at.tenantId]);
    const recheck = h.app.get(TerminalHub).reconcileAll();
    // The set-up goes on (it had read the tenant active) and is enforced first, in the agent's chain; then the re-check.
    await locker.query('COMMIT');
    await recheck;
    // Before, the re-check skipped what it had read, and the tunnel stayed up.
    expect(await waitFor(() => closed, { what: 'the tunnel cut by the re-check', timeoutMs: 3_000 })).toMatch(/tenant_disabled/i);
  });
});
