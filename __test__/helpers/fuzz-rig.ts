// A small device rig for the robustness tests: guest memory, a SplitQueueDriver
// on it, and a Queue configured on the same rings and locked.
import { GuestMemory, Queue, type QueueGuard } from '../..'
import { setUpDeviceQueue, SplitQueueDriver, splitQueueLayout, type SplitQueueLayout } from '../../driver'

export interface SmallRig {
  memory: GuestMemory
  queue: Queue
  guard: QueueGuard
  driver: SplitQueueDriver
  layout: SplitQueueLayout
}

/** Where chain buffers go: `dataAddr(i)` is 256 bytes for chain i. */
export const DATA = 0x4000
export const dataAddr = (i: number) => DATA + 256 * (i % 32)

/** A queue of `size` on `memory` (default: 64 KiB from fromRanges), rings at 0x1000. */
export function smallRig(memory: GuestMemory = GuestMemory.fromRanges([[0, 0x10000]]), size = 16): SmallRig {
  const layout = splitQueueLayout(0x1000, size)
  const driver = new SplitQueueDriver(memory, { ...layout })
  const queue = new Queue(memory, size)
  const guard = queue.lockWithMemory()
  setUpDeviceQueue(guard, layout)
  return { memory, queue, guard, driver, layout }
}

/** Makes `n` chains available: each a readable 16-byte buffer then a writable 64-byte one. */
export function offer(rig: SmallRig, n: number, first = 0): number[] {
  const heads: number[] = []
  for (let i = first; i < first + n; i++) {
    const a = dataAddr(i)
    rig.memory.write(a, new Uint8Array(16).fill(i & 0xff))
    heads.push(
      rig.driver.addChain([
        { addr: a, len: 16 },
        { addr: a + 64, len: 64, writable: true },
      ]),
    )
  }
  return heads
}
