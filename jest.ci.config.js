/** Jest for the CI-facing checks (`npm run test:ci`, after the Debian packages): the README's CI jobs run as pasted in a fresh directory, and the JUnit reports validated with xmllint against a published JUnit schema. Slow (a clone, npm ci and a QEMU corpus run per job), serial. */
module.exports = {
  testEnvironment: 'node',
  transform: { '^.+\\.ts$': ['ts-jest', { tsconfig: 'tsconfig.json', isolatedModules: true }] },
  testMatch: ['<rootDir>/conformance/test/ci/**/*.ci-test.ts'],
  testPathIgnorePatterns: ['/node_modules/', '/dist/'],
  testTimeout: 900000,
  maxWorkers: 1,
  reporters: ['default', '<rootDir>/conformance/test/progress-reporter.js'],
};
