#!/usr/bin/env node
// Production build of one app: `node deploy/build/bundle.mjs <app>` → dist/apps/<app>/main.js, started
// with plain `node dist/apps/<app>/main.js` (no TypeScript loader at run time). The Nx `build` target of
// every app runs this (`npx nx build api-gateway`, `npm run build` for all four).
//
// - esbuild bundles the app's own code and every @payorch/* library (tsconfig paths) into one CommonJS
//   file; every node_modules package stays external (`require`d at run time from the production
//   node_modules: native and optional dependencies such as serialport, pg-native — absent — and the
//   Prisma runtime behave exactly as in development).
// - TypeScript is compiled by SWC, as `npm start` and jest do (scripts/run-ts.mjs, jest.preset.js):
//   esbuild cannot emit decorator metadata, which NestJS' dependency injection needs.
// - The Prisma client generated from prisma/schema.prisma (generated/prisma, `npm run db:generate`) is
//   bundled like a library; it loads its query compiler from @prisma/client at run time.
import { existsSync, mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const require = createRequire(import.meta.url);
const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');

/** The entry point of each app that has a production build. */
export const ENTRIES = {
  'api-gateway': 'apps/api-gateway/src/main.ts',
  'device-connector': 'apps/device-connector/src/main.ts',
  'settlement-worker': 'apps/settlement-worker/src/main.ts',
  agent: 'apps/agent/src/cli.ts',
};

/** More bundles beside main.js: the operator CLI ships with the gateway (`node dist/apps/api-gateway/admin.js`). */
const EXTRA_ENTRIES = {
  'api-gateway': { admin: 'apps/api-gateway/src/admin/cli.ts' },
};

/** Import paths that are the repository's own code (bundled); everything else bare is a package (external). */
const OWN = /^(@payorch\/|\.{0,2}\/|[A-Za-z]:[\\/])/;

function swcPlugin(swc) {
  return {
    name: 'swc-decorators',
    setup(build) {
      build.onLoad({ filter: /\.ts$/ }, async (args) => {
        const source = readFileSync(args.path, 'utf8');
        const { code } = await swc.transform(source, {
          filename: args.path,
          sourceMaps: 'inline',
          jsc: {
            parser: { syntax: 'typescript', decorators: true },
            transform: { legacyDecorator: true, decoratorMetadata: true },
            target: 'es2022',
            keepClassNames: true,
          },
          module: { type: 'es6' },
        });
        return { contents: code, loader: 'js' };
      });
    },
  };
}

const externalPackages = {
  name: 'external-packages',
  setup(build) {
    build.onResolve({ filter: /.*/ }, (args) => {
      if (args.kind === 'entry-point' || OWN.test(args.path) || args.path.startsWith('node:')) return undefined;
      return { path: args.path, external: true };
    });
  },
};

export async function bundle(app, { outDir = path.join(ROOT, 'dist/apps', app), quiet = false } = {}) {
  const entry = ENTRIES[app];
  if (!entry) throw new Error(`unknown app "${app}"; one of: ${Object.keys(ENTRIES).join(', ')}`);
  if (!existsSync(path.join(ROOT, 'generated/prisma/client.ts'))) {
    throw new Error('generated/prisma is missing: run `npm run db:generate` first');
  }
  const esbuild = require('esbuild');
  const swc = require('@swc/core');
  rmSync(outDir, { recursive: true, force: true });
  mkdirSync(outDir, { recursive: true });
  const result = await esbuild.build({
    absWorkingDir: ROOT,
    entryPoints: Object.fromEntries(Object.entries({ main: entry, ...EXTRA_ENTRIES[app] }).map(([name, file]) => [name, path.join(ROOT, file)])),
    outdir: outDir,
    bundle: true,
    platform: 'node',
    target: 'node20',
    format: 'cjs',
    tsconfig: path.join(ROOT, 'tsconfig.base.json'),
    sourcemap: true,
    sourcesContent: false,
    // NestJS and our logs use class names (DI errors, health details): never rename them.
    keepNames: true,
    legalComments: 'none',
    logLevel: quiet ? 'error' : 'warning',
    metafile: true,
    plugins: [externalPackages, swcPlugin(swc)],
  });
  const packages = new Set();
  for (const input of Object.values(result.metafile.inputs)) {
    for (const imp of input.imports)
      if (imp.external && !imp.path.startsWith('node:') && !imp.path.startsWith('<'))
        packages.add(imp.path.startsWith('@') ? imp.path.split('/').slice(0, 2).join('/') : imp.path.split('/')[0]);
  }
  // What the bundle requires at run time (the image installs them with `npm ci --omit=dev`).
  writeFileSync(path.join(outDir, 'externals.json'), `${JSON.stringify([...packages].sort(), null, 2)}\n`);
  const bytes = result.metafile.outputs[path.relative(ROOT, path.join(outDir, 'main.js'))]?.bytes ?? 0;
  if (!quiet)
    process.stdout.write(`[build] ${app}: ${path.relative(ROOT, outDir)}/main.js (${Math.round(bytes / 1024)} KiB, ${packages.size} external packages)\n`);
  return { outDir, externals: [...packages].sort() };
}

if (process.argv[1] && path.resolve(process.argv[1]) === fileURLToPath(import.meta.url)) {
  const apps = process.argv.slice(2);
  if (apps.length === 0) {
    process.stderr.write(`usage: node deploy/build/bundle.mjs <app...>  (${Object.keys(ENTRIES).join(', ')})\n`);
    process.exit(2);
  }
  try {
    for (const app of apps) await bundle(app);
  } catch (error) {
    process.stderr.write(`[build] ${error.message}\n`);
    process.exit(1);
  }
}
