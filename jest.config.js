/** Jest runs the fast suite: TypeScript sources through ts-jest, no QEMU, no guest. */
module.exports = {
  testEnvironment: 'node',
  transform: { '^.+\\.ts$': ['ts-jest', { tsconfig: 'tsconfig.json', isolatedModules: true }] },
  testMatch: ['<rootDir>/{spec,model,conformance,adapters}/**/*.test.ts'],
  testPathIgnorePatterns: ['/node_modules/', '/dist/'],
};
