// The "virtual machine" of the demo: guest memory, the guest driver's view of
// the request queue, and the device's Queue configured the way a VMM's virtio
// transport (MMIO or PCI) configures it when the driver writes the queue
// registers and sets DRIVER_OK.
//
// In your project, import from 'virtio-queue' and 'virtio-queue/driver'.
import { GuestMemory, Queue } from '../..'
import { GuestAllocator, SplitQueueDriver, type SplitQueueLayout, alignUp, splitQueueLayout } from '../../driver'

/** Where the rings live; guest buffers are allocated above them. */
const QUEUE_BASE = 0x1000
/** The QUEUE_NUM_MAX the device offers; the driver picks a size up to it. */
const DEVICE_MAX_QUEUE_SIZE = 1024

export interface VmOptions {
  /** Guest RAM in bytes (one region at guest address 0). */
  memoryBytes: number
  /** Queue size the driver chooses: a power of two ≤ 1024. */
  queueSize: number
  /** Negotiate VIRTIO_F_EVENT_IDX (notification suppression by index). */
  eventIdx: boolean
  /**
   * Guest RAM in a SharedArrayBuffer (GuestMemory.fromBuffers), which JavaScript cannot
   * detach, instead of page-aligned ArrayBuffers V8 owns (GuestMemory.fromRanges): what a
   * device doing file I/O on the threadpool (FileIoBatch, `io: 'threads'`) needs. Default false.
   */
  shared?: boolean | undefined
}

export interface Vm<T> {
  memory: GuestMemory
  layout: SplitQueueLayout
  /** Guest-side allocator for request headers, data buffers and indirect tables. */
  allocator: GuestAllocator
  /** The guest driver's side of the request queue. */
  driver: SplitQueueDriver<T>
  /** The device's side of the same queue, ready to use. */
  queue: Queue
}

export function createVm<T>(options: VmOptions): Vm<T> {
  const memory = options.shared
    ? GuestMemory.fromBuffers([{ guestAddress: 0, buffer: new SharedArrayBuffer(options.memoryBytes) }])
    : GuestMemory.fromRanges([[0, options.memoryBytes]])
  const layout = splitQueueLayout(QUEUE_BASE, options.queueSize)
  const heap = alignUp(layout.end, 4096)
  const allocator = new GuestAllocator(heap, options.memoryBytes - heap)
  // The driver initialises the rings first, then tells the device where they are.
  const driver = new SplitQueueDriver<T>(memory, { ...layout, eventIdx: options.eventIdx, allocator })
  const queue = new Queue(memory, Math.max(DEVICE_MAX_QUEUE_SIZE, options.queueSize))
  activateQueue(queue, layout, options.eventIdx)
  return { memory, layout, allocator, driver, queue }
}

/**
 * What the transport does with the driver's queue registers: size, the three ring
 * addresses (as 32-bit halves, as they arrive), negotiated features, then ready.
 */
export function activateQueue(queue: Queue, layout: SplitQueueLayout, eventIdx: boolean): void {
  using guard = queue.lockWithMemory()
  guard.setSize(layout.size)
  guard.setDescTableAddress(lo(layout.descTable), hi(layout.descTable))
  guard.setAvailRingAddress(lo(layout.availRing), hi(layout.availRing))
  guard.setUsedRingAddress(lo(layout.usedRing), hi(layout.usedRing))
  guard.setEventIdx(eventIdx)
  guard.setReady(true)
  if (!guard.isValid()) throw new Error('the queue the driver set up is not valid')
}

function lo(addr: number): number {
  return addr % 2 ** 32
}

function hi(addr: number): number {
  return Math.floor(addr / 2 ** 32)
}
