// Types of virtio-queue/vhost-user for resolvers that do not read package.json
// "exports" (TypeScript's moduleResolution node10): the declarations tsc
// emits from src/vhost-user into lib/vhost-user. The documentation lives in src/.
export * from './lib/vhost-user/index'
