#!/usr/bin/env node
// Regenerates the configuration table in README.md from the zod schemas in libs/config.
import { spawnSync } from 'node:child_process';
const code = `
const fs = require('node:fs');
const { withConfigTable } = require('./libs/config/src/config-table.ts');
fs.writeFileSync('README.md', withConfigTable(fs.readFileSync('README.md', 'utf8')));
`;
const res = spawnSync(process.execPath, ['-r', '@swc-node/register', '-e', code], { stdio: 'inherit' });
process.exit(res.status ?? 1);
