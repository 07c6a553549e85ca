// Loaded before every test file (package.json ava.require): the suite runs on the
// testing addon (the product's code plus forcePanicForTesting and benchNative; see
// scripts/testing-addon.js). Child processes and workers inherit the choice.
import * as path from 'node:path'

const { useTestingAddon } = require(path.join(__dirname, '..', '..', 'scripts', 'testing-addon.js')) as {
  useTestingAddon(): string
}
useTestingAddon()
