import { DriverConstants as C } from './constants'
import { argRangeError, argTypeError, checkInt } from './errors'
import type { DriverMemory } from './memory'
import type { RawDescriptor, RawUsedElem } from './types'

const U64_MAX = (1n << 64n) - 1n

/**
 * Queue geometry plus raw, unvalidated-by-design accessors for fuzz and
 * negative tests. Base class of SplitQueueDriver (internal; the public
 * typings present these members on SplitQueueDriver itself).
 *
 * None of these methods touch the driver's shadow state (free list, avail
 * and used shadows, outstanding chains): they only write guest memory, so a
 * test can build hostile queues without the driver "fixing" them.
 */
export class RawQueueAccess {
  readonly memory: DriverMemory
  readonly size: number
  readonly descTable: number
  readonly availRing: number
  readonly usedRing: number
  /** `used_event`: the u16 after the avail ring's ring[] (written by the driver). */
  readonly usedEventAddr: number
  /** `avail_event`: the u16 after the used ring's ring[] (written by the device). */
  readonly availEventAddr: number

  constructor(memory: DriverMemory, size: number, descTable: number, availRing: number, usedRing: number) {
    this.memory = memory
    this.size = size
    this.descTable = descTable
    this.availRing = availRing
    this.usedRing = usedRing
    this.usedEventAddr = availRing + 4 + 2 * size
    this.availEventAddr = usedRing + 4 + C.USED_ELEM_SIZE * size
  }

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

  readDescriptor(index: number): RawDescriptor & { addr: bigint } {
    checkInt(index, 'index', 0, this.size - 1)
    const at = this.descTable + C.DESC_SIZE * index
    return {
      addr: this.memory.readU64(at),
      len: this.memory.readU32(at + 8),
      flags: this.memory.readU16(at + 12),
      next: this.memory.readU16(at + 14),
    }
  }

  writeAvailEntry(slot: number, head: number): void {
    checkInt(slot, 'slot', 0, this.size - 1)
    this.memory.writeU16(this.availRing + 4 + 2 * slot, checkInt(head, 'head', 0, 0xffff))
  }

  setAvailIdx(idx: number): void {
    this.memory.storeU16(this.availRing + 2, checkInt(idx, 'idx', 0, 0xffff))
  }

  readAvailIdx(): number {
    return this.memory.loadU16(this.availRing + 2)
  }

  readUsedIdx(): number {
    return this.memory.loadU16(this.usedRing + 2)
  }

  readUsedElem(slot: number): RawUsedElem {
    checkInt(slot, 'slot', 0, this.size - 1)
    const at = this.usedRing + 4 + C.USED_ELEM_SIZE * slot
    return { id: this.memory.readU32(at), len: this.memory.readU32(at + 4) }
  }
}
