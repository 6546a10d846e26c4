import { type ChildProcess, execFile, spawn } from 'node:child_process';
import { mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';

import { createTestDatabase, freePort, REPO_ROOT, type TestDatabase, waitFor } from '@payorch/testing';

/**
 * `npm start` as a new user runs it (issue 21): against a fresh database, with its own redis-server,
 * on spare ports, it prints the README's quickstart; pasting it takes an approved payment. Ctrl-C
 * (SIGINT to the whole process group, as a terminal sends it) and a SIGTERM to npm alone (an IDE's
 * stop button) stop every process it started, redis-server included. Linux: reads /proc.
 */
const BEGIN = '# ---8<--- quickstart';
const END = '# --->8---';

interface Running {
  npm: ChildProcess;
  output: () => string;
}

function startSystem(env: Record<string, string>): Running {
  let output = '';
  const base = { ...process.env };
  for (const name of ['REDIS_URL', 'DATABASE_APP_URL', 'PAYORCH_MASTER_KEY', 'EGRESS_ALLOW_CIDRS']) delete base[name];
  // detached: its own process group, which the test signals as a terminal would.
  const npm = spawn('npm', ['start'], { cwd: REPO_ROOT, detached: true, env: { ...base, ...env }, stdio: ['ignore', 'pipe', 'pipe'] });
  npm.stdout!.on('data', (d: Buffer) => (output += d.toString()));
  npm.stderr!.on('data', (d: Buffer) => (output += d.toString()));
  return { npm, output: () => output };
}

/** Every live descendant of `root` (pid → command line), from /proc. */
function descendants(root: number): Map<number, string> {
  const parent = new Map<number, number>();
  for (const entry of readdirSync('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    try {
      const stat = readFileSync(`/proc/${entry}/stat`, 'utf8');
      parent.set(Number(entry), Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[1]));
    } catch {
      /* gone meanwhile */
    }
  }
  const found = new Map<number, string>();
  const queue = [root];
  while (queue.length) {
    const pid = queue.shift()!;
    for (const [child, ppid] of parent) {
      if (ppid !== pid || found.has(child)) continue;
      found.set(child, readFileSync(`/proc/${child}/cmdline`, 'utf8').replace(/\0/g, ' ').trim());
      queue.push(child);
    }
  }
  return found;
}

const alive = (pid: number) => {
  try {
    const state = readFileSync(`/proc/${pid}/stat`, 'utf8');
    return !/^\d+ \(.*\) Z/.test(state); // a zombie has exited
  } catch {
    return false;
  }
};

describe('npm start (README quickstart, Ctrl-C)', () => {
  jest.setTimeout(240_000);
  const dbs: TestDatabase[] = [];
  const dirs: string[] = [];
  const systems: Running[] = [];

  async function env(): Promise<Record<string, string>> {
    const db = await createTestDatabase();
    dbs.push(db);
    const dir = mkdtempSync(path.join(tmpdir(), 'payorch-start-'));
    dirs.push(dir);
    return {
      // The app role's URL is given: npm start would otherwise set payorch_app's password on this shared cluster.
      DATABASE_URL: db.adminUrl,
      DATABASE_APP_URL: db.appUrl,
      PAYORCH_DATA_DIR: dir,
      GATEWAY_PORT: String(await freePort()),
      CONNECTOR_PORT: String(await freePort()),
      WORKER_HEALTH_PORT: String(await freePort()),
      ASSIST_SANDBOX_PORT: String(await freePort()),
    };
  }

  afterAll(async () => {
    for (const { npm } of systems) {
      for (const pid of descendants(npm.pid!).keys()) process.kill(pid, 'SIGKILL');
      if (npm.exitCode === null) npm.kill('SIGKILL');
    }
    for (const db of dbs) await db.drop();
    for (const dir of dirs) rmSync(dir, { recursive: true, force: true });
  });

  it('prints the README quickstart; pasted, it takes an approved payment; Ctrl-C stops every process, redis-server last', async () => {
    const system = startSystem(await env());
    systems.push(system);
    await waitFor(() => system.output().includes(END) || system.npm.exitCode !== null, { timeoutMs: 150_000, intervalMs: 200, what: 'the quickstart' });
    const out = system.output();
    expect(out).toContain(END);
    const block = out.slice(out.indexOf(BEGIN), out.indexOf(END) + END.length);

    // The README shows the same lines (values aside): what a new user reads is what npm start prints.
    const readme = readFileSync(path.join(REPO_ROOT, 'README.md'), 'utf8');
    const documented = readme.slice(readme.indexOf(BEGIN), readme.indexOf(END) + END.length).split('\n');
    const printed = block.split('\n');
    expect(printed.map((l) => l.replace(/=.*$/, '='))).toEqual(documented.map((l) => l.replace(/\s+#.*$/, '').replace(/=.*$/, '=')));
    expect(printed.filter((l) => !l.startsWith('export'))).toEqual(documented.filter((l) => !l.startsWith('export')));

    const processes = descendants(system.npm.pid!);
    const commands = [...processes.values()].join('\n');
    for (const name of ['redis-server', 'api-gateway', 'device-connector', 'settlement-worker', 'dev-sim', 'apps/agent']) expect(commands).toContain(name);

    const { stdout } = await promisify(execFile)('bash', ['-c', block], { timeout: 60_000 });
    expect(JSON.parse(stdout)).toMatchObject({ type: 'purchase', state: 'approved', amount: 1500, currency: 'RUB' });

    process.kill(-system.npm.pid!, 'SIGINT');
    await waitFor(() => [...processes.keys()].every((pid) => !alive(pid)), {
      timeoutMs: 60_000,
      intervalMs: 100,
      what: () =>
        `every process gone: ${[...processes]
          .filter(([pid]) => alive(pid))
          .map(([, c]) => c)
          .join('; ')}`,
    });
    // redis-server outlived the draining services: none of them lost its Redis connection while stopping.
    const stopping = system.output().slice(system.output().indexOf('[start] stopping'));
    expect(stopping).not.toMatch(/ECONNREFUSED/);
  });

  it('stops every process when only npm gets SIGTERM (an IDE stop button) or loses its parent', async () => {
    const system = startSystem({ ...(await env()), PAYORCH_QUICKSTART: '0' });
    systems.push(system);
    await waitFor(() => system.output().includes('payorch is running') || system.npm.exitCode !== null, {
      timeoutMs: 120_000,
      intervalMs: 200,
      what: 'npm start',
    });
    const processes = descendants(system.npm.pid!);
    expect([...processes.values()].join('\n')).toContain('redis-server');
    system.npm.kill('SIGTERM');
    await waitFor(() => [...processes.keys()].every((pid) => !alive(pid)), {
      timeoutMs: 60_000,
      intervalMs: 100,
      what: () =>
        `every process gone: ${[...processes]
          .filter(([pid]) => alive(pid))
          .map(([, c]) => c)
          .join('; ')}`,
    });
  });
});
