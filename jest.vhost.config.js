/** Jest for the vhost-user suite (`npm run test:vhost`): the native helper, real sockets, real back-ends (ours, in adapters/vhost-user-server, and qemu-storage-daemon), run serially. */
module.exports = {
  testEnvironment: 'node',
  transform: { '^.+\\.ts$': ['ts-jest', { tsconfig: 'tsconfig.json', isolatedModules: true }] },
  testMatch: ['<rootDir>/adapters/{vhost-user,vhost-user-server}/test/**/*.vhost-test.ts'],
  testPathIgnorePatterns: ['/node_modules/', '/dist/'],
  testTimeout: 120000,
  maxWorkers: 1,
};
