// Shared jest settings for every project. Each project's jest.config.js spreads this.
// TZ is pinned so business-day logic never depends on the machine's zone.
process.env.TZ = 'UTC';
const path = require('node:path');
const { compilerOptions } = require('./tsconfig.base.json');

const root = __dirname;
const moduleNameMapper = {};
for (const [alias, [target]] of Object.entries(compilerOptions.paths)) {
  const key = '^' + alias.replace(/[.]/g, '\\.').replace('/*', '/(.*)') + '$';
  moduleNameMapper[key] = path.join(root, target.replace('*', '$1'));
}

// NestJS 12 ships ES modules only. Node 20 loads them through require(esm), but jest's module
// system does not, so jest compiles those packages to CommonJS (import.meta.url is rewritten to
// the CommonJS equivalent). Add a package here when jest reports "Must use import to load ES Module".
// Lit (and what it imports) for the console's template units, e.g. apps/console/src/components/notice.spec.ts.
const ESM_PACKAGES = ['@nestjs', 'commander', 'lit', 'lit-html', 'lit-element', '@lit', '@lit-labs'];

module.exports = {
  testEnvironment: 'node',
  // A ceiling, not a wait: an integration spec's first test also warms its process up (modules, prepared statements,
  // BullMQ scripts), which took over jest's 5 s default on a 2-core machine under load (the e2e suite has 30 s).
  testTimeout: 20000,
  transformIgnorePatterns: [`/node_modules/(?!(${ESM_PACKAGES.join('|')})/)`],
  transform: {
    '^.+/node_modules/.+\\.m?js$': [
      '@swc/jest',
      {
        jsc: {
          parser: { syntax: 'ecmascript' },
          target: 'es2022',
          transform: {
            optimizer: { globals: { vars: { 'import.meta.url': 'require("url").pathToFileURL(__filename).href' } } },
          },
        },
        module: { type: 'commonjs' },
      },
    ],
    '^.+\\.ts$': [
      '@swc/jest',
      {
        jsc: {
          parser: { syntax: 'typescript', decorators: true },
          transform: { legacyDecorator: true, decoratorMetadata: true },
          target: 'es2022',
        },
        module: { type: 'commonjs' },
        sourceMaps: 'inline',
      },
    ],
  },
  moduleFileExtensions: ['ts', 'js', 'json'],
  moduleNameMapper,
  testPathIgnorePatterns: ['/node_modules/', '/dist/'],
};
