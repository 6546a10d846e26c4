#!/usr/bin/env node
// Runs a TypeScript entry point with SWC (decorator metadata + tsconfig paths), e.g.
//   node scripts/run-ts.mjs apps/api-gateway/src/main.ts
import { spawn } from 'node:child_process';
import { createRequire } from 'node:module';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const require = createRequire(import.meta.url);
const [entry, ...args] = process.argv.slice(2);
if (!entry) {
  console.error('usage: node scripts/run-ts.mjs <entry.ts> [args...]');
  process.exit(2);
}
const child = spawn(process.execPath, ['-r', require.resolve('@swc-node/register'), path.resolve(entry), ...args], {
  stdio: 'inherit',
  env: { ...process.env, TS_NODE_PROJECT: path.join(root, 'tsconfig.json'), SWC_NODE_PROJECT: path.join(root, 'tsconfig.json') },
});
for (const sig of ['SIGINT', 'SIGTERM']) process.on(sig, () => child.kill(sig));
child.on('exit', (code, signal) => process.exit(code ?? (signal ? 1 : 0)));
