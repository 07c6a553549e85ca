// Workloads and their guest-memory setup. Every path (native, batch, iterator)
// gets its own area of the same GuestMemory, laid out identically: a 256-entry
// split queue, 128 chains in flight, a 16-byte header per chain (byte 0 known,
// for the read checksum) and a data slot per chain.
import {
  api,
  driverApi,
  type DriverBuffer,
  type GuestMemory,
  type Queue,
  type QueueGuard,
  type SplitQueueLayout,
} from './api'

export const QUEUE_SIZE = 256
export const IN_FLIGHT = 128

const F_NEXT = 1
const F_WRITE = 2
const F_INDIRECT = 4

/** Bytes per path area, and where things live inside one. */
export const AREA_BYTES = 0x100000
const RINGS = 0x0 // desc table 4 KiB, avail ring, used ring: < 8 KiB
const TABLES = 0x2000 // indirect tables: 128 x 8 x 16 bytes = 16 KiB
const HEADERS = 0x6000 // 128 x 16 bytes
const DATA = 0x8000 // 128 x 4 KiB
const DATA_SLOT = 0x1000

export type WorkloadName = 'blk' | 'blk4k' | 'single' | 'indirect'

export interface Workload {
  readonly name: WorkloadName
  readonly description: string
  /** Descriptor-table entries per chain: heads are 0, stride, 2 * stride, ... */
  readonly stride: number
  /** Bytes the device reads per chain (a 16-byte header, or none). */
  readonly readBytes: number
  /** Writable buffers per chain and their size: the device fills them all. */
  readonly writeBuffers: number
  readonly writeBytes: number
  /** Descriptors in an indirect table (0: direct chain). */
  readonly indirect: number
}

export const WORKLOADS: Record<WorkloadName, Workload> = {
  blk: {
    name: 'blk',
    description: '2 descriptors: 16-byte readable header, 512-byte writable buffer',
    stride: 2,
    readBytes: 16,
    writeBuffers: 1,
    writeBytes: 512,
    indirect: 0,
  },
  blk4k: {
    name: 'blk4k',
    description: '2 descriptors: 16-byte readable header, 4096-byte writable buffer',
    stride: 2,
    readBytes: 16,
    writeBuffers: 1,
    writeBytes: 4096,
    indirect: 0,
  },
  single: {
    name: 'single',
    description: '1 descriptor of 0 bytes (writable): pop and add used only',
    stride: 1,
    readBytes: 0,
    writeBuffers: 1,
    writeBytes: 0,
    indirect: 0,
  },
  indirect: {
    name: 'indirect',
    description: '1 descriptor -> indirect table of 8: 16-byte readable header, 7 x 512-byte writable',
    stride: 1,
    readBytes: 16,
    writeBuffers: 7,
    writeBytes: 512,
    indirect: 8,
  },
}

/** The used length of every chain: all writable bytes. */
export function usedLen(w: Workload): number {
  return w.writeBuffers * w.writeBytes
}

/** Byte 0 of chain k's header. */
export function headerByte(k: number): number {
  return (k * 37 + 11) & 0xff
}

/** Sum of the header bytes the device reads in one round (all chains once). */
export function checkPerRound(w: Workload): number {
  if (w.readBytes === 0) return 0
  let s = 0
  for (let k = 0; k < IN_FLIGHT; k++) s += headerByte(k)
  return s
}

/** One path's area: its queue, ring layout and where its writable buffers are. */
export interface Area {
  readonly base: number
  readonly layout: SplitQueueLayout
  readonly queue: Queue
  /** The guard of the JS paths (released for the native path). */
  guard: QueueGuard | null
  readonly eventIdx: boolean
  /** [addr, len] of every writable buffer, for the data check. */
  readonly writable: Array<[number, number]>
  /** Chain k's buffers and (indirect workload) its table, for a SplitQueueDriver to re-add. */
  readonly chains: Array<{ buffers: DriverBuffer[]; table: number | null }>
}

function writeDesc(memory: GuestMemory, at: number, addr: number, len: number, flags: number, next: number): void {
  memory.writeU64(at, addr)
  memory.writeU32(at + 8, len)
  memory.writeU16(at + 12, flags)
  memory.writeU16(at + 14, next)
}

/**
 * Lays out workload `w` in the area at `base` (zeroing it first), publishes the 128
 * chains (avail idx 128) and creates a ready queue over it.
 */
export function setupArea(memory: GuestMemory, base: number, w: Workload, eventIdx: boolean, keepGuard: boolean): Area {
  memory.write(base, new Uint8Array(AREA_BYTES))
  const layout = driverApi.splitQueueLayout(base + RINGS, QUEUE_SIZE)
  const writable: Array<[number, number]> = []
  const chains: Area['chains'] = []
  for (let k = 0; k < IN_FLIGHT; k++) {
    const hdr = base + HEADERS + 16 * k
    const data = base + DATA + DATA_SLOT * k
    memory.writeU8(hdr, headerByte(k))
    const head = w.stride * k
    const descs: Array<[number, number, number]> = [] // addr, len, flags
    if (w.readBytes > 0) descs.push([hdr, w.readBytes, 0])
    for (let i = 0; i < w.writeBuffers; i++) {
      descs.push([data + w.writeBytes * i, w.writeBytes, F_WRITE])
      writable.push([data + w.writeBytes * i, w.writeBytes])
    }
    const table = w.indirect > 0 ? base + TABLES + 16 * w.indirect * k : null
    chains.push({ buffers: descs.map(([addr, len, f]) => ({ addr, len, writable: f === F_WRITE })), table })
    if (table !== null) {
      if (descs.length !== w.indirect)
        throw new Error(`workload ${w.name}: ${descs.length} descriptors, expected ${w.indirect}`)
      descs.forEach(([a, l, f], i) => {
        const last = i === descs.length - 1
        writeDesc(memory, table + 16 * i, a, l, f | (last ? 0 : F_NEXT), last ? 0 : i + 1)
      })
      writeDesc(memory, layout.descTable + 16 * head, table, 16 * w.indirect, F_INDIRECT, 0)
    } else {
      if (descs.length !== w.stride)
        throw new Error(`workload ${w.name}: ${descs.length} descriptors, stride ${w.stride}`)
      descs.forEach(([a, l, f], i) => {
        const last = i === descs.length - 1
        writeDesc(memory, layout.descTable + 16 * (head + i), a, l, f | (last ? 0 : F_NEXT), last ? 0 : head + i + 1)
      })
    }
    memory.writeU16(layout.availRing + 4 + 2 * k, head)
  }
  memory.storeU16(layout.availRing + 2, IN_FLIGHT)

  const queue = new api.Queue(memory, QUEUE_SIZE)
  const guard = queue.lockWithMemory()
  driverApi.setUpDeviceQueue(guard, layout, { eventIdx })
  if (!guard.isValid()) throw new Error('benchmark queue is not valid')
  if (!keepGuard) guard.release()
  return { base, layout, queue, guard: keepGuard ? guard : null, eventIdx, writable, chains }
}

/** One GuestMemory for the whole benchmark: an area per path, above address 0. */
export function createMemory(paths: number): GuestMemory {
  return api.GuestMemory.fromRanges([[0, AREA_BYTES * (paths + 1)]])
}

/** Throws unless every writable buffer of `area` holds `fill` (the device wrote it). */
export function verifyData(memory: GuestMemory, area: Area, fill: number, path: string): void {
  for (const [addr, len] of area.writable) {
    const bytes = memory.slice(addr, len)
    for (let i = 0; i < len; i++) {
      if (bytes[i] !== fill) {
        throw new Error(
          `${path}: byte ${i} of the writable buffer at 0x${addr.toString(16)} is ${bytes[i]}, expected ${fill}`,
        )
      }
    }
  }
}
