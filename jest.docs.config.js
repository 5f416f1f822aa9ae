/** Jest for the documentation site in a real browser (`npm run test:docs`; needs Debian's chromium). */
module.exports = {
  testEnvironment: 'node',
  transform: { '^.+\\.ts$': ['ts-jest', { tsconfig: 'tsconfig.json', isolatedModules: true }] },
  testMatch: ['<rootDir>/conformance/test/docs/**/*.browser-test.ts'],
  testPathIgnorePatterns: ['/node_modules/', '/dist/'],
  testTimeout: 180000,
  maxWorkers: 1,
};
