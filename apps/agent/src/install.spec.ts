import { spawnSync } from 'node:child_process';
import { chmodSync, existsSync, lstatSync, mkdtempSync, readFileSync, readlinkSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';

import { resolveSettings } from './config';

const ROOT = path.resolve(__dirname, '../../..');
const INSTALL = path.join(ROOT, 'deploy/agent/install.sh');
const UNIT = path.join(ROOT, 'deploy/agent/payorch-agent.service');

/** Always below a temporary --prefix: the test never touches the system, even when run as root. */
function install(...args: string[]) {
  if (!args.includes('--prefix')) throw new Error('install.sh is only run with --prefix in tests');
  const res = spawnSync('bash', [INSTALL, ...args], { encoding: 'utf8' });
  return { code: res.status, stdout: res.stdout, stderr: res.stderr };
}

/** [Section] Key=Value lines of a unit file; repeated keys keep every value. */
function parseUnit(text: string): Record<string, Record<string, string[]>> {
  const unit: Record<string, Record<string, string[]>> = {};
  let section = '';
  for (const raw of text.split('\n')) {
    const line = raw.trim();
    if (!line || line.startsWith('#')) continue;
    const header = /^\[(\w+)\]$/.exec(line);
    if (header) section = header[1]!;
    else {
      const [key, ...value] = line.split('=');
      ((unit[section] ??= {})[key!] ??= []).push(value.join('='));
    }
  }
  return unit;
}

describe('deploy/agent/install.sh (--prefix: no root, no systemctl)', () => {
  const binaryDir = mkdtempSync(path.join(tmpdir(), 'agent-bin-'));
  const binary = path.join(binaryDir, 'payorch-agent');
  writeFileSync(binary, '#!/bin/sh\necho 0.1.0\n');
  chmodSync(binary, 0o755);

  it('installs the executable, config, state directory and unit, and prints the system steps it skipped', () => {
    const prefix = mkdtempSync(path.join(tmpdir(), 'agent-prefix-'));
    const res = install(
      '--prefix',
      prefix,
      '--binary',
      binary,
      '--connector',
      'wss://c1.example/agent',
      '--connector',
      'wss://c2.example:8443/agent',
      '--token',
      'pen_x',
    );
    expect(res.stderr).toBe('');
    expect(res.code).toBe(0);
    for (const skipped of [
      'useradd --system',
      'runuser -u payorch-agent',
      'systemctl daemon-reload',
      'systemctl enable payorch-agent.service',
      'systemctl restart',
    ]) {
      expect(res.stdout).toContain(`skipped (--prefix): ${skipped}`);
    }
    expect(res.stdout).not.toContain('pen_x');

    const exe = path.join(prefix, 'opt/payorch-agent/payorch-agent');
    expect(statSync(exe).mode & 0o777).toBe(0o755);
    expect(lstatSync(path.join(prefix, 'usr/local/bin/payorch-agent')).isSymbolicLink()).toBe(true);
    expect(readlinkSync(path.join(prefix, 'usr/local/bin/payorch-agent'))).toBe('/opt/payorch-agent/payorch-agent');
    expect(readFileSync(path.join(prefix, 'etc/systemd/system/payorch-agent.service'), 'utf8')).toBe(readFileSync(UNIT, 'utf8'));
    expect(statSync(path.join(prefix, 'var/lib/payorch-agent')).mode & 0o777).toBe(0o700);

    // The written config is valid for the agent itself.
    const config = path.join(prefix, 'etc/payorch-agent/agent.json');
    expect(statSync(config).mode & 0o777).toBe(0o640);
    expect(resolveSettings({ flags: { config }, env: {} })).toMatchObject({
      connectors: ['wss://c1.example/agent', 'wss://c2.example:8443/agent'],
      stateDir: '/var/lib/payorch-agent',
      logLevel: 'info',
    });

    // Idempotent: again with the same arguments changes nothing; new connectors keep a backup.
    const again = install('--prefix', prefix, '--binary', binary, '--connector', 'wss://c1.example/agent', '--connector', 'wss://c2.example:8443/agent');
    expect(again.code).toBe(0);
    expect(again.stdout).toContain('config /etc/payorch-agent/agent.json unchanged');
    expect(existsSync(`${config}.bak`)).toBe(false);
    const changed = install('--prefix', prefix, '--binary', binary, '--connector', 'wss://c3.example/agent');
    expect(changed.code).toBe(0);
    expect(JSON.parse(readFileSync(`${config}.bak`, 'utf8')).connectors).toHaveLength(2);
    expect(JSON.parse(readFileSync(config, 'utf8')).connectors).toEqual(['wss://c3.example/agent']);

    // --uninstall keeps config and credential; --purge removes them.
    const state = path.join(prefix, 'var/lib/payorch-agent/credential.json');
    writeFileSync(state, '{}');
    expect(install('--prefix', prefix, '--uninstall').code).toBe(0);
    expect(existsSync(exe)).toBe(false);
    expect(existsSync(path.join(prefix, 'etc/systemd/system/payorch-agent.service'))).toBe(false);
    expect(existsSync(config)).toBe(true);
    expect(existsSync(state)).toBe(true);
    expect(install('--prefix', prefix, '--uninstall', '--purge').code).toBe(0);
    expect(existsSync(config)).toBe(false);
    expect(existsSync(state)).toBe(false);
  });

  it('refuses a connector that is not wss://host/agent, and a first install without any connector', () => {
    const prefix = mkdtempSync(path.join(tmpdir(), 'agent-prefix-'));
    const https = install('--prefix', prefix, '--binary', binary, '--connector', 'https://c.example');
    expect(https.code).toBe(2);
    expect(https.stderr).toBe(
      'install.sh: connector URL "https://c.example" is not accepted: write it as wss://<host>[:<port>]/agent, e.g. wss://connector.example.com/agent\n',
    );
    const none = install('--prefix', prefix, '--binary', binary);
    expect(none.code).toBe(2);
    expect(none.stderr).toContain('no configuration yet: pass --connector wss://<host>/agent');
  });
});

describe('deploy/agent/payorch-agent.service', () => {
  const text = readFileSync(UNIT, 'utf8');

  it('runs the agent as its own user, restarts it, and confines it to its state directory', () => {
    const unit = parseUnit(text);
    expect(unit.Service).toMatchObject({
      User: ['payorch-agent'],
      Group: ['payorch-agent'],
      ExecStart: ['/opt/payorch-agent/payorch-agent --config /etc/payorch-agent/agent.json run'],
      Restart: ['always'],
      NoNewPrivileges: ['yes'],
      ProtectSystem: ['strict'],
      ProtectHome: ['yes'],
      ReadWritePaths: ['/var/lib/payorch-agent'],
      StateDirectory: ['payorch-agent'],
      CapabilityBoundingSet: [''],
      DevicePolicy: ['closed'],
      DeviceAllow: ['char-ttyS rw', 'char-ttyUSB rw', 'char-ttyACM rw'],
    });
    expect(unit.Install).toEqual({ WantedBy: ['multi-user.target'] });
    expect(unit.Unit!.After).toEqual(['network-online.target']);
  });

  /** `systemd-analyze verify` output for a unit file where the tool exists (this CI image, Debian/Ubuntu), else the parse check's findings. */
  function verify(file: string): string {
    const res = spawnSync('systemd-analyze', ['verify', '--man=no', file], { encoding: 'utf8' });
    if (res.error) {
      const unit = parseUnit(readFileSync(file, 'utf8'));
      const bool = (v: string) => ['yes', 'no', 'true', 'false'].includes(v);
      return Object.entries(unit.Service ?? {})
        .filter(([key, values]) => ['NoNewPrivileges', 'ProtectHome', 'PrivateTmp'].includes(key) && !values.every(bool))
        .map(([key]) => `Failed to parse boolean value: ${key}`)
        .join('\n');
    }
    return `${res.stdout}${res.stderr}`;
  }

  it('verifies cleanly (systemd-analyze verify where installed)', () => {
    const dir = mkdtempSync(path.join(tmpdir(), 'agent-unit-'));
    const file = path.join(dir, 'payorch-agent.service');
    // verify checks that ExecStart is executable: point it at one that exists here.
    writeFileSync(file, text.replace('/opt/payorch-agent/payorch-agent', '/bin/true'));
    expect(verify(file)).toBe('');
    // And it does complain about a broken unit (the check is live).
    writeFileSync(file, text.replace('/opt/payorch-agent/payorch-agent', '/bin/true').replace('NoNewPrivileges=yes', 'NoNewPrivileges=perhaps'));
    expect(verify(file)).toContain('Failed to parse boolean value');
  });
});
