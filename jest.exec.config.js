/** Jest for the example harnesses in CI (`npm run test:exec`): the C device and the Python driver, built and run through the built CLI's `--adapter exec`, serially. */
module.exports = {
  testEnvironment: 'node',
  transform: { '^.+\\.ts$': ['ts-jest', { tsconfig: 'tsconfig.json', isolatedModules: true }] },
  testMatch: ['<rootDir>/adapters/exec/test/**/*.exec-test.ts'],
  testPathIgnorePatterns: ['/node_modules/', '/dist/'],
  testTimeout: 60000,
  maxWorkers: 1,
};
