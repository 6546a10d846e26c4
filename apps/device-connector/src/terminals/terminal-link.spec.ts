import { deviceKey } from './terminal-link';

describe(deviceKey.name, () => {
  const row = { protocol: 'JOINPROTO' as const, dialect: null, connection: { kind: 'tcp', host: '192.0.2.10', port: 7001 } };

  it('is the same for the same agent and connection, whatever the order of the connection fields', () => {
    expect(deviceKey('agent-1', row)).toBe(deviceKey('agent-1', { ...row, connection: { port: 7001, host: '192.0.2.10', kind: 'tcp' } }));
    expect(deviceKey('agent-1', row)).toMatch(/^[A-Za-z0-9_-]{22}$/);
  });

  it('changes with anything that may lead to another device: the agent, the address, the port, the dialect', () => {
    const keys = [
      deviceKey('agent-1', row),
      deviceKey('agent-2', row),
      deviceKey('agent-1', { ...row, connection: { ...row.connection, host: '192.0.2.11' } }),
      deviceKey('agent-1', { ...row, connection: { ...row.connection, port: 7002 } }),
      deviceKey('agent-1', { ...row, protocol: 'JPAY', dialect: 'aqsi' }),
      deviceKey('agent-1', { ...row, protocol: 'JPAY', dialect: 'jpay' }),
    ];
    expect(new Set(keys).size).toBe(keys.length);
  });
});
