// Types of the ESM entry (index.mjs): the same API as the CommonJS entry, whose
// declarations tsc emits from src/ into lib/ (the documentation lives in src/).
export * from './lib/index.js'
