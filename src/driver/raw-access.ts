import { DriverConstants as C } from './constants'
import { argRangeError, argTypeError, checkInt } from './errors'
import type { DriverMemory } from './memory'
import type { RawDescriptor, RawUsedElem } from './types'

const U64_MAX = (1n << 64n) - 1n

/**
 * Queue geometry plus raw, unvalidated-by-design accessors for fuzz and
 * negative tests. Base class of SplitQueueDriver, which documents these members
 * as its own (this class is not exported).
 *
 * None of these methods touch the driver's shadow state (free list, avail
 * and used shadows, outstanding chains): they only write guest memory, so a
 * test can build hostile queues without the driver "fixing" them.
 */
export class RawQueueAccess {
  /** The memory given to the constructor. */
  readonly memory: DriverMemory
  /** Queue size. */
  readonly size: number
  /** Descriptor table address. */
  readonly descTable: number
  /** Available ring address. */
  readonly availRing: number
  /** Used ring address. */
  readonly usedRing: number
  /** Address of `used_event` (availRing + 4 + 2*size), written by the driver. */
  readonly usedEventAddr: number
  /** Address of `avail_event` (usedRing + 4 + 8*size), written by the device. */
  readonly availEventAddr: number

  /** The geometry of a queue whose size and addresses {@link SplitQueueDriver} checked. */
  constructor(memory: DriverMemory, size: number, descTable: number, availRing: number, usedRing: number) {
    this.memory = memory
    this.size = size
    this.descTable = descTable
    this.availRing = availRing
    this.usedRing = usedRing
    this.usedEventAddr = availRing + 4 + 2 * size
    this.availEventAddr = usedRing + 4 + C.USED_ELEM_SIZE * size
  }

  /**
   * RAW: writes descriptor `index` of the table verbatim (any flags / next,
   * addr up to 2^64 - 1 as a bigint). Does not touch the free list.
   * @throws RangeError naming `index` or the `desc` field out of its u64/u32/u16 range
   */
  writeDescriptor(index: number, desc: RawDescriptor): void {
    checkInt(index, 'index', 0, this.size - 1)
    if (desc === null || typeof desc !== 'object')
      throw argTypeError('desc must be an object { addr, len, flags, next }')
    const { addr } = desc
    if (typeof addr === 'bigint') {
      if (addr < 0n || addr > U64_MAX) throw argRangeError(`desc.addr must be in [0, 2^64 - 1], got ${addr}`)
    } else {
      checkInt(addr, 'desc.addr', 0, Number.MAX_SAFE_INTEGER)
    }
    const len = checkInt(desc.len, 'desc.len', 0, 0xffffffff)
    const flags = checkInt(desc.flags, 'desc.flags', 0, 0xffff)
    const next = checkInt(desc.next, 'desc.next', 0, 0xffff)
    const at = this.descTable + C.DESC_SIZE * index
    this.memory.writeU64(at, addr)
    this.memory.writeU32(at + 8, len)
    this.memory.writeU16(at + 12, flags)
    this.memory.writeU16(at + 14, next)
  }

  /** RAW: reads descriptor `index` of the table (addr as a bigint). @throws RangeError naming `index` */
  readDescriptor(index: number): RawDescriptor & {
    /** The u64 address, as a bigint. */
    addr: bigint
  } {
    checkInt(index, 'index', 0, this.size - 1)
    const at = this.descTable + C.DESC_SIZE * index
    return {
      addr: this.memory.readU64(at),
      len: this.memory.readU32(at + 8),
      flags: this.memory.readU16(at + 12),
      next: this.memory.readU16(at + 14),
    }
  }

  /** RAW: writes `avail.ring[slot] = head` (any u16). @throws RangeError naming `slot` / `head` */
  writeAvailEntry(slot: number, head: number): void {
    checkInt(slot, 'slot', 0, this.size - 1)
    this.memory.writeU16(this.availRing + 4 + 2 * slot, checkInt(head, 'head', 0, 0xffff))
  }

  /**
   * RAW: stores `avail.idx = idx` (release) without updating the driver's
   * shadow; the driver's next publish overwrites it.
   * @throws RangeError naming `idx`
   */
  setAvailIdx(idx: number): void {
    this.memory.storeU16(this.availRing + 2, checkInt(idx, 'idx', 0, 0xffff))
  }

  /** RAW: loads `avail.idx` from memory. */
  readAvailIdx(): number {
    return this.memory.loadU16(this.availRing + 2)
  }

  /** RAW: loads the device's `used.idx` from memory. */
  readUsedIdx(): number {
    return this.memory.loadU16(this.usedRing + 2)
  }

  /** RAW: reads `used.ring[slot]` without validating or consuming it. @throws RangeError naming `slot` */
  readUsedElem(slot: number): RawUsedElem {
    checkInt(slot, 'slot', 0, this.size - 1)
    const at = this.usedRing + 4 + C.USED_ELEM_SIZE * slot
    return { id: this.memory.readU32(at), len: this.memory.readU32(at + 4) }
  }
}
