// Types of the ESM entry virtio-queue/driver (driver.mjs): the same API as
// the CommonJS entry.
export * from './driver.js'
