#!/usr/bin/env node
// Regenerates docs/protocols/result-codes.md from the result-code tables the drivers use
// (libs/drivers/src/result-codes). libs/drivers/src/result-codes/result-codes.spec.ts fails when they drift.
import { spawnSync } from 'node:child_process';
const code = `
const fs = require('node:fs');
const { renderResultCodesDoc } = require('./libs/drivers/src/result-codes/render.ts');
fs.writeFileSync('docs/protocols/result-codes.md', renderResultCodesDoc());
`;
const res = spawnSync(process.execPath, ['-r', '@swc-node/register', '-e', code], {
  stdio: 'inherit',
  env: { ...process.env, SWC_NODE_PROJECT: 'tsconfig.json', TS_NODE_PROJECT: 'tsconfig.json' },
});
process.exit(res.status ?? 1);
