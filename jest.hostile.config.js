/**
 * Jest for the hostile-input suite (`npm run test:hostile`): malformed, huge, looping and
 * adversarial files, options, results and vhost-user peers, each asserting the contract (exit
 * code, message shape, no stack trace, bounded time and memory, the server alive afterwards).
 * It runs the built CLI and the native helper, serially.
 */
module.exports = {
  testEnvironment: 'node',
  transform: { '^.+\\.ts$': ['ts-jest', { tsconfig: 'tsconfig.json', isolatedModules: true }] },
  testMatch: ['<rootDir>/{spec,model,conformance,adapters}/**/*.hostile-test.ts'],
  testPathIgnorePatterns: ['/node_modules/', '/dist/'],
  testTimeout: 120000,
  maxWorkers: 1,
};
