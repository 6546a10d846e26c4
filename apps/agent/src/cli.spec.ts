import { execFileSync } from 'node:child_process';
import { mkdtempSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';

import { backoffDelay } from './bridge/tunnel-client';
import { connectorHttpUrl, connectorWsUrl, StateStore } from './config';
import { AGENT_VERSION } from './version';

const ROOT = path.resolve(__dirname, '../../..');
const cli = (...args: string[]) =>
  execFileSync(process.execPath, [path.join(ROOT, 'scripts/run-ts.mjs'), 'apps/agent/src/cli.ts', ...args], {
    cwd: ROOT,
    encoding: 'utf8',
    env: { ...process.env, PAYORCH_AGENT_STATE_DIR: mkdtempSync(path.join(tmpdir(), 'agent-')) },
  });

describe('payorch-agent CLI', () => {
  it('prints its version and help', () => {
    expect(cli('--version').trim()).toBe(AGENT_VERSION);
    const help = cli('--help');
    expect(help).toContain('--connector <url>');
    expect(help).toContain('status');
    expect(help).toContain('--reconnect-base-ms <ms>');
    expect(help).toContain('--reconnect-max-ms <ms>');
    // Simulators are a dev tool (apps/dev-sim), not part of the shipped agent.
    expect(help).not.toMatch(/simulat/i);
  });

  it('refuses a reconnect delay that is not whole milliseconds, with a clear error', () => {
    expect(() => cli('--reconnect-max-ms', 'soon', 'status')).toThrow(/--reconnect-max-ms.*expected whole milliseconds/s);
  });

  it('reports a not-enrolled status as JSON', () => {
    expect(JSON.parse(cli('status'))).toEqual({ version: AGENT_VERSION, enrolled: false, agentId: null, connector: null, tunnel: null });
  });
});

describe(backoffDelay.name, () => {
  it('grows exponentially up to the cap, with full jitter', () => {
    expect(backoffDelay(0, 500, 30_000, () => 0.999)).toBe(499);
    expect(backoffDelay(3, 500, 30_000, () => 0.999)).toBe(3996);
    expect(backoffDelay(20, 500, 30_000, () => 0.999)).toBe(29_970);
    expect(backoffDelay(5, 500, 30_000, () => 0)).toBe(0);
  });
});

describe('connector URLs and state files', () => {
  it('derives HTTP and WebSocket URLs', () => {
    expect(connectorHttpUrl('wss://c.example/')).toBe('https://c.example');
    expect(connectorWsUrl('https://c.example')).toBe('wss://c.example/agent');
    expect(connectorWsUrl('http://127.0.0.1:3001')).toBe('ws://127.0.0.1:3001/agent');
    expect(() => connectorHttpUrl('ftp://x')).toThrow(/--connector/);
  });

  it('keeps the credential in a 0600 file', () => {
    const store = new StateStore(mkdtempSync(path.join(tmpdir(), 'agent-')));
    store.writeCredential({ connector: 'http://c', agentId: 'a', tenantId: 't', credential: 'pac_x', enrolledAt: 'now' });
    const mode = statSync(store.credentialFile).mode & 0o777;
    expect(mode).toBe(0o600);
    expect(store.readCredential()?.credential).toBe('pac_x');
  });
});
