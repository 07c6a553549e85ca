// Types of the ESM entry virtio-queue/vhost-user (vhost-user.mjs): the same API as the
// CommonJS entry, whose declarations tsc emits from src/vhost-user into lib/vhost-user.
export * from './lib/vhost-user/index.js'
