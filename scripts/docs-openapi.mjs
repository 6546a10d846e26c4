#!/usr/bin/env node
// Regenerates docs/openapi.json from the gateway's decorators (what it serves at /docs/openapi.json).
// `--check` fails instead when the committed file differs. Needs Redis (the gateway connects at boot).
import { spawnSync } from 'node:child_process';
const code = `
const fs = require('node:fs');
const { openApiDocumentJson } = require('./apps/api-gateway/src/openapi-document.ts');
openApiDocumentJson({ DATABASE_APP_URL: process.env.DATABASE_APP_URL, REDIS_URL: process.env.REDIS_URL }).then((text) => {
  if (process.argv.includes('--check')) {
    if (fs.readFileSync('docs/openapi.json', 'utf8') !== text) { console.error('docs/openapi.json is stale: npm run docs:openapi'); process.exit(1); }
  } else fs.writeFileSync('docs/openapi.json', text);
  process.exit(0);
}, (err) => { console.error(err); process.exit(1); });
`;
const res = spawnSync(process.execPath, ['-r', '@swc-node/register', '-e', code, '--', ...process.argv.slice(2)], { stdio: 'inherit' });
process.exit(res.status ?? 1);
