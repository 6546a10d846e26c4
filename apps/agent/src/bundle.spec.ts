import { execFile, execFileSync, spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { type AddressInfo, createServer, type Server } from 'node:net';
import { tmpdir } from 'node:os';
import path from 'node:path';

import { StateStore } from './config';
import { closedPort, type FakeConnector, startFakeConnector } from './testing/fake-connector';
import { AGENT_VERSION } from './version';

const ROOT = path.resolve(__dirname, '../../..');

/** `npm run build:agent-sea` into a temporary directory: the bundle, and the SEA blob from it. */
describe('payorch-agent bundle (scripts/build-agent-sea.mjs)', () => {
  const outDir = mkdtempSync(path.join(tmpdir(), 'agent-sea-'));
  const bundle = path.join(outDir, 'payorch-agent.cjs');
  let connector: FakeConnector;
  let terminal: Server;

  const run = (args: string[], stateDir: string) =>
    new Promise<{ code: number; stdout: string }>((resolve) => {
      // Plain node, no TypeScript loader, outside the repository (no node_modules beside it).
      execFile(
        process.execPath,
        [bundle, ...args],
        { cwd: outDir, encoding: 'utf8', env: { PATH: process.env.PATH, PAYORCH_AGENT_STATE_DIR: stateDir } },
        (error, stdout) => resolve({ code: error ? Number(error.code) : 0, stdout }),
      );
    });

  beforeAll(async () => {
    execFileSync(process.execPath, [path.join(ROOT, 'scripts/build-agent-sea.mjs'), '--out-dir', outDir], { cwd: ROOT, stdio: 'pipe' });
    terminal = createServer((socket) => socket.destroy());
    await new Promise<void>((resolve) => terminal.listen(0, '127.0.0.1', resolve));
    connector = await startFakeConnector({
      credential: 'pac_bundle',
      terminals: [
        { terminalId: 'till-1', protocol: 'joinproto', link: { kind: 'tcp-connect', host: '127.0.0.1', port: (terminal.address() as AddressInfo).port } },
      ],
    });
  });

  afterAll(async () => {
    await connector.close();
    await new Promise<void>((resolve) => terminal.close(() => resolve()));
    rmSync(outDir, { recursive: true, force: true }); // the executable is a copy of node (~100 MB)
  });

  it("gives ws the agent's frame masking (native when beside it, else 32-bit words), not ws's byte-at-a-time fallback", () => {
    const text = readFileSync(bundle, 'utf8');
    expect(text).not.toContain('WS_NO_BUFFER_UTIL ??=');
    expect(text).not.toMatch(/require\("bufferutil"\)/);
    expect(text).toContain('function maskWords(');
  });

  it('builds one CommonJS file and the single-executable blob', () => {
    expect(readFileSync(bundle, 'utf8').split('\n', 1)[0]).toBe('#!/usr/bin/env node');
    expect(existsSync(path.join(outDir, 'payorch-agent.blob'))).toBe(true);
    expect(JSON.parse(readFileSync(path.join(outDir, 'sea-config.json'), 'utf8'))).toMatchObject({ main: bundle, disableExperimentalSEAWarning: true });
  });

  it('assembles the single executable (postject): it runs without node or the repository, silently', () => {
    const exe = path.join(outDir, 'payorch-agent');
    const res = spawnSync(exe, ['--version'], { cwd: tmpdir(), encoding: 'utf8', env: { PATH: '/usr/bin:/bin' } });
    expect({ status: res.status, stdout: res.stdout, stderr: res.stderr }).toEqual({ status: 0, stdout: `${AGENT_VERSION}\n`, stderr: '' });
  });

  it('runs with plain node: --version', async () => {
    const res = await run(['--version'], mkdtempSync(path.join(tmpdir(), 'agent-')));
    expect(res).toEqual({ code: 0, stdout: `${AGENT_VERSION}\n` });
  });

  it('runs doctor against a loopback connector: healthy → exit 0, an unreachable connector → exit 1', async () => {
    const stateDir = mkdtempSync(path.join(tmpdir(), 'agent-'));
    new StateStore(stateDir).writeCredential({ connector: connector.url, agentId: 'agent-1', tenantId: 't', credential: 'pac_bundle', enrolledAt: 'now' });

    const healthy = await run(['doctor'], stateDir);
    expect(healthy.code).toBe(0);
    const lines = healthy.stdout.trim().split('\n');
    expect(lines.slice(1).map((l) => l.split(/\s+/).slice(0, 2).join(' '))).toEqual([
      '[OK] dns',
      '[OK] tcp',
      '[SKIP] tls',
      '[OK] websocket',
      '[OK] credential',
      '[OK] tunnel',
      '[OK] terminals',
      '[OK] terminal',
      'verdict: HEALTHY',
    ]);

    // Taken just now: a port freed in beforeAll may have been given to another test's listener meanwhile.
    const deadPort = await closedPort();
    const down = await run(['doctor', '--connector', `ws://127.0.0.1:${deadPort}/agent`], stateDir);
    expect(down.code).toBe(1);
    expect(down.stdout).toContain(
      `[FAIL] tcp        ws://127.0.0.1:${deadPort}/agent  cannot connect to 127.0.0.1:${deadPort} (ECONNREFUSED) — hint: nothing listens there`,
    );
    expect(down.stdout).toMatch(/verdict: NOT HEALTHY \(1 of \d+ checks failed\)\n$/);
  });
});
