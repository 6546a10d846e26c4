#!/usr/bin/env node
// Builds the shippable payorch-agent (docs/runbooks/agent.md, "Building the executable"):
//   1. one CommonJS bundle, dist/agent/payorch-agent.cjs (esbuild; runs with plain `node`);
//   2. a Node single executable application (SEA) preparation blob, dist/agent/payorch-agent.blob
//      (`node --experimental-sea-config`);
//   3. the executable dist/agent/payorch-agent (payorch-agent.exe on Windows): a copy of this
//      `node` binary with the blob injected by postject, when postject is installed (it is not a
//      dependency of this repository; see the runbook for the one command to run otherwise).
// `serialport` is native (a .node file per platform) and stays outside the bundle and the
// executable: serial terminals need node_modules/serialport beside it (--with-serialport copies it).
//
//   node scripts/build-agent-sea.mjs [--out-dir dist/agent] [--bundle-only] [--with-serialport]
import { execFileSync } from 'node:child_process';
import { chmodSync, copyFileSync, cpSync, existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const require = createRequire(import.meta.url);
const { values: args } = parseArgs({
  options: {
    'out-dir': { type: 'string', default: path.join('dist', 'agent') },
    'bundle-only': { type: 'boolean', default: false },
    'with-serialport': { type: 'boolean', default: false },
  },
});
const outDir = path.resolve(root, args['out-dir']);
const bundle = path.join(outDir, 'payorch-agent.cjs');
const log = (line) => process.stderr.write(`build-agent-sea: ${line}\n`);
/** A path as short as possible for the log: relative inside the repository, absolute outside. */
const show = (file) => (path.relative(root, file).startsWith('..') ? file : path.relative(root, file));

mkdirSync(outDir, { recursive: true });

// 1. Bundle. Native modules stay outside it: serialport is loaded at run time beside the executable
// (apps/agent/src/bridge/serial.ts). ws's optional `bufferutil` (frame masking) resolves to
// apps/agent/src/native/ws-masking.ts, bundled: the native binding when it lies beside the executable, else
// 32-bit words in JavaScript (ws's own fallback masks a byte at a time). utf-8-validate is not used (the tunnel
// sends binary frames only).
const wsMasking = {
  name: 'ws-masking',
  setup(b) {
    b.onResolve({ filter: /^bufferutil$/ }, () => ({ path: path.join(root, 'apps/agent/src/native/ws-masking.ts') }));
  },
};
const { build } = await import('esbuild');
const version = /AGENT_VERSION = '([^']+)'/.exec(readFileSync(path.join(root, 'apps/agent/src/version.ts'), 'utf8'))?.[1] ?? '0.0.0';
await build({
  entryPoints: [path.join(root, 'apps/agent/src/cli.ts')],
  outfile: bundle,
  bundle: true,
  platform: 'node',
  target: 'node20',
  format: 'cjs',
  tsconfig: path.join(root, 'tsconfig.base.json'),
  external: ['serialport', '@serialport/*', 'utf-8-validate'],
  plugins: [wsMasking],
  // ws loads utf-8-validate unless told not to; it is not shipped, and inside the single executable a failed
  // require() of it prints a warning on every start.
  banner: {
    js: `#!/usr/bin/env node\n// payorch-agent ${version}: built by scripts/build-agent-sea.mjs; do not edit.\nprocess.env.WS_NO_UTF_8_VALIDATE ??= '1';`,
  },
  legalComments: 'none',
  logLevel: 'warning',
});
chmodSync(bundle, 0o755);
log(`bundle ${show(bundle)} (payorch-agent ${version})`);

if (args['with-serialport']) {
  // The whole serialport package tree with its prebuilt bindings, for node_modules/ beside the executable.
  const modules = path.join(outDir, 'node_modules');
  for (const name of ['serialport', '@serialport', 'bufferutil'])
    cpSync(path.join(root, 'node_modules', name), path.join(modules, name), { recursive: true, dereference: true });
  for (const dep of ['debug', 'ms', 'node-addon-api', 'node-gyp-build']) {
    const from = path.join(root, 'node_modules', dep);
    if (existsSync(from)) cpSync(from, path.join(modules, dep), { recursive: true, dereference: true });
  }
  log(`serial support copied to ${show(modules)} (ship it beside the executable)`);
}

if (args['bundle-only']) process.exit(0);

// 2. SEA preparation blob.
const blob = path.join(outDir, 'payorch-agent.blob');
const seaConfig = path.join(outDir, 'sea-config.json');
writeFileSync(
  seaConfig,
  `${JSON.stringify({ main: bundle, output: blob, disableExperimentalSEAWarning: true, useSnapshot: false, useCodeCache: false }, null, 2)}\n`,
);
execFileSync(process.execPath, ['--experimental-sea-config', seaConfig], { stdio: ['ignore', 'ignore', 'inherit'] });
log(`SEA blob ${show(blob)} (Node ${process.version}, ${process.platform}-${process.arch})`);

// 3. Inject the blob into a copy of this node binary.
const exe = path.join(outDir, process.platform === 'win32' ? 'payorch-agent.exe' : 'payorch-agent');
const FUSE = 'NODE_SEA_FUSE_fce680ab2cc467b6e072b8b5df1996b2';
let postject;
try {
  postject = require.resolve('postject/dist/cli.js');
} catch {
  postject = undefined;
}
const inject = [exe, 'NODE_SEA_BLOB', blob, '--sentinel-fuse', FUSE, ...(process.platform === 'darwin' ? ['--macho-segment-name', 'NODE_SEA'] : [])];
if (!postject) {
  log('postject is not installed, so the executable was not assembled. To finish it on this machine:');
  log(`  cp ${process.execPath} ${show(exe)}`);
  log(`  npx postject ${inject.map((a) => (path.isAbsolute(a) ? show(a) : a)).join(' ')}`);
  log('(the blob only works with the same Node version and platform as the node binary it is injected into)');
  process.exit(0);
}
copyFileSync(process.execPath, exe);
chmodSync(exe, 0o755);
if (process.platform === 'darwin') execFileSync('codesign', ['--remove-signature', exe]);
execFileSync(process.execPath, [postject, ...inject], { stdio: 'inherit' });
if (process.platform === 'darwin') execFileSync('codesign', ['--sign', '-', exe]);
log(`executable ${show(exe)}`);
