import { issueToken, TOKEN_KINDS } from '@payorch/domain';
import { testRedisPrefix, waitFor } from '@payorch/testing';

import { ConnectorHarness, dialAgent } from '../testing/connector-harness.testing';
import { TerminalHub } from './terminal-hub';

/**
 * A terminal moved between two agents held by the same connector instance (PATCH /v1/terminals/{id} {agentId}): the
 * event re-checks both agents, each in its own chain, so for a while — until the old agent's re-check is enforced,
 * up to ACCESS_RECHECK_INTERVAL_MS when that re-read fails or its message was lost — both fleets hold the terminal.
 * Commands for it must go through the holder PostgreSQL named last. Before, `find` returned the first fleet holding
 * it (the old agent's): new payments ran over the old agent's tunnel, to the connection the terminal had before.
 */
describe('device-connector: a terminal moved to another agent on the same instance', () => {
  const h = new ConnectorHarness();
  let hub: TerminalHub;

  beforeAll(async () => {
    await h.start();
    await h.connector('move-1', testRedisPrefix('move'));
    hub = h.app.get(TerminalHub);
  });

  afterAll(() => h.stop());

  async function connected(at: { tenantId: string; storeId: string }) {
    const credential = issueToken(TOKEN_KINDS.agentCredential);
    const agentId = await h.agent(at, { credential });
    const own = await h.terminal(at, agentId);
    const { ws } = dialAgent(h.url, credential.token);
    h.onStop(async () => ws.close());
    await waitFor(() => hub.find(at.tenantId, own), { what: `agent ${agentId} set up` });
    return agentId;
  }

  const moveTo = (terminalId: string, agentId: string) => h.admin.query(`UPDATE "Terminal" SET "agentId" = $2 WHERE id = $1`, [terminalId, agentId]);

  it("routes the terminal's commands through the agent PostgreSQL named last while both agents still hold it", async () => {
    const at = await h.tenantWithStore();
    const a = await connected(at);
    const b = await connected(at);
    const terminalId = await h.terminal(at, a);
    await hub.reconcile(a);
    expect(hub.find(at.tenantId, terminalId)?.agentId).toBe(a);

    // Moved to B; only B's re-check has been enforced yet (A's is late: its re-read failed, or its message was lost).
    await moveTo(terminalId, b);
    await hub.reconcile(b);
    expect(hub.terminalsOf(a)).toContain(terminalId);
    expect(hub.find(at.tenantId, terminalId)?.agentId).toBe(b);

    // Moved back to A before A's re-check ran: A's read is the newer one now, and confirms the handle A still holds.
    await moveTo(terminalId, a);
    await hub.reconcile(a);
    expect(hub.find(at.tenantId, terminalId)?.agentId).toBe(a);

    // B's late re-check withdraws its copy; A holds the terminal alone.
    await hub.reconcile(b);
    expect(hub.terminalsOf(b)).not.toContain(terminalId);
    expect(hub.find(at.tenantId, terminalId)?.agentId).toBe(a);
  });
});
