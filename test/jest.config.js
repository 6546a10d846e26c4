const preset = require('../jest.preset.js');

module.exports = {
  ...preset,
  displayName: 'e2e',
  rootDir: __dirname,
  // test/security: one test per attack of docs/security.md (the e2e harness, run with the e2e suite).
  testMatch: ['<rootDir>/e2e/**/*.e2e-spec.ts', '<rootDir>/security/**/*.security-spec.ts'],
  testTimeout: 30000,
};
