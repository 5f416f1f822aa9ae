/** Jest for the QEMU suite (`npm run test:qemu`): real QEMU processes, run serially. */
module.exports = {
  testEnvironment: 'node',
  transform: { '^.+\\.ts$': ['ts-jest', { tsconfig: 'tsconfig.json', isolatedModules: true }] },
  testMatch: ['<rootDir>/adapters/qemu/test/**/*.qemu-test.ts'],
  testPathIgnorePatterns: ['/node_modules/', '/dist/'],
  testTimeout: 120000,
  maxWorkers: 1,
  // Progress lines in CI logs (a file start, each result, a heartbeat naming the test still running).
  reporters: ['default', '<rootDir>/conformance/test/progress-reporter.js'],
};
