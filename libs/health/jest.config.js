const preset = require('../../jest.preset.js');

module.exports = {
  ...preset,
  displayName: 'health',
  rootDir: __dirname,
  testMatch: ['<rootDir>/src/**/*.spec.ts', '<rootDir>/src/**/*.int-spec.ts'],
};
