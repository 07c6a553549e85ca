// Types of the ESM entry virtio-queue/file (file.mjs): the same API as the CommonJS entry,
// whose declarations tsc emits from src/file into lib/file.
export * from './lib/file/index.js'
