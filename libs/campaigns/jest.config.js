const preset = require('../../jest.preset.js');

module.exports = {
  ...preset,
  displayName: 'campaigns',
  rootDir: __dirname,
  testMatch: ['<rootDir>/src/**/*.spec.ts', '<rootDir>/src/**/*.int-spec.ts'],
};
