const preset = require('../jest.preset.js');

module.exports = {
  ...preset,
  displayName: 'e2e',
  rootDir: __dirname,
  // test/security: one test per attack of docs/security.md (the e2e harness, run with the e2e suite).
  // test/faults: injected faults (docs/runbooks/faults.md), each with the processes it owns.
  // test/deploy: deploy/ kept true — production bundles started with plain node, compose and Kubernetes manifests.
  // test/console: the ops console in Debian's Chromium (playwright-core) against the whole stack (docs/console.md).
  testMatch: [
    '<rootDir>/e2e/**/*.e2e-spec.ts',
    '<rootDir>/security/**/*.security-spec.ts',
    '<rootDir>/faults/**/*.fault-spec.ts',
    '<rootDir>/deploy/**/*.deploy-spec.ts',
    '<rootDir>/console/**/*.console-spec.ts',
  ],
  testTimeout: 30000,
};
