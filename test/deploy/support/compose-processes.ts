import { spawnSync } from 'node:child_process';
import { cpSync, existsSync, mkdtempSync, readdirSync, rmSync, statSync } from 'node:fs';
import path from 'node:path';

import { freePort, REPO_ROOT } from '@payorch/testing';

import { ServiceProcess } from '../../faults/support/stack';
import { type AppName, appOfCommand, type ComposeService, loadCompose } from './deploy-files';

/**
 * deploy/compose.yaml as local processes (issue 18): every service whose command runs a production bundle
 * (`node dist/apps/<app>/main.js`) becomes one child process that runs **that command** with **that
 * environment**, after Compose's interpolation with an operator's `.env`, and only these replacements:
 * - a private copy of `/app` (privateAppDir(): package.json and the bundles, node_modules found upwards) is
 *   the working directory, as the image's WORKDIR;
 * - `*_HOST=0.0.0.0` → `127.0.0.1`, and every `*_PORT` → a spare loopback port (each container has its own
 *   network namespace; local processes share one);
 * - a PostgreSQL URL naming a Compose service → the given (test) database's app URL, a Redis URL naming one
 *   → the given Redis URL, `REDIS_KEY_PREFIX` → the given prefix (shared by every process, as in Compose).
 * Anything else that still names a Compose service's host is an error: the mapping would be silently wrong.
 * The proxy (nginx), PostgreSQL, Redis and the one-shot migration are not started (the caller provides
 * the database and Redis; it talks to each gateway and connector directly).
 */

export const BUNDLED_APPS = ['api-gateway', 'device-connector', 'settlement-worker', 'agent'] as const;

/** Newest modification time of the TypeScript sources bundled into the apps (apps/, libs/, generated/; specs excluded). */
function newestSourceMs(): number {
  let newest = 0;
  const walk = (dir: string) => {
    for (const entry of readdirSync(dir, { withFileTypes: true })) {
      if (entry.name === 'node_modules' || entry.name.startsWith('.')) continue;
      const full = path.join(dir, entry.name);
      if (entry.isDirectory()) walk(full);
      else if (/\.(ts|mjs|js|json)$/.test(entry.name) && !/\.(spec|int-spec|e2e-spec)\.ts$/.test(entry.name)) newest = Math.max(newest, statSync(full).mtimeMs);
    }
  };
  for (const dir of ['apps', 'libs', 'generated']) if (existsSync(path.join(REPO_ROOT, dir))) walk(path.join(REPO_ROOT, dir));
  return newest;
}

/**
 * `npm run build`'s bundles: built (deploy/build/bundle.mjs, what `nx build` runs; about a second per app)
 * when one is missing or older than the sources, so the processes run the code under test, not a stale build.
 */
export function ensureBundles(): void {
  const bundles = BUNDLED_APPS.map((app) => path.join(REPO_ROOT, 'dist/apps', app, 'main.js'));
  const sources = newestSourceMs();
  if (bundles.every((file) => existsSync(file) && statSync(file).mtimeMs >= sources)) return;
  const build = spawnSync(process.execPath, ['deploy/build/bundle.mjs', ...BUNDLED_APPS], { cwd: REPO_ROOT, encoding: 'utf8' });
  if (build.status !== 0) throw new Error(`build failed:\n${build.stdout}\n${build.stderr}`);
}

/**
 * A private copy of the image's `/app` inside the repository: `package.json` and `dist/apps/<app>/` for every
 * bundled app (node_modules resolves upwards to the repository's, as the image's own `node_modules` would).
 * The processes run from it, so a concurrent rebuild of dist/ (production-build.deploy-spec.ts removes and
 * rewrites it) cannot pull a bundle from under a starting process, and a bundle that reads a file from the
 * source tree fails here as it would in the image. Remove it with `rmSync(dir, { recursive: true })`.
 */
export function privateAppDir(): string {
  for (let attempt = 0; ; attempt += 1) {
    ensureBundles();
    const dir = mkdtempSync(path.join(REPO_ROOT, 'dist', '.app-'));
    try {
      cpSync(path.join(REPO_ROOT, 'package.json'), path.join(dir, 'package.json'));
      for (const app of BUNDLED_APPS) cpSync(path.join(REPO_ROOT, 'dist/apps', app), path.join(dir, 'dist/apps', app), { recursive: true });
      return dir;
    } catch (error) {
      rmSync(dir, { recursive: true, force: true });
      if (attempt >= 2) throw error; // dist/ was being rebuilt meanwhile: build (if needed) and copy again
    }
  }
}

export interface ComposeProcess {
  /** The Compose service name, e.g. `connector-2`. */
  service: string;
  app: AppName;
  process: ServiceProcess;
  /** The environment it runs with (after the mapping). */
  env: Record<string, string>;
  /** The spare port that replaced the service's listening port (the one its healthcheck names). */
  port: number;
  url: string;
}

export interface ComposeMapping {
  /** The directory playing the image's WORKDIR `/app` (privateAppDir()). */
  appDir: string;
  /** Values of deploy/.env (interpolated into compose.yaml as Compose does). */
  dotenv: Record<string, string>;
  databaseAppUrl: string;
  redisUrl: string;
  redisKeyPrefix: string;
}

/** The environment of one service, mapped to local processes (rules above). */
export async function mapEnvironment(
  serviceName: string,
  environment: Record<string, string>,
  hosts: Set<string>,
  mapping: ComposeMapping,
): Promise<Record<string, string>> {
  const namesHost = (value: string) => {
    const match = /^[a-z][a-z0-9+.-]*:\/\/(?:[^@/]*@)?([^:/?#]+)/i.exec(value);
    return match !== null && hosts.has(match[1]!);
  };
  const env: Record<string, string> = {};
  for (const [name, raw] of Object.entries(environment)) {
    const value = String(raw ?? '');
    if (name.endsWith('_HOST') && value === '0.0.0.0') env[name] = '127.0.0.1';
    else if (name.endsWith('_PORT')) env[name] = String(await freePort());
    else if (name === 'REDIS_KEY_PREFIX') env[name] = mapping.redisKeyPrefix;
    else if (namesHost(value) && /^postgres(ql)?:/.test(value)) env[name] = mapping.databaseAppUrl;
    else if (namesHost(value) && /^rediss?:/.test(value)) env[name] = mapping.redisUrl;
    else if (namesHost(value)) throw new Error(`compose ${serviceName}: ${name} names a Compose host and has no local mapping: ${value}`);
    else env[name] = value;
  }
  return env;
}

/** One ServiceProcess per bundle-running service of deploy/compose.yaml (not started). */
export async function composeProcesses(mapping: ComposeMapping): Promise<ComposeProcess[]> {
  const { services } = loadCompose(mapping.dotenv);
  const hosts = new Set(Object.keys(services));
  const out: ComposeProcess[] = [];
  for (const [service, spec] of Object.entries(services) as Array<[string, ComposeService]>) {
    const app = appOfCommand(spec.command);
    if (!app) continue;
    const env = await mapEnvironment(service, spec.environment ?? {}, hosts, mapping);
    // The port its healthcheck probes: ['CMD', 'node', 'healthcheck.mjs', '<PORT VARIABLE>', '<default>'].
    const portVariable = spec.healthcheck?.test[3];
    const port = Number(portVariable && env[portVariable]);
    if (!port) throw new Error(`compose ${service}: no listening port found from its healthcheck (${JSON.stringify(spec.healthcheck?.test)})`);
    const url = `http://127.0.0.1:${port}`;
    out.push({
      service,
      app,
      env,
      port,
      url,
      process: new ServiceProcess({
        name: service,
        entry: '',
        command: spec.command!,
        cwd: mapping.appDir,
        env,
        cleanEnv: true,
        readyUrl: `${url}/health/ready`,
      }),
    });
  }
  return out;
}
