// Flat ESLint config. Module boundaries follow the Nx tags in each project.json (STYLE C1/C9).
import js from '@eslint/js';
import nx from '@nx/eslint-plugin';
import jest from 'eslint-plugin-jest';
import tseslint from 'typescript-eslint';

const boundaries = (allow) => [
  'error',
  {
    allow,
    enforceBuildableLibDependency: false,
    allowCircularSelfDependency: false,
    depConstraints: [
      { sourceTag: 'scope:protocol', onlyDependOnLibsWithTags: ['scope:protocol'] },
      { sourceTag: 'scope:infra', onlyDependOnLibsWithTags: ['scope:infra', 'scope:domain'] },
      { sourceTag: 'scope:domain', onlyDependOnLibsWithTags: ['scope:domain', 'scope:infra', 'scope:protocol'] },
      { sourceTag: 'scope:testing', onlyDependOnLibsWithTags: ['scope:testing', 'scope:protocol', 'scope:domain', 'scope:infra'] },
      { sourceTag: 'type:lib', notDependOnLibsWithTags: ['type:app', 'type:test'] },
      { sourceTag: 'runtime:agent', onlyDependOnLibsWithTags: ['scope:infra', 'scope:domain', 'scope:protocol', 'scope:testing'] },
      { sourceTag: 'type:app', notDependOnLibsWithTags: ['type:app', 'type:test'] },
      { sourceTag: 'type:test', onlyDependOnLibsWithTags: ['*'] },
    ],
  },
];

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
  {
    // Libraries log through pino (or not at all); only CLI entry points and benches print.
    files: ['libs/**/*.ts'],
    ignores: ['**/cli.ts', '**/*.spec.ts', '**/*.int-spec.ts', '**/testing/**'],
    rules: { 'no-console': 'error' },
  },
  {
    files: ['**/*.spec.ts', '**/*.int-spec.ts', '**/*.e2e-spec.ts'],
    ...jest.configs['flat/recommended'],
    rules: {
      ...jest.configs['flat/recommended'].rules,
      // Tests may use the shared test tools (simulators, test databases) of any layer.
      '@nx/enforce-module-boundaries': boundaries(['@payorch/testing', '@payorch/testing/*', '@payorch/joinproto/testing']),
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
