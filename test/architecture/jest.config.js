const preset = require('../../jest.preset.js');

// Checks of the repository's own rules (module boundaries, circular imports), run by `npm test`
// through `nx run-many -t test` like every project's unit tests.
module.exports = {
  ...preset,
  displayName: 'architecture',
  rootDir: __dirname,
  testMatch: ['<rootDir>/**/*.spec.ts'],
};
