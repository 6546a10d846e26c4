#!/usr/bin/env node
'use strict';
// The `payorch-agent` command (package.json "bin"). Runs the built bundle when there is one
// (dist/agent/payorch-agent.cjs, from `npm run build:agent-sea`), else the TypeScript source through
// scripts/run-ts.mjs. PAYORCH_AGENT_FROM_SOURCE=1 forces the source (development after a build).
// The shop's till PC gets the single executable instead (docs/runbooks/agent.md).
const { spawn } = require('node:child_process');
const { existsSync } = require('node:fs');
const path = require('node:path');

const root = path.resolve(__dirname, '../../..');
const bundle = path.join(root, 'dist', 'agent', 'payorch-agent.cjs');

if (existsSync(bundle) && process.env.PAYORCH_AGENT_FROM_SOURCE !== '1') {
  require(bundle);
} else {
  const child = spawn(
    process.execPath,
    [path.join(root, 'scripts', 'run-ts.mjs'), path.join(root, 'apps', 'agent', 'src', 'cli.ts'), ...process.argv.slice(2)],
    {
      stdio: 'inherit',
    },
  );
  // run-ts forwards these to the agent, which stops cleanly.
  for (const signal of ['SIGINT', 'SIGTERM']) process.on(signal, () => child.kill(signal));
  child.on('error', (error) => {
    process.stderr.write(`payorch-agent: cannot start: ${error.message}\n`);
    process.exit(1);
  });
  child.on('exit', (code, signal) => process.exit(code ?? (signal ? 1 : 0)));
}
