// The package's own vhost-user frontend (crate/src/vhost_user/frontend.rs, testing addon
// only), as the vhost-user tests drive it: it connects to a backend socket, negotiates as
// QEMU does, shares guest RAM (a memfd, also mapped here as `memory`), starts rings, and
// kicks / counts interrupts through the eventfds. Requests that need the backend's reply
// run on the frontend's own thread (the backend under test runs on this main thread), so
// each returns a promise that polls for the answer.
import { loadBinding } from '../../src/binding'
import { GuestMemory } from '../../src/index'
import type { SplitQueueLayout } from '../../src/driver/index'

declare const brand: unique symbol
type FrontendHandle = { readonly [brand]: 'frontend' }
type Result = [true, unknown] | [false, string]

interface FrontendBinding {
  frontendStart(path: string, memSize: number, queues: number, viewSize?: number): [FrontendHandle, ArrayBuffer]
  frontendRequest(fe: FrontendHandle, op: number, a?: unknown, b?: unknown, c?: unknown, d?: unknown): number
  frontendResult(fe: FrontendHandle, ticket: number): Result | undefined
  frontendKick(fe: FrontendHandle, index: number): void
  frontendCalls(fe: FrontendHandle, index: number): number
}

const binding = loadBinding() as FrontendBinding
const tick = (): Promise<void> => new Promise((r) => setTimeout(r, 1))

export class TestFrontend {
  readonly memory: GuestMemory
  readonly ram: ArrayBuffer
  readonly #h: FrontendHandle

  /** Guest RAM of `memSize` bytes (a sparse memfd), of which `viewSize` are mapped into `memory`. */
  constructor(path: string, memSize = 0x100000, queues = 2, viewSize = memSize) {
    const [h, ram] = binding.frontendStart(path, memSize, queues, viewSize)
    this.#h = h
    this.ram = ram
    this.memory = GuestMemory.fromBuffers([{ guestAddress: 0, buffer: ram }])
  }

  async #call(op: number, a?: unknown, b?: unknown, c?: unknown, d?: unknown): Promise<unknown> {
    const t = binding.frontendRequest(this.#h, op, a, b, c, d)
    for (;;) {
      const r = binding.frontendResult(this.#h, t)
      if (r !== undefined) {
        if (r[0]) return r[1]
        throw new Error(r[1])
      }
      await tick()
    }
  }

  /** Negotiates, acks `features & offered`, sends the table; resolves to the acked features. */
  setup(features: bigint, regions: number[] = [0, this.ram.byteLength, 0]): Promise<bigint> {
    return this.#call(0, features, regions) as Promise<bigint>
  }

  /** SET_MEM_TABLE: `[guestAddress, size, offsetInMemfd, ...]`. */
  async setMemTable(regions: number[]): Promise<void> {
    await this.#call(1, regions)
  }

  async startVring(index: number, layout: SplitQueueLayout, base = 0): Promise<void> {
    await this.#call(2, index, layout.size, base, [layout.descTable, layout.availRing, layout.usedRing])
  }

  async getVringBase(index: number): Promise<number> {
    return Number(await this.#call(3, index))
  }

  async enableVring(index: number, enable: boolean): Promise<void> {
    await this.#call(4, index, enable)
  }

  async getConfig(offset: number, size: number): Promise<Buffer> {
    return (await this.#call(5, offset, size)) as Buffer
  }

  async setConfig(offset: number, data: Uint8Array): Promise<void> {
    await this.#call(6, offset, data)
  }

  async disconnect(): Promise<void> {
    await this.#call(7)
  }

  /** Kicks from the frontend's own thread; resolves to when (CLOCK_MONOTONIC ns, as process.hrtime.bigint()). */
  async timedKick(index: number): Promise<bigint> {
    return (await this.#call(8, index)) as bigint
  }

  kick(index: number): void {
    binding.frontendKick(this.#h, index)
  }

  /** Interrupts received on vring `index` since the last look. */
  calls(index: number): number {
    return binding.frontendCalls(this.#h, index)
  }

  /** Waits for at least one interrupt on vring `index`; resolves to how many arrived. */
  async waitCall(index: number, timeoutMs = 5000): Promise<number> {
    const end = Date.now() + timeoutMs
    for (;;) {
      const n = this.calls(index)
      if (n > 0) return n
      if (Date.now() > end) throw new Error(`no interrupt on vring ${index} within ${timeoutMs} ms`)
      await tick()
    }
  }
}

/** Waits until `cond()` holds (polling the event loop), or throws after `timeoutMs`. */
export async function until(cond: () => boolean, what: string, timeoutMs = 5000): Promise<void> {
  const end = Date.now() + timeoutMs
  while (!cond()) {
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`)
    await tick()
  }
}
