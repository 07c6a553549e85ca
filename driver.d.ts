// Types of virtio-queue/driver for resolvers that do not read package.json
// "exports" (TypeScript's moduleResolution node10): the declarations tsc
// emits from src/driver into lib/driver. The documentation lives in src/.
export * from './lib/driver/index'
