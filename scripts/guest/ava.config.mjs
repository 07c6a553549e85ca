// The real-guest tests' own ava configuration (npm test's "guests" runner:
// `ava --config scripts/guest/ava.config.mjs --serial`). They boot QEMU guests, so
// they run one at a time, apart from the main suite, which excludes them.
export default {
  files: ['__test__/guest*.spec.ts'],
  extensions: { ts: 'commonjs' },
  nodeArguments: ['--import=tsx'],
  timeout: '3m',
  workerThreads: false,
  concurrency: 1,
}
