import { randomUUID } from 'node:crypto';

import { Redis } from 'ioredis';

import { AgentOwnership } from '@payorch/command-bus';
import { issueToken, TOKEN_KINDS } from '@payorch/domain';
import { deleteRedisPrefix, testRedisPrefix, testRedisUrl, waitFor } from '@payorch/testing';

import { ConnectorHarness, dialAgent, openAgentSocket, tunnelOver } from '../testing/connector-harness.testing';
import { AgentTunnelServer } from '../tunnel/agent-tunnel.server';
import { DatabaseSlots } from '../tunnel/database-slots';
import { TerminalHub } from './terminal-hub';

/**
 * The ownership claim waits for the set-up's access decision (review finding): the connector claimed the agent's
 * Redis ownership key before its set-up's credential check, so a tunnel whose credential had been replaced (or whose
 * agent had left for another instance) between the upgrade and the set-up took the agent away from the instance holding
 * its legitimate tunnel — the dispatchers routed commands to it, and that instance's heartbeat, finding another
 * owner, closed the legitimate tunnel — and then, refused, released the key it had taken, leaving the agent with no
 * owner until the other instance's heartbeat set it again.
 */
describe('device-connector: ownership is claimed only once the set-up let the tunnel in', () => {
  const A = 'claim-a';
  const B = 'claim-b';
  const prefix = testRedisPrefix('claim');
  const h = new ConnectorHarness();
  let redis: Redis;
  /** Instance B, which holds the agent's legitimate tunnel in these tests. */
  let other: AgentOwnership;
  const lostByB: string[] = [];
  /** Slots still held by a test (released after it, also when it failed). */
  const holds: Array<() => Promise<void>> = [];

  beforeAll(async () => {
    await h.start();
    redis = new Redis(testRedisUrl());
    h.onStop(async () => {
      await deleteRedisPrefix(redis, prefix);
      await redis.quit();
    });
    other = new AgentOwnership({ redis, prefix, instanceId: B, ttlMs: 60_000, onLost: (agentId) => lostByB.push(agentId) });
    await h.connector(A, prefix);
  });

  afterEach(async () => {
    jest.restoreAllMocks();
    for (const release of holds.splice(0)) await release();
  });

  afterAll(() => h.stop());

  /** An active agent with one terminal; its presence is held by `presenceSession` (B's tunnel) and the terminal is ONLINE. */
  async function agentOnB(presenceSession: string) {
    const at = await h.tenantWithStore();
    const credential = issueToken(TOKEN_KINDS.agentCredential);
    const agentId = await h.agent(at, { credential, presenceSession });
    const terminalId = await h.terminal(at, agentId, 'ONLINE');
    await other.claim(agentId);
    return { tenantId: at.tenantId, agentId, terminalId, credential };
  }

  /** An agent's tunnel to instance A (accepts every link the connector opens). */
  function dial(token: string) {
    const { ws, mux } = dialAgent(h.url, token);
    const tunnel = { ws, mux, closed: undefined as string | undefined, listed: false };
    ws.once('close', (code, reason) => (tunnel.closed = `${code} ${reason.toString()}`));
    mux.onControl((message) => message.type === 'terminal-list' && (tunnel.listed = true));
    return tunnel;
  }

  /** Takes every set-up slot of instance A: a set-up then waits for one (as in a reconnect storm). */
  async function holdSetUps() {
    const slots = h.app.get(DatabaseSlots);
    let release!: () => void;
    const held = new Promise<void>((resolve) => (release = resolve));
    const holders = Array.from({ length: 64 }, () => slots.run(() => held));
    await waitFor(() => slots.queued > 0, { what: 'every slot taken' });
    const queued = slots.queued;
    const releaseAll = async () => {
      release();
      await Promise.all(holders);
    };
    holds.push(releaseAll);
    return {
      /** Resolves once one more set-up waits for its slot. */
      setUpWaiting: () => waitFor(() => slots.queued > queued, { what: "the tunnel's set-up waits for its slot" }),
      release: releaseAll,
    };
  }

  /** Resolves once everything queued in the agent's chain on A (its set-up, its close handling) has run. */
  const settled = (agentId: string) => h.app.get(TerminalHub).reconcile(agentId);
  const presenceOf = async (agentId: string) =>
    (await h.admin.query<{ presenceSession: string | null }>(`SELECT "presenceSession" FROM "Agent" WHERE id = $1`, [agentId])).rows[0]!.presenceSession;
  const statusOf = async (terminalId: string) =>
    (await h.admin.query<{ status: string }>(`SELECT status::text FROM "Terminal" WHERE id = $1`, [terminalId])).rows[0]!.status;
  const presenceEvents = async (tenantId: string) =>
    (
      await h.admin.query<{ type: string }>(
        `SELECT type FROM "DomainEvent" WHERE "tenantId" = $1 AND type LIKE ANY('{agent.%,terminal.%}') ORDER BY "createdAt", id`,
        [tenantId],
      )
    ).rows.map((row) => row.type);

  it('a tunnel whose credential was replaced before its set-up never takes the agent from the instance holding it, nor releases its key', async () => {
    const presenceOnB = randomUUID();
    const { tenantId, agentId, terminalId, credential } = await agentOnB(presenceOnB);
    const hold = await holdSetUps();
    // Authenticated at the upgrade; its set-up waits for a slot.
    const stale = dial(credential.token);
    await hold.setUpWaiting();
    // Meanwhile the agent is re-enrolled (the tunnel on B is the re-enrolled agent's): this credential no longer holds.
    const replacement = issueToken(TOKEN_KINDS.agentCredential);
    await h.admin.query(`UPDATE "Agent" SET "credentialHash" = $2, "credentialPrefix" = $3 WHERE id = $1`, [agentId, replacement.hash, replacement.prefix]);
    // Before, the key already named A here: the dispatchers sent the agent's commands to A, and B's heartbeat took
    // its legitimate tunnel for a stale one and closed it.
    expect(await other.owner(agentId)).toBe(B);
    await other.refresh();
    expect(lostByB).not.toContain(agentId);

    await hold.release();
    expect(await waitFor(() => stale.closed, { what: 'the stale tunnel refused' })).toMatch(/^4401 .*credential_replaced/);
    await waitFor(() => !h.app.get(AgentTunnelServer).connectedAgents.includes(agentId), { what: 'the stale tunnel gone on A' });
    await settled(agentId);
    // Refused, it released nothing: B's key stands (before, A's release deleted the key it had taken from B).
    expect(await other.owner(agentId)).toBe(B);
    expect(stale.listed).toBe(false);
    expect(await presenceOf(agentId)).toBe(presenceOnB);
    expect(await statusOf(terminalId)).toBe('ONLINE');
    expect(await presenceEvents(tenantId)).toEqual([]);

    // The agent's valid credential still takes it over on A, as any reconnect does.
    const live = dial(replacement.token);
    await waitFor(() => live.listed, { what: 'the terminal list on the valid tunnel' });
    expect(await other.owner(agentId)).toBe(A);
    live.ws.close();
    await waitFor(() => live.closed, { what: 'the valid tunnel closed' });
  });

  it('a tunnel its agent left before its set-up ran takes no ownership and writes no presence (the agent is up on another instance)', async () => {
    const presenceOnB = randomUUID();
    const { tenantId, agentId, terminalId, credential } = await agentOnB(presenceOnB);
    const hold = await holdSetUps();
    const left = dial(credential.token);
    await hold.setUpWaiting();
    // The agent gives this tunnel up (the set-up took too long) and is now served by B.
    left.ws.close(1000);
    await waitFor(() => left.closed, { what: 'the tunnel closed by its agent' });
    await waitFor(() => !h.app.get(AgentTunnelServer).connectedAgents.includes(agentId), { what: 'the tunnel gone on A' });
    expect(await other.owner(agentId)).toBe(B);

    await hold.release();
    await settled(agentId);
    // Before, its set-up claimed the key and took the agent's presence, and its close then marked the agent's terminals
    // OFFLINE (they are up on B) and deleted the key.
    expect(await other.owner(agentId)).toBe(B);
    expect(await presenceOf(agentId)).toBe(presenceOnB);
    expect(await statusOf(terminalId)).toBe('ONLINE');
    expect(await presenceEvents(tenantId)).toEqual([]);
    await other.refresh();
    expect(lostByB).not.toContain(agentId);
  });

  it("a tunnel that replaced the agent's tunnel here and was then refused by its set-up leaves the agent offline, not held by the replaced tunnel", async () => {
    // Found in the tenth session: the replaced tunnel's close left the offline to the newer tunnel here, whose close
    // released only its own presence (Agent.presenceSession named the replaced one), so the agent and its terminals
    // stayed online with no tunnel anywhere until the agent reconnected.
    const at = await h.tenantWithStore();
    const credential = issueToken(TOKEN_KINDS.agentCredential);
    const agentId = await h.agent(at, { credential });
    const terminalId = await h.terminal(at, agentId);
    const first = dial(credential.token);
    await waitFor(() => first.listed, { what: 'the first tunnel listed' });
    await waitFor(async () => (await statusOf(terminalId)) === 'ONLINE', { what: 'the terminal online' });
    const held = await presenceOf(agentId);
    expect(held).not.toBeNull();

    const hub = h.app.get(TerminalHub);
    const closeHandlings: Array<Promise<void>> = [];
    const onSessionClosed = hub.onSessionClosed.bind(hub);
    jest.spyOn(hub, 'onSessionClosed').mockImplementation((...args) => {
      const handled = onSessionClosed(...args);
      closeHandlings.push(handled);
      return handled;
    });
    const hold = await holdSetUps();
    // The agent dials again (it took the first tunnel for dead): the new tunnel replaces the first here at its upgrade,
    // and the first one's close is handled before the new tunnel's handshake (its HELLO is late).
    const ws = openAgentSocket(h.url, credential.token);
    const second = { closed: undefined as string | undefined };
    ws.once('close', (code, reason) => (second.closed = `${code} ${reason.toString()}`));
    expect(await waitFor(() => first.closed, { what: 'the first tunnel replaced' })).toMatch(/^4000 /);
    await waitFor(() => closeHandlings.length === 1, { what: "the first tunnel's close handling" });
    await closeHandlings[0];
    tunnelOver(ws);
    await hold.setUpWaiting();
    // Meanwhile the agent is re-enrolled elsewhere: the second tunnel's set-up refuses it.
    const replacement = issueToken(TOKEN_KINDS.agentCredential);
    await h.admin.query(`UPDATE "Agent" SET "credentialHash" = $2, "credentialPrefix" = $3 WHERE id = $1`, [agentId, replacement.hash, replacement.prefix]);
    await hold.release();
    expect(await waitFor(() => second.closed, { what: 'the second tunnel refused' })).toMatch(/^4401 .*credential_replaced/);
    await waitFor(() => !h.app.get(AgentTunnelServer).connectedAgents.includes(agentId), { what: 'no tunnel of the agent on A' });
    await settled(agentId);

    expect(await presenceOf(agentId)).toBeNull();
    expect(await statusOf(terminalId)).toBe('OFFLINE');
    expect((await presenceEvents(at.tenantId)).slice(-2)).toEqual(['agent.offline', 'terminal.offline']);
    expect(await other.owner(agentId)).toBeNull();
  });
});
