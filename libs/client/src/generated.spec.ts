import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';

const ROOT = path.resolve(__dirname, '../../..');

describe('generated client types', () => {
  it('are what openapi-typescript makes of docs/openapi.json today (npm run client:generate)', () => {
    const dir = mkdtempSync(path.join(tmpdir(), 'payorch-client-'));
    try {
      // Same generator and options as `npm run client:generate` (redocly.yaml x-openapi-ts), into a scratch file.
      writeFileSync(
        path.join(dir, 'redocly.yaml'),
        `apis:\n  payorch:\n    root: ${path.join(ROOT, 'docs/openapi.json')}\n    x-openapi-ts:\n      output: ${path.join(dir, 'openapi.ts')}\n`,
      );
      const res = spawnSync(process.execPath, [path.join(ROOT, 'node_modules/openapi-typescript/bin/cli.js')], { cwd: dir, encoding: 'utf8' });
      expect(res.status).toBe(0);
      const fresh = readFileSync(path.join(dir, 'openapi.ts'), 'utf8');
      expect(fresh).toBe(readFileSync(path.join(__dirname, 'generated/openapi.ts'), 'utf8'));
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
