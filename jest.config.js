// `npm run test:unit | test:int | test:e2e`: the whole repository's tests split by kind (Jest projects).
// `npm test` runs the same tests per Nx project plus lint, types and cycles (scripts/test.mjs).
const path = require('node:path');

const preset = require('./jest.preset.js');
const e2e = require('./test/jest.config.js');

const sources = ['apps', 'libs', 'test/architecture'];

module.exports = {
  projects: [
    { ...preset, displayName: 'unit', rootDir: __dirname, testMatch: sources.map((dir) => `<rootDir>/${dir}/**/*.spec.ts`) },
    { ...preset, displayName: 'int', rootDir: __dirname, testMatch: sources.map((dir) => `<rootDir>/${dir}/**/*.int-spec.ts`) },
    { ...e2e, displayName: 'e2e', rootDir: path.join(__dirname, 'test') },
  ],
};
