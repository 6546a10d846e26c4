import { type ChildProcess, spawn, spawnSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { tmpdir } from 'node:os';
import path from 'node:path';

import { Client } from 'pg';

import {
  createTestDatabase,
  freePort,
  REPO_ROOT,
  TEST_APP_PASSWORD,
  testAdminUrl,
  type TestDatabase,
  testRedisPrefix,
  testRedisUrl,
  waitFor,
  withTimeout,
} from '@payorch/testing';

import { type AppName, appOfCommand, loadCompose, SAMPLE_ENV } from './support/deploy-files';

/**
 * Issue 18, production builds: `npm run build` bundles each app into dist/apps/<app>/main.js, which starts
 * with plain `node` (no TypeScript loader) from the environment Compose gives it, becomes ready, passes the
 * image's HEALTHCHECK command, and on SIGTERM drains and exits 0 within SHUTDOWN_GRACE_MS. The migration
 * service's own command migrates a fresh database. Built once (about a second per app), then reused.
 */

const SERVICES: Array<{ app: AppName; compose: string; portVariable: string }> = [
  { app: 'api-gateway', compose: 'gateway-1', portVariable: 'GATEWAY_PORT' },
  { app: 'device-connector', compose: 'connector-1', portVariable: 'CONNECTOR_PORT' },
  { app: 'settlement-worker', compose: 'worker-1', portVariable: 'WORKER_HEALTH_PORT' },
];
const GRACE_MS = 10_000;

const children = new Set<ChildProcess>();
afterAll(() => {
  for (const child of children) child.kill('SIGKILL');
});

function start(
  command: string[],
  env: Record<string, string>,
): { child: ChildProcess; output: () => string; exit: Promise<{ code: number | null; signal: NodeJS.Signals | null }> } {
  const [bin, ...args] = command;
  // The compose command runs from the image's /app; here the repository root plays /app (dist/ is there).
  const child = spawn(bin === 'node' ? process.execPath : bin!, args, {
    cwd: REPO_ROOT,
    env: { PATH: process.env.PATH ?? '', ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  children.add(child);
  let output = '';
  child.stdout!.on('data', (d: Buffer) => (output += d.toString()));
  child.stderr!.on('data', (d: Buffer) => (output += d.toString()));
  const exit = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) =>
    child.once('exit', (code, signal) => {
      children.delete(child);
      resolve({ code, signal });
    }),
  );
  return { child, output: () => output, exit };
}

async function status(url: string): Promise<number> {
  try {
    const res = await fetch(url, { signal: AbortSignal.timeout(1500) });
    await res.arrayBuffer();
    return res.status;
  } catch {
    return 0;
  }
}

describe('production build (dist/apps/<app>/main.js with plain node)', () => {
  let testDb: TestDatabase;

  beforeAll(async () => {
    const build = spawnSync(process.execPath, ['deploy/build/bundle.mjs', 'api-gateway', 'device-connector', 'settlement-worker', 'agent'], {
      cwd: REPO_ROOT,
      encoding: 'utf8',
    });
    if (build.status !== 0) throw new Error(`build failed:\n${build.stdout}\n${build.stderr}`);
    testDb = await createTestDatabase();
  }, 120_000);

  afterAll(async () => {
    await testDb?.drop();
  });

  it('bundles the repository code and requires only production dependencies at run time', () => {
    const dependencies = Object.keys((JSON.parse(readFileSync(path.join(REPO_ROOT, 'package.json'), 'utf8')) as { dependencies: object }).dependencies);
    for (const app of ['api-gateway', 'device-connector', 'settlement-worker', 'agent']) {
      const dir = path.join(REPO_ROOT, 'dist/apps', app);
      const bundle = readFileSync(path.join(dir, 'main.js'), 'utf8');
      expect([app, /require\("@payorch\//.test(bundle), /require\("[^"]+\.ts"\)/.test(bundle)]).toEqual([app, false, false]);
      const externals = JSON.parse(readFileSync(path.join(dir, 'externals.json'), 'utf8')) as string[];
      expect([app, externals.filter((name) => !dependencies.includes(name))]).toEqual([app, []]);
    }
    // NestJS dependency injection needs decorator metadata (esbuild alone cannot emit it).
    expect(readFileSync(path.join(REPO_ROOT, 'dist/apps/api-gateway/main.js'), 'utf8')).toContain('"design:paramtypes"');
  });

  it("gives ws native frame masking from a production dependency's prebuilt binding, with no install script", () => {
    // An agent's frames are masked (RFC 6455 §5.3) and the connector unmasks them: ws's JavaScript fallback does that a
    // byte at a time (~440 MB/s here), which held the upstream relay bulk to 0.09x of loopback TCP (bench/tunnel/roundtrip).
    const manifest = JSON.parse(readFileSync(path.join(REPO_ROOT, 'package.json'), 'utf8')) as {
      dependencies: Record<string, string>;
      allowScripts: Record<string, boolean>;
    };
    expect([manifest.dependencies.bufferutil, manifest.allowScripts.bufferutil]).toEqual([expect.any(String), false]);
    const gypBuild = createRequire(__filename)('node-gyp-build') as { path: (dir: string) => string };
    const binding = gypBuild.path(path.dirname(require.resolve('bufferutil')));
    expect(binding).toContain(path.join('prebuilds', `${process.platform}-${process.arch}`));
    // ws loads it (it falls back to JavaScript silently when it cannot), and its masking is the binding's.
    const wsBuffers = createRequire(__filename)(path.join(path.dirname(require.resolve('ws')), 'lib/buffer-util.js')) as { mask: (...args: unknown[]) => void };
    expect(wsBuffers.mask.toString()).toContain('bufferUtil.mask');
    const source = randomBytes(4096);
    const key = Buffer.from([0x12, 0x34, 0x56, 0x78]);
    const output = Buffer.alloc(source.length);
    wsBuffers.mask(source, key, output, 0, source.length);
    expect(output.equals(Buffer.from(source.map((byte, i) => byte ^ key[i & 3]!)))).toBe(true);
  });

  it('starts each service from its Compose command and environment, ready and healthy, and exits 0 on SIGTERM within the grace period', async () => {
    const { services } = loadCompose(SAMPLE_ENV);
    const prefix = testRedisPrefix('deploy');
    const running = await Promise.all(
      SERVICES.map(async ({ app, compose, portVariable }) => {
        const service = services[compose]!;
        expect(appOfCommand(service.command)).toBe(app);
        const port = await freePort();
        // Compose's environment, with the addresses of this machine's PostgreSQL and Redis and a free port.
        const env: Record<string, string> = {
          ...(service.environment as Record<string, string>),
          DATABASE_APP_URL: testDb.appUrl,
          REDIS_URL: testRedisUrl(),
          REDIS_KEY_PREFIX: prefix,
          [portVariable]: String(port),
          [portVariable.replace(/PORT$/, 'HOST')]: '127.0.0.1',
          SHUTDOWN_GRACE_MS: String(GRACE_MS),
          SHUTDOWN_DRAIN_DELAY_MS: '300',
          LOG_LEVEL: 'info',
        };
        const proc = start(service.command!, env);
        const ready = `http://127.0.0.1:${port}/health/ready`;
        await waitFor(
          async () => {
            if (proc.child.exitCode !== null) throw new Error(`${app} exited while starting:\n${proc.output()}`);
            return (await status(ready)) === 200;
          },
          { timeoutMs: 60_000, intervalMs: 200, what: `${app} ready` },
        );
        return { app, proc, port, portVariable, env, service };
      }),
    );

    for (const { app, port, portVariable, env, service } of running) {
      // The image's HEALTHCHECK command (deploy/docker/healthcheck.mjs), as Compose runs it in the container.
      const [, , script, variable, fallback] = service.healthcheck!.test;
      expect(variable).toBe(portVariable);
      const check = spawnSync(process.execPath, [path.join(REPO_ROOT, 'deploy/docker', script!), variable!, fallback!], {
        env: { ...env, [portVariable]: String(port) },
      });
      expect([app, check.status]).toEqual([app, 0]);
    }

    await Promise.all(
      running.map(async ({ app, proc, port }) => {
        const started = Date.now();
        proc.child.kill('SIGTERM');
        // Readiness goes 503 first, while the process still answers (drain delay).
        await waitFor(async () => (await status(`http://127.0.0.1:${port}/health/ready`)) === 503 || proc.child.exitCode !== null, {
          timeoutMs: 5_000,
          intervalMs: 50,
          what: `${app} not ready after SIGTERM`,
        });
        const exit = await withTimeout(proc.exit, { timeoutMs: GRACE_MS + 2_000, what: `${app} exit after SIGTERM` });
        expect([app, exit, Date.now() - started < GRACE_MS]).toEqual([app, { code: 0, signal: null }, true]);
        expect(proc.output()).toContain('"msg":"shut down"');
      }),
    );
  }, 120_000);

  it('runs the agent bundle: --version, and SIGTERM while it is reconnecting exits 0', async () => {
    const version = spawnSync(process.execPath, ['dist/apps/agent/main.js', '--version'], { cwd: REPO_ROOT, encoding: 'utf8' });
    expect([version.status, version.stdout.trim()]).toEqual([0, expect.stringMatching(/^\d+\.\d+\.\d+/)]);
    const stateDir = mkdtempSync(path.join(tmpdir(), 'payorch-agent-'));
    try {
      const closedPort = await freePort();
      writeFileSync(
        path.join(stateDir, 'credential.json'),
        JSON.stringify({ connector: `http://127.0.0.1:${closedPort}`, agentId: 'a', tenantId: 't', credential: 'pac_x', enrolledAt: new Date().toISOString() }),
        { mode: 0o600 },
      );
      const agent = start(['node', 'dist/apps/agent/main.js', 'run', '--state-dir', stateDir], {});
      await waitFor(() => /tunnel (error|closed)/.test(agent.output()), { timeoutMs: 15_000, what: 'the agent dialling' });
      agent.child.kill('SIGTERM');
      expect(await withTimeout(agent.exit, { timeoutMs: 5_000, what: 'agent exit' })).toEqual({ code: 0, signal: null });
    } finally {
      rmSync(stateDir, { recursive: true, force: true });
    }
  }, 60_000);
});

describe("the Compose migration service's command on a fresh database", () => {
  const name = `payorch_deploy_${process.pid}_${randomBytes(3).toString('hex')}`;
  const admin = () => new Client({ connectionString: testAdminUrl() });
  const urlOf = (user?: { name: string; password: string }) => {
    const url = new URL(testAdminUrl());
    url.pathname = `/${name}`;
    if (user) {
      url.username = user.name;
      url.password = user.password;
    }
    return url.toString();
  };

  beforeAll(async () => {
    const client = admin();
    await client.connect();
    await client.query(`CREATE DATABASE "${name}"`);
    await client.end();
  });

  afterAll(async () => {
    const client = admin();
    await client.connect();
    await client.query(`DROP DATABASE IF EXISTS "${name}" WITH (FORCE)`);
    await client.end();
  });

  it('applies every migration once, gives payorch_app its password, and is a no-op the second time', async () => {
    const { services } = loadCompose(SAMPLE_ENV);
    const migrate = services.migrate!;
    // Compose's environment with this machine's PostgreSQL; the shared test password keeps other suites' role intact.
    const env = { ...(migrate.environment as Record<string, string>), DATABASE_URL: urlOf(), DATABASE_APP_PASSWORD: TEST_APP_PASSWORD };
    const first = start(migrate.command!, env);
    expect(await withTimeout(first.exit, { timeoutMs: 90_000, what: 'migration' })).toEqual({ code: 0, signal: null });
    expect(first.output()).toContain('[migrate] schema up to date');

    const migrations = readdirSync(path.join(REPO_ROOT, 'prisma/migrations')).filter((d) => /^\d{14}_/.test(d));
    const owner = new Client({ connectionString: urlOf() });
    await owner.connect();
    const { rows } = await owner.query<{ migration_name: string }>(
      'SELECT migration_name FROM "_prisma_migrations" WHERE finished_at IS NOT NULL ORDER BY migration_name',
    );
    await owner.end();
    expect(rows.map((r) => r.migration_name)).toEqual(migrations.sort());

    const app = new Client({ connectionString: urlOf({ name: 'payorch_app', password: TEST_APP_PASSWORD }) });
    await app.connect();
    // Logged in as the application role, under row-level security: no tenant set, no tenant visible.
    const tenants = await app.query('SELECT count(*)::int AS n FROM "Tenant"');
    await app.end();
    expect(tenants.rows[0]).toEqual({ n: 0 });

    const second = start(migrate.command!, env);
    expect(await withTimeout(second.exit, { timeoutMs: 60_000, what: 'second migration' })).toEqual({ code: 0, signal: null });
    expect(second.output()).toContain('No pending migrations to apply.');
  }, 120_000);

  it('refuses to run without the owner URL', async () => {
    const run = start(loadCompose(SAMPLE_ENV).services.migrate!.command!, {});
    expect(await withTimeout(run.exit, { timeoutMs: 10_000, what: 'migration' })).toEqual({ code: 2, signal: null });
    expect(run.output()).toContain('DATABASE_URL (owner role, postgresql://…) is required');
  });
});
