import { randomUUID } from 'node:crypto';

import { testRedisPrefix } from '@payorch/testing';

import { ConnectorHarness } from '../testing/connector-harness.testing';
import { TerminalPresence } from './terminal-presence';

/**
 * A hostile terminal (or the agent in front of it) chooses the text of its link reports' `detail` and of its info
 * (SSI's GetTerminalInfo `raw` is whatever the terminal answered). Presence writes of one tenant are batched: a value
 * PostgreSQL refuses (a NUL, a lone surrogate, JSON nested deeper than its stack) failed the whole batch three times —
 * the writes of the tenant's other agents with it, whose tunnels' set-ups were then refused (SETUP_FAILED).
 */
describe('device-connector: presence writes carrying a hostile terminal’s text', () => {
  const h = new ConnectorHarness();
  let presence: TerminalPresence;

  beforeAll(async () => {
    await h.start();
    await h.connector('presence-hostile', testRedisPrefix('presence-hostile'));
    presence = h.app.get(TerminalPresence);
  });

  afterAll(() => h.stop());

  const row = async (terminalId: string) =>
    (await h.admin.query<{ status: string; info: Record<string, unknown> | null }>(`SELECT status, info FROM "Terminal" WHERE id = $1`, [terminalId])).rows[0]!;

  it('writes the batch of another agent of the tenant, and the hostile values made storable', async () => {
    const at = await h.tenantWithStore();
    const honest = { ...at, session: randomUUID() };
    const hostile = { ...at, session: randomUUID() };
    const honestAgent = await h.agent(at, { presenceSession: honest.session });
    const hostileAgent = await h.agent(at, { presenceSession: hostile.session });
    const honestTerminal = await h.terminal(at, honestAgent);
    const hostileTerminal = await h.terminal(at, hostileAgent, 'ONLINE');
    let deep: unknown = 'x';
    for (let i = 0; i < 5000; i++) deep = [deep];

    // One tick: one batch of the tenant.
    const written = await Promise.allSettled([
      presence.terminal({ ...honest, agentId: honestAgent }, honestTerminal, true),
      presence.terminal({ ...hostile, agentId: hostileAgent }, hostileTerminal, false, `link down\u0000 ${'😀'.repeat(150)}`),
      presence.terminalInfo({ agentId: hostileAgent, tenantId: at.tenantId }, hostileTerminal, { model: 'A920\u0000', serial: '\uD800', deep }),
    ]);

    expect(written.map((result) => result.status)).toEqual(['fulfilled', 'fulfilled', 'fulfilled']);
    expect((await row(honestTerminal)).status).toBe('ONLINE');
    const stored = await row(hostileTerminal);
    expect(stored.status).toBe('OFFLINE');
    expect(stored.info).toMatchObject({ model: 'A920\uFFFD', serial: '\uFFFD', truncated: true });
    const event = (
      await h.admin.query<{ data: { detail: string } }>(`SELECT data FROM "DomainEvent" WHERE type = 'terminal.offline' AND "subjectId" = $1`, [
        hostileTerminal,
      ])
    ).rows[0]!;
    expect(event.data.detail).toMatch(/^link down\uFFFD 😀+\uFFFD?$/u);
    expect(event.data.detail.length).toBeLessThanOrEqual(200);
  });
});
