#!/usr/bin/env node
// The whole build: Debian crates (scripts/fetch-crates.sh), the native addon
// (napi build, release), then the TypeScript layer (tsc). `npm install` runs
// it through the `prepare` script; `npm run build` runs it again.
//
//   node scripts/build.js            the product: virtio-queue.<platform>.node
//                                    at the root (what the packages ship), and lib/
//   node scripts/build.js --testing  the testing addon instead: the same crate with
//                                    the cargo feature `testing` (adds benchNative
//                                    and forcePanicForTesting), into
//                                    build/testing/virtio-queue.<platform>.node
//                                    (its own target dir, target/testing, so the two
//                                    builds do not rebuild each other), and lib/;
//                                    `npm test` and `npm run bench` run it and use that
//                                    file (scripts/testing-addon.js)
//   node scripts/build.js --ts-only  only the TypeScript layer
//
// Both addon builds get the codegen flags of scripts/rustflags.js (in RUSTFLAGS).
'use strict'
const { spawnSync } = require('node:child_process')
const path = require('node:path')
const { withCodegenFlags } = require('./rustflags')

const root = path.resolve(__dirname, '..')
const bin = (name) => path.join(root, 'node_modules', '.bin', name)

function run(cmd, args, env) {
  console.error(`build: ${cmd} ${args.join(' ')}`)
  const r = spawnSync(cmd, args, { cwd: root, stdio: 'inherit', env: { ...process.env, ...env } })
  if (r.error) {
    console.error(`build: could not run ${cmd}: ${r.error.message}`)
    process.exit(1)
  }
  if (r.status !== 0) {
    console.error(`build: ${cmd} failed (exit ${r.status})`)
    process.exit(r.status || 1)
  }
}

const tsOnly = process.argv.includes('--ts-only')
const testing = process.argv.includes('--testing')
if (!tsOnly) {
  run('bash', [path.join('scripts', 'fetch-crates.sh')])
  const cargoArgs = process.env.VIRTIO_QUEUE_CRATES === 'crates-io' ? [] : ['--locked']
  const variant = testing
    ? [
        '--features',
        'testing',
        '--target-dir',
        path.join('target', 'testing'),
        '--output-dir',
        path.join('build', 'testing'),
      ]
    : ['--output-dir', '.']
  run(
    bin('napi'),
    [
      'build',
      '--platform',
      '--release',
      '--manifest-path',
      'crate/Cargo.toml',
      ...variant,
      '--no-js',
      ...(cargoArgs.length ? ['--', ...cargoArgs] : []),
    ],
    withCodegenFlags(process.env),
  )
}
run(bin('tsc'), ['-p', 'tsconfig.json'])
