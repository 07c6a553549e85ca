// Types of the ESM entry (index.mjs): the same API as the CommonJS entry.
export * from './index.js'
