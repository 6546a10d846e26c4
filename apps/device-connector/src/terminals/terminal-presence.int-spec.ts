import { issueToken, TOKEN_KINDS } from '@payorch/domain';
import { testRedisPrefix, waitFor } from '@payorch/testing';
import { AGENT_CLOSE_CODES } from '@payorch/tunnel';

import { ConnectorHarness, dialAgent } from '../testing/connector-harness.testing';
import { PRESENCE_WRITE_ATTEMPTS } from './terminal-presence';

/**
 * No silent loss of presence (issue 19): a terminal presence write that fails is retried, and when every
 * attempt fails the tunnel is refused with SETUP_FAILED (4503), counted in the metrics; the agent comes
 * back after its backoff and the presence is written then. PostgreSQL failures are injected with a
 * trigger on Terminal.status that fails the next `n` updates (a sequence: not rolled back with them).
 */
describe('device-connector: presence writes under failure', () => {
  const h = new ConnectorHarness();
  const agents: Array<{ stop(): void }> = [];

  /** The next `n` updates of a Terminal's status fail. */
  async function failNextStatusUpdates(n: number): Promise<void> {
    await h.admin.query(`SELECT setval('presence_fault_seq', 1, false)`);
    await h.admin.query(`UPDATE presence_fault SET failures = $1`, [n]);
  }

  async function agentWithTerminal() {
    const at = await h.tenantWithStore();
    const credential = issueToken(TOKEN_KINDS.agentCredential);
    const agentId = await h.agent(at, { credential });
    const terminalId = await h.terminal(at, agentId);
    return { agentId, terminalId, credential: credential.token };
  }

  /** An agent's tunnel that accepts the connector's link opens (the link itself is never dialled); `closed` resolves with the close code and reason. */
  function connectAgent(credential: string) {
    const { ws } = dialAgent(h.url, credential);
    const closed = new Promise<string>((resolve) => ws.once('close', (code, reason) => resolve(`${code} ${reason.toString()}`)));
    const agent = { ws, closed, isClosed: false, stop: () => ws.close() };
    void closed.then(() => (agent.isClosed = true));
    agents.push(agent);
    return agent;
  }

  const status = async (terminalId: string) =>
    (await h.admin.query<{ status: string }>(`SELECT status FROM "Terminal" WHERE id = $1`, [terminalId])).rows[0]!.status;

  async function metric(name: string): Promise<number> {
    const text = await (await fetch(`${h.url}/metrics`)).text();
    const line = text.split('\n').find((l) => l.startsWith(`${name} `) || l.startsWith(`${name}{`));
    return line ? Number(line.split(' ').pop()) : 0;
  }

  beforeAll(async () => {
    await h.start();
    await h.admin.query(`
      CREATE SEQUENCE presence_fault_seq;
      CREATE TABLE presence_fault (failures int NOT NULL);
      INSERT INTO presence_fault VALUES (0);
      CREATE FUNCTION presence_fault() RETURNS trigger LANGUAGE plpgsql SECURITY DEFINER AS $$
      BEGIN
        IF nextval('presence_fault_seq') <= (SELECT failures FROM presence_fault) THEN RAISE EXCEPTION 'injected presence failure'; END IF;
        RETURN NEW;
      END $$;
      CREATE TRIGGER presence_fault BEFORE UPDATE OF status ON "Terminal" FOR EACH ROW EXECUTE FUNCTION presence_fault();`);
    await h.connector('presence-1', testRedisPrefix('presence'));
  });

  afterAll(async () => {
    for (const agent of agents) agent.stop();
    await h.stop();
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
