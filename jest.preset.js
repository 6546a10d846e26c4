// Shared jest settings for every project. Each project's jest.config.js spreads this.
// TZ is pinned so business-day logic never depends on the machine's zone.
process.env.TZ = 'UTC';
const path = require('node:path');
const { compilerOptions } = require('./tsconfig.json');

const root = __dirname;
const moduleNameMapper = {};
for (const [alias, [target]] of Object.entries(compilerOptions.paths)) {
  const key = '^' + alias.replace('/*', '/(.*)').replace(/[.]/g, '\\.') + '$';
  moduleNameMapper[key] = path.join(root, target.replace('*', '$1'));
}

module.exports = {
  testEnvironment: 'node',
  transform: {
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
