import { execFile } from 'node:child_process';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';

import { StateStore } from './config';
import { startFakeConnector } from './testing/fake-connector';
import { AGENT_VERSION } from './version';

const ROOT = path.resolve(__dirname, '../../..');

/** The `payorch-agent` command as installed by npm (package.json bin), from source. */
function cli(args: string[], env: Record<string, string> = {}): Promise<{ code: number; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    execFile(
      process.execPath,
      [path.join(ROOT, 'apps/agent/bin/payorch-agent.js'), ...args],
      {
        cwd: ROOT,
        encoding: 'utf8',
        env: { ...process.env, PAYORCH_AGENT_FROM_SOURCE: '1', PAYORCH_AGENT_STATE_DIR: mkdtempSync(path.join(tmpdir(), 'agent-')), ...env },
      },
      (error, stdout, stderr) => resolve({ code: error ? Number(error.code ?? 1) : 0, stdout, stderr }),
    );
  });
}

describe('payorch-agent CLI', () => {
  // Each test starts the CLI as a process through the TypeScript loader: seconds on a busy machine.
  jest.setTimeout(30_000);
  it('prints its version and help', async () => {
    expect((await cli(['--version'])).stdout.trim()).toBe(AGENT_VERSION);
    const help = (await cli(['--help'])).stdout;
    for (const expected of [
      '--connector <url>',
      '--config <file>',
      'wss://<host>[:<port>]/agent',
      'enroll',
      'run',
      'doctor',
      'status',
      '--reconnect-base-ms <ms>',
    ]) {
      expect(help).toContain(expected);
    }
    // Simulators are a dev tool (apps/dev-sim), not part of the shipped agent.
    expect(help).not.toMatch(/simulat/i);
  });

  it('refuses bad settings with every problem listed, and an https:// connector with the accepted form', async () => {
    const res = await cli(['--reconnect-max-ms', 'soon', '--connector', 'https://c.example', 'status'], { PAYORCH_AGENT_LOG_LEVEL: 'loud' });
    expect(res.code).toBe(1);
    expect(res.stderr).toBe(
      [
        'payorch-agent: invalid configuration:',
        '  - PAYORCH_AGENT_LOG_LEVEL: expected one of fatal|error|warn|info|debug|trace|silent, got "loud"',
        '  - --connector (#1): connector URL "https://c.example" uses https://, which is not accepted: the connector URL is its WebSocket endpoint; use wss://c.example/agent',
        '  - --reconnect-max-ms: expected whole milliseconds between 1 and 3600000, got "soon"',
        '',
      ].join('\n'),
    );
  });

  it('enrolls at the first reachable connector and reports the status as JSON', async () => {
    const connector = await startFakeConnector({ credential: 'pac_cli', enrollmentToken: 'pen_cli' });
    const stateDir = mkdtempSync(path.join(tmpdir(), 'agent-'));
    try {
      const dead = 'ws://127.0.0.1:1/agent';
      const enrolled = await cli(['enroll', '--connector', dead, '--connector', connector.url, '--token', 'pen_cli'], { PAYORCH_AGENT_STATE_DIR: stateDir });
      expect(enrolled.stderr).toContain(`cannot reach ${dead}`);
      expect(enrolled.stderr).toContain(`enrolled as agent agent-1; credential saved to ${path.join(stateDir, 'credential.json')}`);
      expect(enrolled.code).toBe(0);
      expect(new StateStore(stateDir).readCredential()).toMatchObject({ connector: connector.url, credential: 'pac_cli', agentId: 'agent-1' });

      const status = await cli(['status'], { PAYORCH_AGENT_STATE_DIR: stateDir, PAYORCH_AGENT_CONNECTORS: `wss://backup.example/agent ${connector.url}` });
      expect(JSON.parse(status.stdout)).toEqual({
        version: AGENT_VERSION,
        enrolled: true,
        agentId: 'agent-1',
        connector: connector.url,
        connectors: ['wss://backup.example/agent', connector.url],
        tunnel: null,
      });

      const reused = await cli(['enroll', '--connector', connector.url, '--token', 'pen_used'], { PAYORCH_AGENT_STATE_DIR: stateDir });
      expect(reused.code).toBe(1);
      expect(reused.stderr).toBe(`payorch-agent: enrollment refused by ${connector.url}: invalid, used or expired enrollment token\n`);
    } finally {
      await connector.close();
    }
  });
});
