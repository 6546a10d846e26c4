import { execFile } from 'node:child_process';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { stripVTControlCharacters } from 'node:util';

/**
 * `npm run circular` (the `circular imports` step of `npm test`) fails on any import cycle, including
 * one made only of `import type` (.madgerc counts type imports). Runs the script's own madge command
 * on fixture folders instead of apps/ and libs/.
 */

const ROOT = path.resolve(__dirname, '../..');

function circularCommand(): { bin: string; args: string[] } {
  const script = (
    JSON.parse(readFileSync(path.join(ROOT, 'package.json'), 'utf8')) as {
      scripts: Record<string, string>;
    }
  ).scripts.circular;
  const [bin, ...args] = script.split(/\s+/);
  expect(bin).toBe('madge');
  expect(args).toEqual(expect.arrayContaining(['--circular', 'apps', 'libs']));
  return {
    bin: path.join(ROOT, 'node_modules/.bin/madge'),
    args: args.filter((arg) => arg !== 'apps' && arg !== 'libs'),
  };
}

/** Runs the circular-imports command on `dir` from the repository root (where .madgerc is). */
function runCircular(dir: string): Promise<{ code: number; output: string }> {
  const { bin, args } = circularCommand();
  return new Promise((resolve) => {
    execFile(bin, [...args, dir], { cwd: ROOT, env: { ...process.env, FORCE_COLOR: '0' } }, (error, stdout, stderr) => {
      // Nx forces colours on in its tasks; compare plain text.
      resolve({
        code: error ? Number(error.code) : 0,
        output: stripVTControlCharacters(stdout + stderr),
      });
    });
  });
}

function writeSources(dir: string, files: Record<string, string>): void {
  for (const [name, text] of Object.entries(files)) {
    mkdirSync(path.dirname(path.join(dir, name)), { recursive: true });
    writeFileSync(path.join(dir, name), text);
  }
}

describe('npm run circular', () => {
  let dir: string;

  beforeEach(() => {
    dir = mkdtempSync(path.join(tmpdir(), 'circular-'));
  });

  afterEach(() => rmSync(dir, { recursive: true, force: true }));

  it('fails on a cycle made only of type imports', async () => {
    writeSources(dir, {
      'simulator.ts': "import type { Flow } from './flow';\n\nexport interface Simulator {\n  flow?: Flow;\n}\n",
      'flow.ts': "import type { Simulator } from './simulator';\n\nexport interface Flow {\n  simulator?: Simulator;\n}\n",
    });
    const { code, output } = await runCircular(dir);
    expect(output).toMatch(/flow\.ts > simulator\.ts|simulator\.ts > flow\.ts/);
    expect(code).toBe(1);
  }, 60_000);

  it('passes when the shared shape lives in its own module', async () => {
    writeSources(dir, {
      'terminal.ts': 'export interface Terminal {\n  dialect: string;\n}\n',
      'flow.ts': "import type { Terminal } from './terminal';\n\nexport const run = (terminal: Terminal): string => terminal.dialect;\n",
      'simulator.ts':
        "import { run } from './flow';\nimport type { Terminal } from './terminal';\n\nexport const start = (terminal: Terminal): string => run(terminal);\n",
    });
    const { code, output } = await runCircular(dir);
    expect(output).toContain('No circular dependency found');
    expect(code).toBe(0);
  }, 60_000);
});
