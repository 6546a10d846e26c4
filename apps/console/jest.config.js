const preset = require('../../jest.preset.js');

// Unit tests of the console's pure modules (formatting, amounts, routes, scopes, error hints) and of small
// templates as markup (components/notice.spec.ts); the pages are tested in a real browser by test/console.
module.exports = {
  ...preset,
  displayName: 'console',
  rootDir: __dirname,
  testMatch: ['<rootDir>/src/**/*.spec.ts'],
};
