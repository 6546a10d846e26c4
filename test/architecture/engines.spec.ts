import { readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import path from 'node:path';

/**
 * npm's own range logic. Installed with the tooling but not yet declared: to declare,
 * `npm install -D -E semver@7.8.5 @types/semver@7.8.0`, then `import semver from 'semver'`.
 */
interface Semver {
  coerce(version: string): { major: number } | null;
  major(version: { major: number } | string): number;
  minVersion(range: string): { major: number } | null;
  subset(sub: string, dom: string): boolean;
}
const semver = createRequire(__filename)('semver') as Semver;

/**
 * `engines.node` of package.json is a promise: every dependency installed by `npm ci` admits every
 * Node version it admits (its range is a subset of each dependency's: jest and ESLint skip Node 23). It fails when a dependency (or a new major of one) declares a higher floor,
 * which `npm ci` would otherwise only print as EBADENGINE warnings (issue 21: commander 15,
 * nestjs-pino 5 and file-type 22 need Node 22 while `engines` said ≥ 20.19).
 */
const ROOT = path.resolve(__dirname, '../..');

interface Lock {
  packages: Record<string, { version?: string; engines?: { node?: string } | string[]; optional?: boolean }>;
}

describe('package.json engines', () => {
  const manifest = JSON.parse(readFileSync(path.join(ROOT, 'package.json'), 'utf8')) as { engines: { node: string } };
  const lock = JSON.parse(readFileSync(path.join(ROOT, 'package-lock.json'), 'utf8')) as Lock;
  const floor = semver.minVersion(manifest.engines.node);

  it('admits only Node versions that every locked dependency admits', () => {
    expect(floor).not.toBeNull();
    const refused = Object.entries(lock.packages)
      .filter(([where, pkg]) => where !== '' && pkg.engines && !Array.isArray(pkg.engines) && pkg.engines.node)
      .filter(([, pkg]) => !semver.subset(manifest.engines.node, (pkg.engines as { node: string }).node))
      .map(([where, pkg]) => `${where.replace(/^.*node_modules\//, '')}@${pkg.version} needs node ${(pkg.engines as { node: string }).node}`);
    expect(refused).toEqual([]);
  });

  it('names the same Node major in .nvmrc', () => {
    const nvmrc = readFileSync(path.join(ROOT, '.nvmrc'), 'utf8').trim();
    expect(semver.major(semver.coerce(nvmrc)!)).toBe(semver.major(floor!));
  });
});
