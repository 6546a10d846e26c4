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
    return (await tunnel(at)).agentId;
  }

  /** An agent with a terminal of its own, connected here; `dial` opens another tunnel of it (which replaces the first). */
  async function tunnel(at: { tenantId: string; storeId: string }) {
    const credential = issueToken(TOKEN_KINDS.agentCredential);
    const agentId = await h.agent(at, { credential });
    const own = await h.terminal(at, agentId);
    const dial = () => {
      const { ws } = dialAgent(h.url, credential.token);
      h.onStop(async () => ws.close());
      return ws;
    };
    const ws = dial();
    await waitFor(() => hub.find(at.tenantId, own), { what: `agent ${agentId} set up` });
    return { agentId, ws, dial };
  }

  /** The agents of the handles `find` looks at for the terminal (its index), in order. */
  const holders = (terminalId: string) => hub.holdersOf(terminalId).map((handle) => handle.agentId);

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

  it("keeps find's index of handles in step with the fleets: no stale handle after a move, a rebuild, a reconnect or a tunnel close", async () => {
    const at = await h.tenantWithStore();
    const a = await tunnel(at);
    const b = await tunnel(at);
    const terminalId = await h.terminal(at, a.agentId);
    expect(holders(terminalId)).toEqual([]);
    await hub.reconcile(a.agentId);
    expect(holders(terminalId)).toEqual([a.agentId]);

    // Moved: both fleets hold it until A's re-check is enforced, then B alone.
    await moveTo(terminalId, b.agentId);
    await hub.reconcile(b.agentId);
    expect(holders(terminalId).sort()).toEqual([a.agentId, b.agentId].sort());
    await hub.reconcile(a.agentId);
    expect(holders(terminalId)).toEqual([b.agentId]);
    expect(hub.find(at.tenantId, terminalId)?.agentId).toBe(b.agentId);
    // Another tenant's id is simply absent.
    expect(hub.find((await h.tenantWithStore()).tenantId, terminalId)).toBeUndefined();

    // Rebuilt for a changed row: the new handle replaces the old one in the index.
    const before = hub.find(at.tenantId, terminalId)!;
    await h.admin.query(`UPDATE "Terminal" SET "merchantId" = 'M-2', "updatedAt" = now() WHERE id = $1`, [terminalId]);
    await hub.reconcile(b.agentId);
    const rebuilt = hub.find(at.tenantId, terminalId)!;
    expect(rebuilt).not.toBe(before);
    expect(hub.holdersOf(terminalId)).toEqual([rebuilt]);

    // B reconnects (its new tunnel replaces the old one): the new tunnel's handle alone.
    const again = b.dial();
    await waitFor(() => hub.find(at.tenantId, terminalId) !== rebuilt && hub.find(at.tenantId, terminalId), { what: 'B set up again' });
    expect(hub.holdersOf(terminalId)).toEqual([hub.find(at.tenantId, terminalId)]);

    // B's tunnel closes: nothing of the terminal is left in the index.
    again.close();
    await waitFor(() => hub.terminalsOf(b.agentId).length === 0, { what: "B's fleet dropped" });
    expect(hub.holdersOf(terminalId)).toEqual([]);
    expect(hub.find(at.tenantId, terminalId)).toBeUndefined();
  });
});
