// Types of the ESM entry virtio-queue/driver (driver.mjs): the same API as the
// CommonJS entry, whose declarations tsc emits from src/driver into lib/driver.
export * from './lib/driver/index.js'
