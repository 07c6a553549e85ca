// ESM entry of virtio-queue/file: the CommonJS API's named exports (one module instance
// for both module systems; file.js loads lib/file).
import api from './file.js'

export const { SystemError, punchHole, punchHoleSync, zeroRange, zeroRangeSync } = api
