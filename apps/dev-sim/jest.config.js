const preset = require('../../jest.preset.js');

module.exports = {
  ...preset,
  displayName: 'dev-sim',
  rootDir: __dirname,
  testMatch: ['<rootDir>/src/**/*.spec.ts', '<rootDir>/src/**/*.int-spec.ts'],
};
