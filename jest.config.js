/** Jest runs the fast suite: TypeScript sources through ts-jest, no QEMU, no guest. */
module.exports = {
  testEnvironment: 'node',
  transform: { '^.+\\.ts$': ['ts-jest', { tsconfig: 'tsconfig.json', isolatedModules: true }] },
  testMatch: ['<rootDir>/{spec,model,conformance,adapters}/**/*.test.ts'],
  testPathIgnorePatterns: ['/node_modules/', '/dist/'],
  // Several tests run real child processes (harnesses, the CLI); on a loaded 2-core machine their
  // start-up alone can outlast jest's default 5 s. A hang still fails, after 30 s.
  testTimeout: 30000,
};
