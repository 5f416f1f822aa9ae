/** Jest for the live-guest suite (`npm run test:guest`): builds and boots a real Linux guest under QEMU (TCG). */
module.exports = {
  testEnvironment: 'node',
  transform: { '^.+\\.ts$': ['ts-jest', { tsconfig: 'tsconfig.json', isolatedModules: true }] },
  testMatch: ['<rootDir>/adapters/ssh-guest/test/**/*.guest-test.ts'],
  testPathIgnorePatterns: ['/node_modules/', '/dist/'],
  testTimeout: 600000,
  maxWorkers: 1,
  // Progress lines in CI logs (a file start, each result, a heartbeat naming the test still running).
  reporters: ['default', '<rootDir>/conformance/test/progress-reporter.js'],
};
