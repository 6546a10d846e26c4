import { ACCESS_EVENT_TYPES } from '@payorch/operations';

import { AGENT_EVENTS, agentsToRecheck, planTerminals, revocationReason, TENANT_EVENTS, TERMINAL_EVENTS } from './access-check';
import type { TerminalRow } from '../terminals/terminal-link';

const TENANT = '11111111-1111-4111-8111-111111111111';
const OTHER_TENANT = '44444444-4444-4444-8444-444444444444';
const AGENT = '22222222-2222-4222-8222-222222222222';
const PREVIOUS_AGENT = '33333333-3333-4333-8333-333333333333';
const channel = `payorch:events:${TENANT}`;

const row = (id: string, patch: Partial<TerminalRow> = {}): TerminalRow => ({
  agentId: AGENT,
  connection: { kind: 'tcp', host: '127.0.0.1', port: 2000 },
  credentialsEncrypted: null,
  department: null,
  dialect: null,
  encryptionEnabled: false,
  id,
  infoReadAt: null,
  merchantId: null,
  name: `T-${id}`,
  protocol: 'JOINPROTO',
  status: 'ONLINE',
  tenantId: TENANT,
  terminalId: null,
  ...patch,
});

describe(revocationReason.name, () => {
  it('keeps a tunnel whose credential is still the active one', () => {
    expect(revocationReason({ status: 'ACTIVE', credentialPrefix: 'abc' }, 'abc')).toBeNull();
  });

  it('cuts a revoked, deleted, re-enrolled or never-enrolled agent', () => {
    expect(revocationReason({ status: 'REVOKED', credentialPrefix: null }, 'abc')).toBe('revoked');
    expect(revocationReason(null, 'abc')).toBe('deleted');
    expect(revocationReason({ status: 'ACTIVE', credentialPrefix: 'new' }, 'abc')).toBe('credential_replaced');
    expect(revocationReason({ status: 'PENDING_ENROLLMENT', credentialPrefix: null }, 'abc')).toBe('revoked');
  });

  it('cuts every agent of a disabled tenant, whatever its own state', () => {
    expect(revocationReason({ status: 'ACTIVE', credentialPrefix: 'abc', tenant: { status: 'DISABLED' } }, 'abc')).toBe('tenant_disabled');
    expect(revocationReason({ status: 'ACTIVE', credentialPrefix: 'abc', tenant: { status: 'ACTIVE' } }, 'abc')).toBeNull();
  });
});

describe(agentsToRecheck.name, () => {
  it('acts only on events that are published on the access channel the connector follows', () => {
    // A type it acted on but producers did not put on the access channel would never reach it.
    expect([...AGENT_EVENTS, ...TENANT_EVENTS, ...TERMINAL_EVENTS].sort()).toEqual([...ACCESS_EVENT_TYPES].sort());
  });

  const message = (event: object) => JSON.stringify({ id: 'e1', tenantId: TENANT, createdAt: '', ...event });

  it('names the agent of an agent event and both agents of a terminal event', () => {
    expect(agentsToRecheck(channel, message({ type: 'agent.revoked', subjectType: 'agent', subjectId: AGENT, data: {} }))).toEqual({
      tenantId: TENANT,
      agentIds: [AGENT],
    });
    expect(
      agentsToRecheck(
        channel,
        message({ type: 'terminal.updated', subjectType: 'terminal', subjectId: 't', data: { agentId: AGENT, previousAgentId: PREVIOUS_AGENT } }),
      ),
    ).toEqual({ tenantId: TENANT, agentIds: [AGENT, PREVIOUS_AGENT] });
    expect(agentsToRecheck(channel, message({ type: 'terminal.deleted', data: { agentId: AGENT, previousAgentId: AGENT } }))?.agentIds).toEqual([AGENT]);
  });

  it('asks for every agent of the tenant on a tenant event', () => {
    expect(agentsToRecheck(channel, message({ type: 'tenant.disabled', subjectType: 'tenant', subjectId: TENANT, data: {} }))).toEqual({
      tenantId: TENANT,
      agentIds: [],
      wholeTenant: true,
    });
    expect(agentsToRecheck(channel, message({ type: 'tenant.enabled', subjectType: 'tenant', subjectId: TENANT, data: {} }))?.wholeTenant).toBe(true);
  });

  it('ignores other event types, malformed messages and messages naming another tenant than their channel', () => {
    expect(agentsToRecheck(channel, message({ type: 'operation.progress', subjectId: AGENT, data: { agentId: AGENT } }))).toBeNull();
    expect(agentsToRecheck(channel, message({ type: 'terminal.created', data: { agentId: null } }))).toBeNull();
    expect(agentsToRecheck(channel, message({ type: 'agent.revoked', subjectId: 'not-a-uuid' }))).toBeNull();
    expect(agentsToRecheck(channel, message({ type: 'agent.revoked', subjectId: AGENT, tenantId: OTHER_TENANT }))).toBeNull();
    expect(agentsToRecheck(channel, '{not json')).toBeNull();
    expect(agentsToRecheck(channel, 'null')).toBeNull();
    expect(agentsToRecheck('payorch:events:not-a-tenant', message({ type: 'agent.revoked', subjectId: AGENT }))).toBeNull();
  });
});

describe(planTerminals.name, () => {
  const held = new Map([
    ['a', row('a')],
    ['b', row('b')],
    ['c', row('c')],
  ]);

  it('changes nothing when PostgreSQL agrees, even when only the label or status changed', () => {
    expect(planTerminals(held, [row('a', { name: 'renamed' }), row('b', { status: 'OFFLINE' }), row('c')])).toEqual({ close: [], open: [] });
  });

  it('closes withdrawn terminals, rebuilds changed ones and opens new ones', () => {
    const moved = row('b', { connection: { kind: 'tcp', host: '127.0.0.1', port: 2001 } });
    const plan = planTerminals(held, [row('a'), moved, row('d')]);
    expect(plan.close).toEqual(['b', 'c']);
    expect(plan.open.map((r) => r.id)).toEqual(['b', 'd']);
  });

  it('rebuilds a terminal whose credentials or protocol settings changed', () => {
    expect(planTerminals(held, [row('a', { credentialsEncrypted: 'sealed' }), row('b', { dialect: 'x' }), row('c', { terminalId: '42' })]).close).toEqual([
      'a',
      'b',
      'c',
    ]);
  });
});
