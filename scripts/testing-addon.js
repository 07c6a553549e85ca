// The testing addon: the crate built with the cargo feature `testing`
// (`node scripts/build.js --testing`), which adds the test and benchmark hooks
// (forcePanicForTesting, benchNative) to the product's exports. The ava suite
// (package.json ava.require), the benchmark, the soak test and the memcheck
// workload run on it; the published packages ship the product build, which
// has neither hook.
//
// useTestingAddon() points VIRTIO_QUEUE_NATIVE_PATH at it (unless the variable
// is already set: an explicit choice wins), so the package's own loader, and
// every child process and worker started afterwards, load it.
'use strict'
const fs = require('node:fs')
const path = require('node:path')

const root = path.resolve(__dirname, '..')

/** build/testing/virtio-queue.<platform>.node for this machine. */
function testingAddonPath() {
  const { platformName, detectLibc, BINARY_NAME } = require(path.join(root, 'lib', 'binding.js'))
  const name = platformName(process.platform, process.arch, detectLibc())
  return path.join(root, 'build', 'testing', `${BINARY_NAME}.${name}.node`)
}

function useTestingAddon() {
  if (process.env.VIRTIO_QUEUE_NATIVE_PATH) return process.env.VIRTIO_QUEUE_NATIVE_PATH
  const file = testingAddonPath()
  if (!fs.existsSync(file)) {
    throw new Error(
      `the testing addon ${file} is missing: run \`node scripts/build.js --testing\` (npm test and npm run bench do)`,
    )
  }
  process.env.VIRTIO_QUEUE_NATIVE_PATH = file
  return file
}

module.exports = { testingAddonPath, useTestingAddon }
