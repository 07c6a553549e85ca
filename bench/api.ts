// The package as users get it: the compiled lib/ (tsc output of src/), typed by
// the declarations tsc emits beside it. Benchmarking lib/ rather than
// src/ through tsx matters: tsx turns every cross-module access into a getter
// call, which costs the hot paths measurably. `npm run bench` compiles lib/ first.
import * as fs from 'node:fs'
import * as path from 'node:path'
import type * as Api from '../lib/index'
import type * as DriverApi from '../lib/driver/index'
import type { MemoryHandle, NativeBinding, QueueHandle } from '../src/native'

/** BENCH_LIB=dir compares another build of lib/ (with VIRTIO_QUEUE_NATIVE_PATH if it is elsewhere). */
export const LIB = path.resolve(process.env.BENCH_LIB ?? path.join(__dirname, '..', 'lib'))

/** The src/ files newer than their lib/ output: measuring them would measure old code. */
export function staleLibFiles(): string[] {
  if (process.env.BENCH_LIB) return []
  const src = path.join(__dirname, '..', 'src')
  const stale: string[] = []
  const walk = (dir: string): void => {
    for (const e of fs.readdirSync(dir, { withFileTypes: true })) {
      const file = path.join(dir, e.name)
      if (e.isDirectory()) walk(file)
      else if (e.name.endsWith('.ts')) {
        const out = path.join(LIB, path.relative(src, file)).replace(/\.ts$/, '.js')
        const built = fs.existsSync(out) ? fs.statSync(out).mtimeMs : 0
        if (built < fs.statSync(file).mtimeMs) stale.push(path.relative(src, file))
      }
    }
  }
  walk(src)
  return stale
}
// The native path calls benchNative, which only the testing addon has: the product's
// code plus the test hooks (scripts/testing-addon.js, built by `npm run bench`).
// eslint-disable-next-line @typescript-eslint/no-require-imports
require(path.join(__dirname, '..', 'scripts', 'testing-addon.js')).useTestingAddon()
// eslint-disable-next-line @typescript-eslint/no-require-imports
export const api: typeof Api = require(path.join(LIB, 'index.js'))
// eslint-disable-next-line @typescript-eslint/no-require-imports
export const driverApi: typeof DriverApi = require(path.join(LIB, 'driver', 'index.js'))
// eslint-disable-next-line @typescript-eslint/no-require-imports
export const native: NativeBinding = require(path.join(LIB, 'native.js')).native

/** The native handles behind a GuestMemory / Queue (internal members of lib/). */
export const memoryHandle = (m: Api.GuestMemory): MemoryHandle => (m as unknown as { handle: MemoryHandle }).handle
export const queueHandle = (q: Api.Queue): QueueHandle => (q as unknown as { handle: QueueHandle }).handle

export type { GuestMemory, Queue, QueueGuard } from '../lib/index'
export type { DriverBuffer, SplitQueueLayout } from '../lib/driver/index'
