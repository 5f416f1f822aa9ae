/** Jest for the package test (`npm run test:package`): packs the tarball, installs it into an empty project and runs it there. Slow (a build, a pack, an install). */
module.exports = {
  testEnvironment: 'node',
  transform: { '^.+\\.ts$': ['ts-jest', { tsconfig: 'tsconfig.json', isolatedModules: true }] },
  testMatch: ['<rootDir>/conformance/test/**/*.package-test.ts'],
  testPathIgnorePatterns: ['/node_modules/', '/dist/'],
  testTimeout: 600000,
  maxWorkers: 1,
};
