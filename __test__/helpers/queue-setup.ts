// Shared wiring for the device-side tests: guest memory, a Queue locked into a
// QueueGuard, and a SplitQueueDriver playing the guest on the same rings.
import type { ThrowsExpectation } from 'ava'

import { GuestMemory, Queue, type QueueGuard, VirtioQueueError, type VirtioQueueErrorCode } from '../..'
import {
  GuestAllocator,
  setUpDeviceQueue,
  SplitQueueDriver,
  splitQueueLayout,
  type SplitQueueLayout,
} from '../../driver'

/** Guest memory of the default rig: one region [0, MEM_SIZE). */
export const MEM_SIZE = 0x100000
/** Where the rings start. */
export const QUEUE_BASE = 0x1000
/** Range the allocator hands out (indirect tables). */
export const ALLOC_BASE = 0x40000
export const ALLOC_SIZE = 0x40000
/** Free guest memory for data buffers, up to MEM_SIZE. */
export const DATA_BASE = 0x80000

export interface RigOptions {
  /** Queue size the driver uses and the device sets (default 16). */
  size?: number
  /** The queue's maxSize (default: size). */
  maxSize?: number
  eventIdx?: boolean
  /** Guest memory (default: one zeroed region [0, MEM_SIZE)). */
  memory?: GuestMemory
  /** First address of the rings (default QUEUE_BASE). */
  base?: number
  /** Leave the queue not ready (addresses and size are still set). */
  notReady?: boolean
}

export interface Rig {
  memory: GuestMemory
  queue: Queue
  guard: QueueGuard
  driver: SplitQueueDriver<string>
  layout: SplitQueueLayout
  allocator: GuestAllocator
}

/** Memory, a driver that zeroed its rings, and a queue configured on them and locked. */
export function makeRig(options: RigOptions = {}): Rig {
  const size = options.size ?? 16
  const eventIdx = options.eventIdx ?? false
  const memory = options.memory ?? GuestMemory.fromRanges([[0, MEM_SIZE]])
  const layout = splitQueueLayout(options.base ?? QUEUE_BASE, size)
  const allocator = new GuestAllocator(ALLOC_BASE, ALLOC_SIZE)
  const driver = new SplitQueueDriver<string>(memory, { ...layout, eventIdx, allocator })
  const queue = new Queue(memory, options.maxSize ?? size)
  const guard = queue.lockWithMemory()
  configure(guard, layout, eventIdx, !options.notReady)
  return { memory, queue, guard, driver, layout, allocator }
}

/** What a VMM does when the driver sets the queue up. */
export function configure(guard: QueueGuard, layout: SplitQueueLayout, eventIdx = false, ready = true): void {
  setUpDeviceQueue(guard, layout, { eventIdx, ready })
}

/** Adds `n` one-buffer readable chains of `len` bytes at DATA_BASE + 0x100*i; returns their heads. */
export function addSimpleChains(driver: SplitQueueDriver<string>, n: number, len = 16): number[] {
  const heads: number[] = []
  for (let i = 0; i < n; i++) heads.push(driver.addChain([{ addr: DATA_BASE + 0x100 * i, len }], { token: `c${i}` }))
  return heads
}

/** Heads of every chain the guard pops until the ring is empty. */
export function drainHeads(guard: QueueGuard): number[] {
  const heads: number[] = []
  for (let c = guard.popDescriptorChain(); c !== null; c = guard.popDescriptorChain()) heads.push(c.headIndex)
  return heads
}

/** A raw 16-byte descriptor written anywhere in guest memory (e.g. in an indirect table). */
export function writeRawDescriptor(
  memory: GuestMemory,
  at: number,
  desc: { addr: number | bigint; len: number; flags: number; next: number },
): void {
  memory.writeU64(at, desc.addr)
  memory.writeU32(at + 8, desc.len)
  memory.writeU16(at + 12, desc.flags)
  memory.writeU16(at + 14, desc.next)
}

/** Expectation for a VirtioQueueError with `code`. */
export function vqError(code: VirtioQueueErrorCode, message?: RegExp): ThrowsExpectation<VirtioQueueError> {
  return message ? { instanceOf: VirtioQueueError, code, message } : { instanceOf: VirtioQueueError, code }
}

/** Expectation for an argument TypeError naming `name`. */
export function argTypeError(name: string): ThrowsExpectation<TypeError> {
  return { instanceOf: TypeError, code: 'ERR_INVALID_ARG_TYPE', message: new RegExp(`"${escapeRegExp(name)}"`) }
}

/** Expectation for an argument RangeError naming `name`. */
export function argRangeError(name: string): ThrowsExpectation<RangeError> {
  return { instanceOf: RangeError, code: 'ERR_OUT_OF_RANGE', message: new RegExp(`"${escapeRegExp(name)}"`) }
}

/** Expectation for a guest address outside guest memory (RangeError `InvalidGuestAddress`). */
export function badAddress(addr: number): ThrowsExpectation<RangeError> {
  return { instanceOf: RangeError, code: 'InvalidGuestAddress', message: new RegExp(`0x${addr.toString(16)}\\b`) }
}

function escapeRegExp(s: string): string {
  return s.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')
}
