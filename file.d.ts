// Types of virtio-queue/file for resolvers that do not read package.json "exports"
// (TypeScript's moduleResolution node10): the declarations tsc emits from src/file into
// lib/file. The documentation lives in src/.
export * from './lib/file/index'
