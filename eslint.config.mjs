// Flat ESLint config. Module boundaries follow the Nx tags in each project.json (STYLE C1/C9,
// docs/architecture.md "Module boundaries").
import js from '@eslint/js';
import nx from '@nx/eslint-plugin';
// @nx/eslint-plugin's own dependency: the same module the boundary rule reads the graph with.
import devkit from '@nx/devkit';
import jest from 'eslint-plugin-jest';
import tseslint from 'typescript-eslint';

// @nx/enforce-module-boundaries only reads the project graph Nx caches in .nx/workspace-data. When there
// is none (a clean clone, CI) it prints a notice and checks nothing, so lint would pass whatever is
// imported. Build the graph here (incrementally when a cache exists, so it is never stale) before any
// rule runs, whoever runs ESLint (npm run lint, npm test, an editor, the ESLint API), and refuse to
// lint when the rule still could not read it.
await devkit.createProjectGraphAsync({ exitOnError: false });
let graph;
try {
  graph = devkit.readCachedProjectGraph();
} catch (error) {
  throw new Error(`eslint.config.mjs: no Nx project graph for @nx/enforce-module-boundaries: ${error instanceof Error ? error.message : error}`);
}
/** The TypeScript files of every project with one of these tags. */
const projectsTagged = (...tags) =>
  Object.values(graph.nodes)
    .filter((node) => tags.some((tag) => node.data.tags?.includes(tag)))
    .map((node) => `${node.data.root}/**/*.ts`);

// Tags (project.json) and what a project with each tag may import. A project must satisfy every
// constraint of every tag it has; the rule checks each import against the imported project's tags.
// Imports of applications are always refused by the rule itself (apps never import each other).
// Every constraint is checked on each file's own imports: the graph carries projects, roots and tags
// (Nx's source analysis is off here), and linting every file covers the transitive case.
const depConstraints = [
  // Production code never uses the test tools (@payorch/testing): only tests, benches and dev tools do.
  { sourceTag: 'type:app', onlyDependOnLibsWithTags: ['type:lib'], notDependOnLibsWithTags: ['scope:testing'] },
  { sourceTag: 'type:lib', notDependOnLibsWithTags: ['scope:testing'] },
  // Protocol libraries (joinproto, jpay, ssi-ecr, assist-tokenpay) use nothing of ours but the byte
  // transport, and the transport uses nothing of ours.
  { sourceTag: 'protocol:transport', onlyDependOnLibsWithTags: [] },
  { sourceTag: 'scope:protocol', onlyDependOnLibsWithTags: ['protocol:transport'] },
  { sourceTag: 'scope:protocol-tool', onlyDependOnLibsWithTags: ['scope:protocol'] },
  { sourceTag: 'scope:infra', onlyDependOnLibsWithTags: ['scope:infra', 'scope:domain'] },
  { sourceTag: 'scope:domain', onlyDependOnLibsWithTags: ['scope:domain', 'scope:infra', 'scope:protocol'] },
  { sourceTag: 'scope:testing', onlyDependOnLibsWithTags: ['scope:protocol', 'scope:domain', 'scope:infra'] },
  // The agent runs on till PCs: only libraries that are themselves closed under runtime:agent.
  { sourceTag: 'runtime:agent', onlyDependOnLibsWithTags: ['runtime:agent'] },
  // Dev tools (apps/dev-sim) and test projects may use any library, the test tools included.
  { sourceTag: 'type:dev-tool', onlyDependOnLibsWithTags: ['type:lib'] },
  { sourceTag: 'type:test', onlyDependOnLibsWithTags: ['type:lib'] },
];

const boundaries = (allow) => ['error', { allow, enforceBuildableLibDependency: false, allowCircularSelfDependency: false, depConstraints }];

// Test code: spec files and test-support folders (`libs/testing`, `libs/protocols/*/src/testing`).
const TEST_CODE = ['**/*.spec.ts', '**/*.int-spec.ts', '**/*.e2e-spec.ts', '**/*.security-spec.ts', '**/*.fault-spec.ts', '**/testing/**'];
// `@payorch/testing`, `@payorch/testing/…` and the testing entry points of other libraries (`@payorch/joinproto/testing`).
const TESTING_ENTRY_POINTS = '^@payorch/([^/]+/)?testing(/.+)?$';

/**
 * - testing: production source of apps and libraries. The testing entry points inside a library
 *   (`@payorch/joinproto/testing`, `./testing/…`) are one Nx project with it, so tags cannot tell them apart.
 * - database: protocol libraries, proto-cli and the agent's libraries. The generated Prisma client
 *   (`@payorch/prisma`, generated/) belongs to no Nx project, so the boundary rule does not see it.
 */
function restrictedImports({ testing = false, database = false }) {
  const paths = database ? [{ name: '@payorch/prisma', message: 'Protocol libraries and the agent never touch the database (docs/architecture.md).' }] : [];
  const patterns = testing
    ? [
        {
          regex: '^@payorch/[^/]+/testing(/.+)?$',
          message: 'Testing entry points are for tests, benches and dev tools only, never production source (docs/architecture.md).',
        },
        {
          regex: '^\\.\\.?/(.+/)?testing(/.+)?$',
          message: 'A testing folder is for tests, benches and dev tools only, never production source (docs/architecture.md).',
        },
      ]
    : [];
  return ['error', { paths, patterns }];
}
const WITHOUT_DATABASE = projectsTagged('scope:protocol', 'scope:protocol-tool', 'runtime:agent');

export default tseslint.config(
  { ignores: ['**/node_modules/**', 'dist/**', 'generated/**', '.data/**', '.nx/**', 'coverage/**', '**/*.js', '**/*.mjs', '**/*.cjs'] },
  js.configs.recommended,
  ...tseslint.configs.recommended,
  {
    files: ['**/*.ts'],
    plugins: { '@nx': nx },
    rules: {
      '@typescript-eslint/no-unused-vars': ['error', { argsIgnorePattern: '^_', varsIgnorePattern: '^_', caughtErrors: 'none' }],
      '@typescript-eslint/no-explicit-any': 'off',
      'no-lone-blocks': 'error',
      'no-console': 'off',
      // Protocol code validates control characters on purpose.
      'no-control-regex': 'off',
      '@nx/enforce-module-boundaries': boundaries([]),
    },
  },
  // Imports the boundary rule cannot see, refused by name. (A later block's no-restricted-imports
  // replaces an earlier one's for the same file, hence one block per combination.)
  {
    files: ['apps/**/*.ts', 'libs/**/*.ts'],
    ignores: [...TEST_CODE, 'apps/dev-sim/**'],
    rules: { 'no-restricted-imports': restrictedImports({ testing: true }) },
  },
  {
    files: WITHOUT_DATABASE,
    rules: { 'no-restricted-imports': restrictedImports({ database: true }) },
  },
  {
    files: WITHOUT_DATABASE,
    ignores: TEST_CODE,
    rules: { 'no-restricted-imports': restrictedImports({ database: true, testing: true }) },
  },
  {
    // Libraries log through pino (or not at all); only CLI entry points and benches print.
    files: ['libs/**/*.ts'],
    ignores: ['**/cli.ts', '**/*.spec.ts', '**/*.int-spec.ts', '**/testing/**'],
    rules: { 'no-console': 'error' },
  },
  {
    // Test code may import the test tools of any layer (simulators, test databases, vectors).
    files: TEST_CODE,
    rules: { '@nx/enforce-module-boundaries': boundaries([TESTING_ENTRY_POINTS]) },
  },
  {
    files: ['**/*.spec.ts', '**/*.int-spec.ts', '**/*.e2e-spec.ts'],
    ...jest.configs['flat/recommended'],
    rules: {
      ...jest.configs['flat/recommended'].rules,
      'jest/no-focused-tests': 'error',
      // describe(Thing.name) is our convention; @fast-check/jest's test.prop/it.prop are test blocks.
      'jest/valid-title': ['error', { ignoreTypeOfDescribeName: true, ignoreTypeOfTestName: true }],
      'jest/no-standalone-expect': ['error', { additionalTestBlockFunctions: ['test.prop', 'it.prop', 'fcTest.prop', 'fcIt.prop', 'each'] }],
      'jest/no-disabled-tests': 'error',
      'jest/expect-expect': ['error', { assertFunctionNames: ['expect', 'expect*', 'assert*', 'check*'] }],
      'jest/no-conditional-expect': 'off',
      'jest/no-done-callback': 'off',
    },
  },
  {
    // End-to-end tests run whole apps in-process, so they import app entry points directly.
    files: ['test/**/*.ts'],
    rules: { '@nx/enforce-module-boundaries': 'off' },
  },
);
