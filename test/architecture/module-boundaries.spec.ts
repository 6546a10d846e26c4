import { execFile } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';

/**
 * The module boundaries of docs/architecture.md, as ESLint enforces them (eslint.config.mjs and the
 * tags in each project.json). Fixture sources are linted as if they were files inside the projects
 * (ESLint lintText with a filePath), with a fresh, empty Nx workspace-data directory: the state of a
 * clean clone, where the boundary rule used to find no project graph and check nothing.
 */

const ROOT = path.resolve(__dirname, '../..');
const BOUNDARY_RULE = '@nx/enforce-module-boundaries';

interface LintMessage {
  ruleId: string | null;
  severity: number;
  line: number;
  message: string;
}

interface Fixture {
  name: string;
  filePath: string;
  text: string;
}

/** One import and a use of it, so that only the import itself can be reported. */
const importing = (name: string, from: string) => `import { ${name} } from '${from}';\n\nexport const fixture = ${name};\n`;

const FORBIDDEN: Array<Fixture & { ruleId: string; message: string }> = [
  {
    name: 'a protocol library importing @payorch/db',
    filePath: 'libs/protocols/jpay/src/boundary-fixture.ts',
    text: importing('Database', '@payorch/db'),
    ruleId: BOUNDARY_RULE,
    message: 'A project tagged with "scope:protocol" can only depend on libs tagged with "protocol:transport"',
  },
  {
    name: 'a protocol library importing the generated database client (in no Nx project)',
    filePath: 'libs/protocols/ssi-ecr/src/boundary-fixture.ts',
    text: importing('Prisma', '@payorch/prisma'),
    ruleId: 'no-restricted-imports',
    message: "'@payorch/prisma' import is restricted from being used. " + 'Protocol libraries and the agent never touch the database (docs/architecture.md).',
  },
  {
    name: 'a protocol library importing another protocol library',
    filePath: 'libs/assist-tokenpay/src/boundary-fixture.ts',
    text: importing('FrameDecoder', '@payorch/joinproto'),
    ruleId: BOUNDARY_RULE,
    message: 'A project tagged with "scope:protocol" can only depend on libs tagged with "protocol:transport"',
  },
  {
    name: 'the byte transport importing any library of ours',
    filePath: 'libs/protocols/transport/src/boundary-fixture.ts',
    text: importing('createLogger', '@payorch/logging'),
    ruleId: BOUNDARY_RULE,
    message: 'A project tagged with "protocol:transport" cannot depend on any libs with tags',
  },
  {
    name: 'an app importing another app',
    filePath: 'apps/api-gateway/src/boundary-fixture.ts',
    text: importing('ConnectorModule', '../../device-connector/src/connector.module'),
    ruleId: BOUNDARY_RULE,
    message: 'Projects cannot be imported by a relative or absolute path, and must begin with a npm scope',
  },
  {
    name: 'the dev tool importing the agent app',
    filePath: 'apps/dev-sim/src/boundary-fixture.ts',
    text: importing('LinkBridge', '../../agent/src/bridge/link-bridge'),
    ruleId: BOUNDARY_RULE,
    message: 'Projects cannot be imported by a relative or absolute path, and must begin with a npm scope',
  },
  {
    name: 'the agent (production source) importing a simulator from @payorch/testing',
    filePath: 'apps/agent/src/boundary-fixture.ts',
    text: importing('JpaySimulator', '@payorch/testing/jpay-sim'),
    ruleId: BOUNDARY_RULE,
    message: 'A project tagged with "type:app" can not depend on libs tagged with "scope:testing"',
  },
  {
    name: 'the agent importing a library that is not tagged runtime:agent',
    filePath: 'apps/agent/src/boundary-fixture.ts',
    text: importing('PayorchError', '@payorch/domain'),
    ruleId: BOUNDARY_RULE,
    message: 'A project tagged with "runtime:agent" can only depend on libs tagged with "runtime:agent"',
  },
  {
    name: 'a library (production source) importing @payorch/testing',
    filePath: 'libs/drivers/src/boundary-fixture.ts',
    text: importing('createTestDatabase', '@payorch/testing'),
    ruleId: BOUNDARY_RULE,
    message: 'A project tagged with "type:lib" can not depend on libs tagged with "scope:testing"',
  },
  {
    name: 'production source importing the testing entry point of a protocol library',
    filePath: 'libs/drivers/src/boundary-fixture.ts',
    text: importing('JOINPROTO_VECTORS', '@payorch/joinproto/testing'),
    ruleId: 'no-restricted-imports',
    message:
      "'@payorch/joinproto/testing' import is restricted from being used by a pattern. " +
      'Testing entry points are for tests, benches and dev tools only, never production source (docs/architecture.md).',
  },
  {
    name: "production source importing its own library's testing folder",
    filePath: 'libs/protocols/jpay/src/boundary-fixture.ts',
    text: importing('scriptedPeer', './testing/memory-transport'),
    ruleId: 'no-restricted-imports',
    message:
      "'./testing/memory-transport' import is restricted from being used by a pattern. " +
      'A testing folder is for tests, benches and dev tools only, never production source (docs/architecture.md).',
  },
];

const ALLOWED: Fixture[] = [
  {
    name: 'a protocol library importing the byte transport',
    filePath: 'libs/protocols/jpay/src/boundary-fixture.ts',
    text: importing('connectTcp', '@payorch/byte-transport'),
  },
  {
    name: 'the agent importing the tunnel library',
    filePath: 'apps/agent/src/boundary-fixture.ts',
    text: importing('attachWebSocket', '@payorch/tunnel'),
  },
  {
    name: 'a test of a library importing the test tools',
    filePath: 'libs/drivers/src/boundary-fixture.spec.ts',
    text: [
      "import { JOINPROTO_VECTORS } from '@payorch/joinproto/testing';",
      "import { createTestDatabase } from '@payorch/testing';",
      '',
      "it('has test tools', () => {",
      '  expect([createTestDatabase, JOINPROTO_VECTORS]).toHaveLength(2);',
      '});',
      '',
    ].join('\n'),
  },
  {
    name: 'a test of a protocol library importing a simulator',
    filePath: 'libs/protocols/jpay/src/boundary-fixture.spec.ts',
    text: [
      "import { JpaySimulator } from '@payorch/testing/jpay-sim';",
      '',
      "it('has a simulator', () => {",
      '  expect(JpaySimulator).toBeDefined();',
      '});',
      '',
    ].join('\n'),
  },
  {
    name: 'the dev tool importing the simulators',
    filePath: 'apps/dev-sim/src/boundary-fixture.ts',
    text: importing('JpaySimulator', '@payorch/testing/jpay-sim'),
  },
];

describe('module boundaries (eslint.config.mjs)', () => {
  let workspaceData: string;
  let results: Map<string, LintMessage[]>;

  beforeAll(async () => {
    workspaceData = mkdtempSync(path.join(tmpdir(), 'nx-workspace-data-'));
    const fixtures = [...FORBIDDEN, ...ALLOWED];
    const { stdout } = await promisify(execFile)(
      process.execPath,
      [path.join(__dirname, 'support/lint-texts.mjs'), JSON.stringify(fixtures.map(({ filePath, text }) => ({ filePath, text })))],
      {
        cwd: ROOT,
        env: { ...process.env, NX_DAEMON: 'false', NX_WORKSPACE_DATA_DIRECTORY: workspaceData },
        maxBuffer: 16 * 1024 * 1024,
      },
    );
    const linted = JSON.parse(stdout) as Array<{ messages: LintMessage[] }>;
    results = new Map(fixtures.map((fixture, i) => [fixture.name, linted[i].messages]));
  }, 120_000);

  afterAll(() => rmSync(workspaceData, { recursive: true, force: true }));

  it('builds the project graph itself when there is none (clean clone)', () => {
    expect(existsSync(path.join(workspaceData, 'project-graph.json'))).toBe(true);
  });

  it.each(FORBIDDEN)('refuses $name', ({ name, ruleId, message }) => {
    const messages = results.get(name)!;
    expect(
      messages.map((m) => ({
        ruleId: m.ruleId,
        severity: m.severity,
        line: m.line,
        message: m.message.split('\n')[0],
      })),
    ).toEqual([{ ruleId, severity: 2, line: 1, message }]);
  });

  it.each(ALLOWED)('allows $name', ({ name }) => {
    expect(results.get(name)).toEqual([]);
  });
});
