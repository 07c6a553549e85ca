// The published addon is the product build: the test and benchmark hooks
// (forcePanicForTesting, benchNative) exist only in the testing addon the rest
// of the suite runs on (scripts/testing-addon.js). The product build at the
// root is what scripts/package.js copies into the platform package (and
// refuses when it holds a hook's name); scripts/pack-smoke.sh checks the
// installed tarball the same way.
import test from 'ava'
import * as fs from 'node:fs'
import * as path from 'node:path'
import { BINARY_NAME, detectLibc, platformName } from '../src/binding'

const root = path.join(__dirname, '..')
const platform = platformName(process.platform, process.arch, detectLibc())
const product = path.join(root, `${BINARY_NAME}.${platform}.node`)
const { testingAddonPath } = require(path.join(root, 'scripts', 'testing-addon.js')) as {
  testingAddonPath(): string
}
const HOOKS = [
  'benchNative',
  'forcePanicForTesting',
  // the vhost-user test frontend (Linux builds)
  ...(process.platform === 'linux'
    ? ['frontendCalls', 'frontendKick', 'frontendRequest', 'frontendResult', 'frontendStart']
    : []),
]

test('the product addon has no test or benchmark export, the testing addon has both', (t) => {
  const productExports = require(product) as Record<string, unknown>
  const testingExports = require(testingAddonPath()) as Record<string, unknown>
  for (const name of ['memoryCreate', 'queueNew', 'popChains', 'addUsed', 'addUsedBatch']) {
    t.is(typeof productExports[name], 'function', `product ${name}`)
    t.is(typeof testingExports[name], 'function', `testing ${name}`)
  }
  for (const name of HOOKS) {
    t.false(name in productExports, `product ${name}`)
    t.is(typeof testingExports[name], 'function', `testing ${name}`)
  }
  t.deepEqual(
    Object.keys(testingExports)
      .filter((k) => !(k in productExports))
      .sort(),
    HOOKS,
    'the testing addon adds exactly the hooks',
  )
})

test('the product binary does not even contain the hooks’ names', (t) => {
  const bytes = fs.readFileSync(product)
  const testing = fs.readFileSync(testingAddonPath())
  for (const name of HOOKS) {
    t.is(bytes.indexOf(name), -1, name)
    t.not(testing.indexOf(name), -1, `${name} in the testing build`)
  }
})
